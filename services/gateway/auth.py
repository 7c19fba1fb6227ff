"""Who is asking: a party proves itself on every request for its own data with its registered Ed25519 key.

A signed request carries three headers:

    Farmlink-Party: buyer:yuping               (cooperative:<id> or buyer:<id>, as its inputs' producer)
    Farmlink-Timestamp: 1606780800             (Unix seconds; within MAX_SKEW_S of the gateway's clock)
    Farmlink-Signature: <base64url, no padding, of the raw 64-byte Ed25519 signature>

signed over ``b"farmlink-request-v1\\n" + METHOD + "\\n" + path and query + "\\n" + timestamp + "\\n" + party``
(UTF-8), with the key the party registered (`cooperative.registered` / `buyer.registered`). The prefix
keeps a request signature from ever being read as an input signature (`farmlink-input-v1`), and the
other way round. A signed request can be replayed within the skew window: reads only, so it shows
the same party its own data again. No proof, a bad one, or an unknown party: 401; another party's
data: 403. `farmlink sign request` prints the headers from the development keyring.
"""

from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from contracts.signing import _unb64url, b64url

REQUEST_CONTEXT = b"farmlink-request-v1\n"
MAX_SKEW_S = 300
PARTY_HEADER = "Farmlink-Party"
TIMESTAMP_HEADER = "Farmlink-Timestamp"
SIGNATURE_HEADER = "Farmlink-Signature"
PARTY_KINDS = ("cooperative", "buyer")


class Unauthenticated(Exception):
    """No proof, or one that does not hold (401); the text says which header and why."""


@dataclass(frozen=True)
class SignedRequest:
    party: str
    timestamp: str
    signature: str


def request_bytes(method: str, target: str, timestamp: str, party: str) -> bytes:
    """What a request signature covers: the context, the method, the path with its query, the timestamp, the party."""
    return REQUEST_CONTEXT + f"{method.upper()}\n{target}\n{timestamp}\n{party}".encode("utf-8")


def sign_request(private_key: Ed25519PrivateKey, method: str, target: str, party: str, now: float) -> dict[str, str]:
    """The three headers of a signed request made at `now` (Unix seconds)."""
    timestamp = str(int(now))
    signature = b64url(private_key.sign(request_bytes(method, target, timestamp, party)))
    return {PARTY_HEADER: party, TIMESTAMP_HEADER: timestamp, SIGNATURE_HEADER: signature}


def parse_party(text: str) -> tuple[str, str]:
    """(kind, id) of `cooperative:<id>` or `buyer:<id>`; Unauthenticated otherwise."""
    kind, colon, party_id = text.partition(":")
    if not colon or kind not in PARTY_KINDS or not party_id:
        raise Unauthenticated(f"{PARTY_HEADER}: {text!r} is not cooperative:<id> or buyer:<id>")
    return kind, party_id


def signed_request(headers) -> SignedRequest:
    """The proof headers of a request (a case-insensitive mapping); Unauthenticated naming the first one missing."""
    values = {}
    for name in (PARTY_HEADER, TIMESTAMP_HEADER, SIGNATURE_HEADER):
        value = headers.get(name)
        if not value:
            raise Unauthenticated(
                f"{name}: missing; sign the request with your registered key "
                f"({PARTY_HEADER}, {TIMESTAMP_HEADER}, {SIGNATURE_HEADER}; see services/gateway/README.md)"
            )
        values[name] = value
    return SignedRequest(values[PARTY_HEADER], values[TIMESTAMP_HEADER], values[SIGNATURE_HEADER])


def verify_request(proof: SignedRequest, method: str, target: str, public_key: str | None, now: float) -> str:
    """The party a request proves (its `kind:id`); Unauthenticated naming the header and why otherwise."""
    parse_party(proof.party)
    if public_key is None:
        raise Unauthenticated(
            f"{PARTY_HEADER}: {proof.party} has no registered key here (not registered, "
            f"or its registration has not reached the gateway yet)"
        )
    try:
        stamp = int(proof.timestamp)
    except ValueError:
        raise Unauthenticated(f"{TIMESTAMP_HEADER}: {proof.timestamp!r} is not whole Unix seconds") from None
    if abs(now - stamp) > MAX_SKEW_S:
        raise Unauthenticated(
            f"{TIMESTAMP_HEADER}: {stamp} is {int(now - stamp)} s from the gateway's clock (at most {MAX_SKEW_S} s either way)"
        )
    try:
        raw = _unb64url(proof.signature, 64)
    except ValueError as error:
        raise Unauthenticated(f"{SIGNATURE_HEADER}: malformed: {error}") from None
    try:
        Ed25519PublicKey.from_public_bytes(_unb64url(public_key, 32)).verify(
            raw, request_bytes(method, target, proof.timestamp, proof.party)
        )
    except InvalidSignature:
        raise Unauthenticated(
            f"{SIGNATURE_HEADER}: does not verify with the key registered for {proof.party} "
            f"(signed bytes: farmlink-request-v1, method, path and query, timestamp, party)"
        ) from None
    return proof.party
