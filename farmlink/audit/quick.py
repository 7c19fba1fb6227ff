"""Quick paths for the audit's two costliest comparisons, each with the exact check as its fallback.

A quick path may only say "this holds": whenever it cannot, or is in doubt, the exact code decides
(and words the finding), so the findings are the same as without it.

- Signatures (`signature_holds`): the signed bytes made with orjson (the same canonical JSON as
  `contracts.signing.canonical_json` for the values a log holds: strings, integers, booleans, null,
  arrays and objects; anything else, a float above all, goes the exact way), verified with
  libsodium's Ed25519 through PyNaCl (about twice as quick as OpenSSL's here; it rejects more, never
  less: non-canonical or small-order keys and R, S >= L, which the exact check then words).
- Re-execution's decisions (`outcome_record`, `derived_text`): the events the matching service's
  outcome mapping records, made as plain values; re-execution falls back to the service's mapping
  wherever they differ from the log, and cross-checks a sample of the rest with it.
- Recorded facts (`same_json`): equal in Python and equal canonical bytes mean equal values of equal types.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from functools import lru_cache
from typing import Any

import orjson
from nacl.bindings import crypto_sign_open
from nacl.exceptions import BadSignatureError

from contracts.signing import SIGNED_FIELDS, SIGNING_CONTEXT
from matcher.facts import Fill, OfferClosed as Closed, OfferOpened as Opened, OfferShrunk as Shrunk
from services.matching.outcomes import FARMLINK_NAMESPACE

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


# ---------------------------------------------------------------- the matcher's decisions

_NAMESPACE = FARMLINK_NAMESPACE.bytes


def derived_text(*parts: object) -> str:
    """`str(services.matching.outcomes.derived_id(*parts))` (uuid5 over the parts joined by "/", RFC 4122),
    without building a UUID object: a third of re-execution went on them."""
    digest = bytearray(hashlib.sha1(_NAMESPACE + "/".join(map(str, parts)).encode("utf-8")).digest()[:16])
    digest[6] = (digest[6] & 0x0F) | 0x50
    digest[8] = (digest[8] & 0x3F) | 0x80
    text = digest.hex()
    return f"{text[:8]}-{text[8:12]}-{text[12:16]}-{text[16:20]}-{text[20:]}"


def _fill(fill: Fill) -> tuple[str, str, dict[str, Any]]:
    fill_id = derived_text("fill", fill.product, fill.lot_id, fill.outlet_kind, fill.outlet_id, fill.position)
    payload = {
        "fill_id": fill_id,
        "product": fill.product,
        "position": fill.position,
        "journal_seq": fill.journal_seq,
        "lot_id": fill.lot_id,
        "cooperative_id": fill.cooperative_id,
        "grade": fill.grade,
        "outlet_kind": fill.outlet_kind,
        "outlet_id": fill.outlet_id,
        "buyer_id": fill.buyer_id,
        "quantity": str(fill.quantity),
        "unit_price_fen": fill.unit_price_fen,
        "price_basis": fill.price_basis,
        "revenue_fen": fill.revenue_fen,
        "household_income_fen": dict(fill.household_income_fen),
        "floor_price_fen": fill.floor_price_fen,
        "market_price_fen": fill.market_price_fen,
        "price_as_of": None if fill.price_as_of is None else fill.price_as_of.isoformat(),
    }
    return "FillMade", fill_id, payload


def _offer(outcome: Any, index: int) -> tuple[str, str, dict[str, Any]]:
    event_id = derived_text("offer", outcome.product, outcome.journal_seq, index)
    if isinstance(outcome, Opened):
        payload = {
            "lot_id": outcome.lot_id,
            "product": outcome.product,
            "grade": outcome.grade,
            "cooperative_id": outcome.cooperative_id,
            "county": outcome.county,
            "township": outcome.township,
            "quantity_left": str(outcome.quantity_left),
            "available_from": outcome.available_from.isoformat(),
            "expires_on": outcome.expires_on.isoformat(),
            "journal_seq": outcome.journal_seq,
        }
        return "OfferOpened", event_id, payload
    if isinstance(outcome, Shrunk):
        payload = {
            "lot_id": outcome.lot_id,
            "product": outcome.product,
            "quantity_left": str(outcome.quantity_left),
            "journal_seq": outcome.journal_seq,
        }
        return "OfferShrunk", event_id, payload
    if isinstance(outcome, Closed):
        return "OfferClosed", event_id, {"lot_id": outcome.lot_id, "product": outcome.product, "journal_seq": outcome.journal_seq}
    raise TypeError(f"unknown outcome {outcome!r}")


def outcome_record(outcome: Any, index: int) -> tuple[str, str, dict[str, Any]]:
    """(event type, event id, JSON payload) that `services.matching.outcomes.outcome_event` records for the
    matcher's outcome number `index` of an input, made as plain values (no pydantic model, no UUID):
    re-execution compares with these first, and with the service's own mapping whenever they differ
    from what was recorded (and on a sample of those that agree: `replay.CROSS_CHECK_EVERY`)."""
    if isinstance(outcome, Fill):
        return _fill(outcome)
    return _offer(outcome, index)
