"""Every payload the input contract accepts can be published: the publisher builds, signs and
stamps it without raising, and what it sends is a valid input message that the owning service
reads back as the same payload. Payloads are drawn from the input models' own JSON Schemas, so
the whole domain is covered (names with spaces, Chinese text, the longest allowed values,
boundary decimals, every input type), not a few examples."""

import json
from decimal import Decimal

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from contracts.inputs import INPUT_TYPES, KEY_ROTATION_TYPES, InputMessage, producer_of
from contracts.signing import verify
from farmlink.producers.keyring import Keyring
from farmlink.producers.publisher import input_key, prepare_line
from farmlink.producers.scenario import LineError, ScenarioLine, parse_line
from tests.strategies import inputs

pytestmark = pytest.mark.unit


def as_line(input_type: str, payload: dict) -> str:
    return json.dumps({"type": input_type, "payload": payload}, ensure_ascii=False, default=str)


@pytest.fixture(scope="module")
def keyring(tmp_path_factory) -> Keyring:
    return Keyring(tmp_path_factory.mktemp("keys"))


@settings(
    max_examples=300,
    deadline=None,
    suppress_health_check=[
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
        HealthCheck.filter_too_much,
        HealthCheck.function_scoped_fixture,
    ],
)
@given(inputs)
def test_every_payload_the_contract_accepts_is_published_and_read_back_unchanged(keyring, drawn):
    input_type, payload = drawn
    parsed = parse_line(7, as_line(input_type, payload))
    if isinstance(parsed, LineError):
        assert parsed.line_no == 7 and parsed.field and parsed.reason  # refused before sending, with line and field
        return
    rotation = input_type in KEY_ROTATION_TYPES and parsed.payload.get("public_key") is None
    signer = keyring.public_key(producer_of(input_type, parsed.payload)) if rotation else None
    outgoing = prepare_line(parsed, "publish-0123456789ab", keyring)
    assert not isinstance(outgoing, str), outgoing  # the publisher refused a line the contract accepts
    body = outgoing.model_dump_json().encode()
    received = InputMessage.model_validate_json(body)
    assert received.type == input_type
    sent = dict(parsed.payload)
    if "public_key" in sent and sent["public_key"] is None:  # a registration without a key: the producer's own is sent;
        sent["public_key"] = keyring.public_key(received.producer)  # a rotation without one: the new key the keyring made
    assert INPUT_TYPES[input_type].model_validate(received.payload) == INPUT_TYPES[input_type].model_validate(sent)
    assert received.signature is not None
    assert verify(signer or keyring.public_key(received.producer), json.loads(body))  # a rotation is signed with the old key
    assert input_key(parsed)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(
    st.text(min_size=1, max_size=128).filter(lambda s: s.strip() == s and s and not any(c.isspace() or ord(c) < 32 for c in s))
)
def test_a_cooperative_with_the_longest_or_most_unusual_id_still_gets_its_own_key(keyring, cooperative_id):
    line = parse_line(
        1,
        as_line(
            "cooperative.registered",
            {
                "cooperative_id": cooperative_id,
                "name": "合作社 " * 30,
                "county": "沿河土家族自治县",
                "township": "客田镇",
                "village": "冯家村",
                "households": [{"household_id": "h1", "registered_poor": True}],
            },
        ),
    )
    assert isinstance(line, ScenarioLine)
    outgoing = prepare_line(line, "publish-0123456789ab", keyring)
    assert not isinstance(outgoing, str), outgoing
    assert outgoing.payload["public_key"] == keyring.public_key(outgoing.producer)


def test_a_market_named_with_spaces_and_at_full_length_is_published():
    line = parse_line(
        3,
        as_line(
            "market_price.observed",
            {
                "product": "chili",
                "grade": "A",
                "market": "Tongren wholesale market " + "铜" * 175,
                "price_fen": 10**15,
                "observed_on": "2020-08-01",
            },
        ),
    )
    assert isinstance(line, ScenarioLine)
    outgoing = prepare_line(line, "publish-0123456789ab", Keyring(__import__("pathlib").Path("/nonexistent-keys")))
    assert not isinstance(outgoing, str), outgoing
    assert Decimal(outgoing.payload["price_fen"]) == 10**15
