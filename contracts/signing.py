"""Signed inputs: how cooperatives and buyers sign what they publish, and how anyone checks it.

Ed25519 (RFC 8032). Every cooperative and buyer holds one private key; its public key
travels in its registration (`cooperative.registered`, `buyer.registered`) and from there
into the registered event, so the services and the auditors know it.

The signed bytes of an input message are

    b"farmlink-input-v1\\n" + canonical JSON of {message_id, type, producer, correlation_id, payload}

where canonical JSON is: object keys sorted by Unicode code point, no whitespace
(separators "," and ":"), UTF-8, non-ASCII characters written as themselves (no \\u
escapes), and only strings, integers, booleans, null, arrays and objects: decimals travel
as strings ("120.5"), so a JSON number with a fraction or exponent cannot be signed.
The prefix keeps a farmlink input signature from ever meaning anything else.

Keys and signatures are base64url without padding: a public key is its raw 32 bytes
(43 characters), a signature its raw 64 bytes (86 characters).
`tests/unit/test_signing.py` holds a fixed test vector for clients in other languages.
"""

import base64
import binascii
import json
from functools import lru_cache
from collections.abc import Mapping
from typing import Annotated, Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from pydantic import StringConstraints

from contracts.model import Contract
from contracts.types import Identifier, Producer

SIGNING_CONTEXT = b"farmlink-input-v1\n"
SIGNED_FIELDS = ("message_id", "type", "producer", "correlation_id", "payload")

PublicKey = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_-]{43}$")]
"""An Ed25519 public key: base64url (no padding) of its raw 32 bytes."""

Signature = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_-]{86}$")]
"""An Ed25519 signature: base64url (no padding) of its raw 64 bytes."""


class UnsignableValue(ValueError):
    """A value canonical JSON does not carry (a float or Decimal: send decimals as strings)."""


def b64url(raw: bytes) -> str:
    """base64url without padding."""
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def _unb64url(text: str, size: int) -> bytes:
    """The raw bytes of a base64url text of exactly `size` bytes, written canonically; ValueError otherwise."""
    try:
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError) as error:
        raise ValueError(f"not base64url: {error}") from error
    if len(raw) != size or b64url(raw) != text:
        raise ValueError(f"not the base64url (no padding) of {size} bytes")
    return raw


def _reject_non_json(value: Any) -> Any:
    raise UnsignableValue(f"{type(value).__name__} {value!r} cannot be signed: send decimals as strings")


def _check_numbers(value: Any) -> None:
    if isinstance(value, float):
        _reject_non_json(value)
    if isinstance(value, Mapping):
        for item in value.values():
            _check_numbers(item)
    elif isinstance(value, list | tuple):
        for item in value:
            _check_numbers(item)


def canonical_json(value: Any) -> bytes:
    """Sorted keys, compact separators, UTF-8, no ASCII escaping; strings, integers, booleans, null, arrays, objects only."""
    _check_numbers(value)
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=_reject_non_json).encode("utf-8")


def signed_bytes(message: Mapping[str, Any]) -> bytes:
    """What a signature covers: the context prefix and the canonical JSON of the message without its signature."""
    missing = [name for name in SIGNED_FIELDS if name not in message]
    if missing:
        raise ValueError(f"a signed message needs {', '.join(missing)}")
    return SIGNING_CONTEXT + canonical_json({name: message[name] for name in SIGNED_FIELDS})


def new_private_key() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.generate()


def private_key_from_raw(raw: bytes) -> Ed25519PrivateKey:
    """A private key from its raw 32-byte seed."""
    return Ed25519PrivateKey.from_private_bytes(raw)


def public_key_of(private_key: Ed25519PrivateKey) -> str:
    """The public key text (base64url of the raw 32 bytes) of a private key."""
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

    return b64url(private_key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw))


def sign(private_key: Ed25519PrivateKey, message: Mapping[str, Any]) -> str:
    """The signature text of a message (its message_id, type, producer, correlation_id and payload)."""
    return b64url(private_key.sign(signed_bytes(message)))


@lru_cache(maxsize=4096)
def _public_key(text: str) -> Ed25519PublicKey:
    return Ed25519PublicKey.from_public_bytes(_unb64url(text, 32))


def verification_problem(public_key: str, message: Mapping[str, Any]) -> str | None:
    """None when `message["signature"]` is a valid signature of the message by `public_key`, else why not."""
    signature = message.get("signature")
    if not signature:
        return "missing"
    try:
        key = _public_key(public_key)
    except ValueError as error:
        return f"the public key is unusable: {error}"
    try:
        raw_signature = _unb64url(str(signature), 64)
    except ValueError as error:
        return f"malformed: {error}"
    try:
        key.verify(raw_signature, signed_bytes(message))
    except UnsignableValue as error:
        return f"the message cannot be signed: {error}"
    except InvalidSignature:
        return "does not verify"
    return None


def verify(public_key: str, message: Mapping[str, Any]) -> bool:
    """Whether `message["signature"]` is a valid signature of the message by `public_key`."""
    return verification_problem(public_key, message) is None


class SignedInput(Contract):
    """The evidence an event carries of the signed input it was recorded from: the input
    message exactly as received (its payload included) and its signature, so an auditor can
    verify it from the log alone with the key in the producer's registered event."""

    message_id: Identifier
    type: str
    producer: Producer
    correlation_id: Identifier
    payload: dict[str, Any]
    signature: Signature

    @classmethod
    def of(cls, message: Mapping[str, Any]) -> "SignedInput":
        """The evidence of a received input message (a mapping with the signed fields and the signature)."""
        return cls(**{name: message[name] for name in (*SIGNED_FIELDS, "signature")})
