"""Signed inputs: a fixed test vector other-language clients can check against, and the rules of the signed bytes."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from contracts import signing
from contracts.inputs import InputMessage

pytestmark = pytest.mark.unit

# ---------------------------------------------------------------- the test vector (do not change)
VECTOR_SEED = bytes(range(32))  # the private key's raw 32 bytes: 00 01 02 ... 1f
VECTOR_PUBLIC_KEY = "A6EHv_POEL4dcN0Y50vAmWfk1jCbpQ1fHdyGZBJVMbg"
VECTOR_MESSAGE = {
    "message_id": "m-1",
    "type": "harvest.recorded",
    "producer": "cooperative:fengjia-coop",
    "correlation_id": "c-1",
    "payload": {
        "lot_id": "fj-chili-1",
        "cooperative_id": "fengjia-coop",
        "product": "chili",
        "grade": "A",
        "quantity": "120.5",
        "available_from": "2020-08-01",
        "expires_on": "2020-08-15",
        "contributions": [{"household_id": "fj-01", "quantity": "120.5"}],
        "note": "冯家村",
    },
}
VECTOR_SIGNED_BYTES = (
    b'farmlink-input-v1\n{"correlation_id":"c-1","message_id":"m-1","payload":{"available_from":"2020-08-01",'
    b'"contributions":[{"household_id":"fj-01","quantity":"120.5"}],"cooperative_id":"fengjia-coop","expires_on":"2020-08-15",'
    b'"grade":"A","lot_id":"fj-chili-1","note":"' + "冯家村".encode() + b'","product":"chili","quantity":"120.5"},'
    b'"producer":"cooperative:fengjia-coop","type":"harvest.recorded"}'
)
VECTOR_SIGNATURE = "jclxQKSLPykWbydbAR9RFTP50AKaF9Jd4FpMyRSsrlkyM3xk8P579NwLDLNrprnJMHOBVBJq9ChxBsQv8ssgAQ"


def test_the_fixed_vector_gives_the_published_key_bytes_and_signature():
    key = signing.private_key_from_raw(VECTOR_SEED)
    assert signing.public_key_of(key) == VECTOR_PUBLIC_KEY
    assert signing.signed_bytes(VECTOR_MESSAGE) == VECTOR_SIGNED_BYTES
    assert signing.sign(key, VECTOR_MESSAGE) == VECTOR_SIGNATURE, "Ed25519 is deterministic: same key and bytes, same signature"
    assert signing.verify(VECTOR_PUBLIC_KEY, {**VECTOR_MESSAGE, "signature": VECTOR_SIGNATURE})


def test_the_underlying_ed25519_is_rfc_8032_test_1():
    key = signing.private_key_from_raw(bytes.fromhex("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60"))
    assert signing.public_key_of(key) == signing.b64url(
        bytes.fromhex("d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a")
    )
    expected = bytes.fromhex(
        "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b"
    )
    assert key.sign(b"") == expected


def test_a_signed_message_travels_as_an_input_message_and_verifies_after_the_json_round_trip():
    import json

    wire = InputMessage(**VECTOR_MESSAGE, signature=VECTOR_SIGNATURE).model_dump_json()
    received = InputMessage.model_validate(json.loads(wire))
    assert signing.verify(VECTOR_PUBLIC_KEY, received.model_dump())


@pytest.mark.parametrize(
    "change",
    [
        {"message_id": "m-2"},
        {"type": "planting.recorded"},
        {"producer": "cooperative:other"},
        {"correlation_id": "c-2"},
        {"payload": {**VECTOR_MESSAGE["payload"], "quantity": "1200.5"}},
    ],
    ids=["message_id", "type", "producer", "correlation_id", "payload"],
)
def test_changing_any_signed_field_breaks_the_signature(change):
    assert (
        signing.verification_problem(VECTOR_PUBLIC_KEY, {**VECTOR_MESSAGE, **change, "signature": VECTOR_SIGNATURE})
        == "does not verify"
    )


def test_another_key_a_missing_or_malformed_signature_do_not_verify():
    other = signing.public_key_of(signing.new_private_key())
    assert signing.verification_problem(other, {**VECTOR_MESSAGE, "signature": VECTOR_SIGNATURE}) == "does not verify"
    assert signing.verification_problem(VECTOR_PUBLIC_KEY, dict(VECTOR_MESSAGE)) == "missing"
    assert signing.verification_problem(VECTOR_PUBLIC_KEY, {**VECTOR_MESSAGE, "signature": "abc"}).startswith("malformed")
    assert signing.verification_problem("not-a-key", {**VECTOR_MESSAGE, "signature": VECTOR_SIGNATURE}).startswith(
        "the public key"
    )


def test_decimals_must_travel_as_strings_to_be_signed():
    from decimal import Decimal

    for number in (Decimal("1.5"), 1.5):
        with pytest.raises(signing.UnsignableValue):
            signing.signed_bytes({**VECTOR_MESSAGE, "payload": {"quantity": number}})
    problem = signing.verification_problem(
        VECTOR_PUBLIC_KEY, {**VECTOR_MESSAGE, "payload": {"q": Decimal("1.5")}, "signature": VECTOR_SIGNATURE}
    )
    assert problem.startswith("the message cannot be signed")


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(), children, max_size=4),
    max_leaves=20,
)


@given(payload=st.dictionaries(st.text(), json_values, max_size=5))
def test_any_json_payload_signs_and_verifies_after_a_round_trip_through_json(payload):
    import json

    key = signing.private_key_from_raw(VECTOR_SEED)
    message = {**VECTOR_MESSAGE, "payload": payload}
    signed = {**message, "signature": signing.sign(key, message)}
    assert signing.verify(VECTOR_PUBLIC_KEY, json.loads(json.dumps(signed)))
