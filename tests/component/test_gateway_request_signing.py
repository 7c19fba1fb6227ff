"""The request-signing scheme of the gateway (services/gateway/auth.py), as a fixed test vector for clients in
other languages, and the checks a proof goes through, in order."""

import pytest

from contracts.signing import private_key_from_raw, public_key_of
from services.gateway.auth import (
    MAX_SKEW_S,
    SignedRequest,
    Unauthenticated,
    request_bytes,
    sign_request,
    signed_request,
    verify_request,
)

pytestmark = pytest.mark.component

SEED = bytes(range(32))
PUBLIC_KEY = "A6EHv_POEL4dcN0Y50vAmWfk1jCbpQ1fHdyGZBJVMbg"
TARGET = "/v1/buyers/tongren-mart/fills?after=3"
SIGNED_BYTES = b"farmlink-request-v1\nGET\n/v1/buyers/tongren-mart/fills?after=3\n1606780800\nbuyer:tongren-mart"
SIGNATURE = "16_jj_ttlie3OPx19QJEb6Blfx10Fe6cT46jiWARsABoIDp3FjuT-s4Qm57ybkfZPIuCsuRzX8vQVtALc-YSAg"


def test_the_fixed_vector_signs_the_context_method_target_timestamp_and_party():
    key = private_key_from_raw(SEED)
    assert public_key_of(key) == PUBLIC_KEY
    assert request_bytes("get", TARGET, "1606780800", "buyer:tongren-mart") == SIGNED_BYTES
    assert sign_request(key, "GET", TARGET, "buyer:tongren-mart", 1606780800.9) == {
        "Farmlink-Party": "buyer:tongren-mart",
        "Farmlink-Timestamp": "1606780800",
        "Farmlink-Signature": SIGNATURE,
    }


def test_the_fixed_vector_verifies_within_the_skew_and_not_beyond():
    proof = SignedRequest("buyer:tongren-mart", "1606780800", SIGNATURE)
    assert verify_request(proof, "GET", TARGET, PUBLIC_KEY, 1606780800 + MAX_SKEW_S) == "buyer:tongren-mart"
    with pytest.raises(Unauthenticated, match="Farmlink-Timestamp: 1606780800 is 301 s from the gateway's clock"):
        verify_request(proof, "GET", TARGET, PUBLIC_KEY, 1606780800 + MAX_SKEW_S + 1)


@pytest.mark.parametrize(
    ("proof", "reason"),
    [
        (
            SignedRequest("tongren-mart", "1606780800", SIGNATURE),
            "Farmlink-Party: 'tongren-mart' is not cooperative:<id> or buyer:<id>",
        ),
        (
            SignedRequest("buyer:tongren-mart", "yesterday", SIGNATURE),
            "Farmlink-Timestamp: 'yesterday' is not whole Unix seconds",
        ),
        (SignedRequest("buyer:tongren-mart", "1606780800", "abc"), "Farmlink-Signature: malformed"),
        (SignedRequest("buyer:tongren-mart", "1606780800", SIGNATURE[:-2] + "Ag"[::-1]), "Farmlink-Signature: does not verify"),
    ],
)
def test_a_proof_that_does_not_hold_names_its_header(proof, reason):
    with pytest.raises(Unauthenticated, match=reason):
        verify_request(proof, "GET", TARGET, PUBLIC_KEY, 1606780800)


def test_a_party_without_a_registered_key_is_not_authenticated():
    with pytest.raises(Unauthenticated, match="has no registered key here"):
        verify_request(SignedRequest("buyer:tongren-mart", "1606780800", SIGNATURE), "GET", TARGET, None, 1606780800)


def test_headers_are_read_case_insensitively_and_a_missing_one_is_named():
    from starlette.datastructures import Headers

    headers = Headers({"farmlink-party": "buyer:x", "FARMLINK-TIMESTAMP": "1"})
    with pytest.raises(Unauthenticated, match="Farmlink-Signature: missing"):
        signed_request(headers)
