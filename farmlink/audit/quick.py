"""Quick paths for the audit's two costliest comparisons, each with the exact check as its fallback.

A quick path may only say "this holds": whenever it cannot, or is in doubt, the exact code decides
(and words the finding), so the findings are the same as without it.

- Signatures (`signature_holds`): the signed bytes made with orjson (the same canonical JSON as
  `contracts.signing.canonical_json` for the values a log holds: strings, integers, booleans, null,
  arrays and objects; anything else, a float above all, goes the exact way), verified with
  libsodium's Ed25519 through PyNaCl (about twice as quick as OpenSSL's here; it rejects more, never
  less: non-canonical or small-order keys and R, S >= L, which the exact check then words).
- Re-execution's decisions are made as plain values (`matcher.outcomes.outcome_record`, the mapping the
  matching service records them with, without its contract models); re-execution falls back to the
  contract models wherever they differ from the log, and cross-checks a sample of the rest with them.
- Recorded facts (`same_json`): equal in Python and equal canonical bytes mean equal values of equal types.
"""

from __future__ import annotations

import base64
import binascii
from functools import lru_cache
from typing import Any

import orjson
from nacl.bindings import crypto_sign_open
from nacl.exceptions import BadSignatureError

from contracts.signing import SIGNED_FIELDS, SIGNING_CONTEXT

_SORTED = orjson.OPT_SORT_KEYS


def _raw(text: Any, size: int) -> bytes | None:
    """The raw bytes of a canonical base64url text (no padding) of exactly `size` bytes, or None."""
    if type(text) is not str or len(text) != (size * 4 + 2) // 3:
        return None
    try:
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError):
        return None
    if len(raw) != size or base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii") != text:
        return None
    return raw


@lru_cache(maxsize=65536)
def _key(text: str) -> bytes | None:
    return _raw(text, 32)


def _plain(value: Any) -> bool:
    """Only strings, integers, booleans, null, arrays and objects with string keys (what canonical JSON carries)."""
    kind = type(value)
    if kind is str or kind is int or kind is bool or value is None:
        return True
    if kind is dict:
        for name, item in value.items():
            if type(name) is not str or not _plain(item):
                return False
        return True
    if kind is list:
        for item in value:
            if not _plain(item):
                return False
        return True
    return False


def signed_bytes(message: dict[str, Any]) -> bytes | None:
    """`contracts.signing.signed_bytes` of a message whose values are plain JSON, or None (then the exact code decides)."""
    try:
        fields = {name: message[name] for name in SIGNED_FIELDS}
    except KeyError:
        return None
    if not _plain(fields):
        return None
    try:
        return SIGNING_CONTEXT + orjson.dumps(fields, option=_SORTED)
    except orjson.JSONEncodeError:  # an integer beyond 64 bits, a lone surrogate
        return None


def signature_holds(public_key: Any, message: Any) -> bool:
    """True when `message["signature"]` surely verifies with `public_key` over the message's signed
    bytes; False when it does not or when in doubt (`contracts.signing.verification_problem` says which)."""
    if type(public_key) is not str or type(message) is not dict:
        return False
    key = _key(public_key)
    signature = _raw(message.get("signature"), 64)
    data = signed_bytes(message)
    if key is None or signature is None or data is None:
        return False
    try:
        crypto_sign_open(signature + data, key)  # libsodium (PyNaCl): stricter than RFC 8032, never laxer
    except BadSignatureError:
        return False
    return True


def same_json(left: Any, right: Any) -> bool:
    """True when both are equal JSON values of equal types: equal in Python (NaN is not, though orjson
    writes it as null) and written alike (true, 1 and 1.0 are written apart). False when they differ
    or cannot be written: then the exact comparison decides."""
    try:
        return left == right and orjson.dumps(left, option=_SORTED) == orjson.dumps(right, option=_SORTED)
    except (TypeError, orjson.JSONEncodeError):
        return False
