"""The per-stream hash chain: each event's hash covers the previous hash and its own canonical JSON.

Anyone holding the log can recompute the chain; an edited, deleted, inserted or swapped
event breaks it at that place.
"""

import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timezone
from decimal import Decimal
from typing import Any
from uuid import UUID

import orjson

GENESIS = ""
"""The previous hash of a stream's first event."""


def _default(value: Any) -> Any:
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, UUID):
        return str(value)
    if isinstance(value, datetime):
        return value.astimezone(timezone.utc).isoformat()
    if hasattr(value, "isoformat"):
        return value.isoformat()
    raise TypeError(f"not JSON-serialisable: {type(value).__name__}")


_ORJSON_OPTIONS = orjson.OPT_SORT_KEYS | orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_PASSTHROUGH_SUBCLASS


def canonical_bytes(value: Any) -> bytes:
    """Sorted keys, no whitespace, UTF-8 characters as they are: the same bytes for the same fact.

    orjson gives exactly the bytes of `json.dumps(sort_keys=True, separators=(",", ":"),
    ensure_ascii=False)` for JSON data, only faster (tests/unit/test_hash_chain.py checks the
    two agree); anything orjson will not take (integers beyond 64 bits, non-string keys) goes
    the standard library's way.
    """
    try:
        return orjson.dumps(value, default=_default, option=_ORJSON_OPTIONS)
    except (TypeError, orjson.JSONEncodeError):
        return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=_default).encode("utf-8")


def canonical_json(value: Any) -> str:
    """The canonical JSON text of a value (see canonical_bytes)."""
    return canonical_bytes(value).decode("utf-8")


def hashed_content(
    *,
    event_id: UUID | str,
    event_type: str,
    schema_version: int,
    stream_id: str,
    stream_version: int,
    occurred_at: datetime,
    producer: str,
    correlation_id: str,
    causation_id: str | None,
    payload: dict[str, Any],
) -> dict[str, Any]:
    """The fields of an event the hash covers (everything but its position and the hashes)."""
    return {
        "event_id": str(event_id),
        "event_type": event_type,
        "schema_version": schema_version,
        "stream_id": stream_id,
        "stream_version": stream_version,
        "occurred_at": occurred_at.astimezone(timezone.utc).isoformat(),
        "producer": producer,
        "correlation_id": correlation_id,
        "causation_id": causation_id,
        "payload": payload,
    }


def link_hash(prev_hash: str, content: dict[str, Any]) -> str:
    """sha256 (hex) over the previous hash and the event's canonical JSON."""
    digest = hashlib.sha256()
    digest.update(prev_hash.encode("ascii"))
    digest.update(canonical_bytes(content))
    return digest.hexdigest()


@dataclass(frozen=True)
class BrokenLink:
    """The first place a stream's chain does not hold, and why."""

    stream_id: str
    stream_version: int
    global_position: int | None
    event_id: str
    reason: str


def verify_chain(stream_id: str, events: Iterable[dict[str, Any]]) -> BrokenLink | None:
    """Check one stream's events (ordered by stream_version): versions 1..n, each prev_hash and hash right.

    Each event is a mapping with the hashed fields plus stream_version, global_position,
    prev_hash and hash. Returns the first broken link, or None when the chain holds.
    """
    expected_prev = GENESIS
    expected_version = 1
    for event in events:
        where = dict(
            stream_id=stream_id,
            stream_version=event["stream_version"],
            global_position=event.get("global_position"),
            event_id=str(event["event_id"]),
        )
        if event["stream_version"] != expected_version:
            return BrokenLink(**where, reason=f"expected stream version {expected_version}: an event is missing or out of place")
        if (event.get("prev_hash") or GENESIS) != expected_prev:
            return BrokenLink(**where, reason="prev_hash does not match the previous event's hash")
        content = hashed_content(**{key: event[key] for key in _HASHED_KEYS})
        if link_hash(expected_prev, content) != event["hash"]:
            return BrokenLink(**where, reason="hash does not match the event's content: it was edited")
        expected_prev = event["hash"]
        expected_version += 1
    return None


_HASHED_KEYS = (
    "event_id",
    "event_type",
    "schema_version",
    "stream_id",
    "stream_version",
    "occurred_at",
    "producer",
    "correlation_id",
    "causation_id",
    "payload",
)
