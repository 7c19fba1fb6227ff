"""Is the log intact? Every stream's hash chain (`hash_chain`) and every event id used once (`duplicate_event`).

Pure functions of the log: no I/O, one pass per check. Each finding names the exact record.
"""

from __future__ import annotations

import hashlib
from datetime import timezone
from collections.abc import Container
from itertools import pairwise
from typing import Any

import orjson

from events.hashchain import GENESIS, verify_chain
from farmlink.audit.model import AuditLog, Finding, Record, finding_at
from farmlink.audit.replay import streams_of

HASH_CHAIN = "hash_chain"
DUPLICATE_EVENT = "duplicate_event"


class _ChainView:
    """A record seen as the mapping `verify_chain` reads, without copying it into a dict."""

    __slots__ = ("_record",)

    def __init__(self, record: Record) -> None:
        self._record = record

    def __getitem__(self, key: str) -> Any:
        return getattr(self._record, key)

    def get(self, key: str, default: Any = None) -> Any:
        return getattr(self._record, key, default)


def _link(prev: str, r: Record) -> str:
    """sha256 over the previous hash and the canonical JSON of the event's hashed fields (events/hashchain.py): the
    same bytes as `canonical_bytes` for what a log holds (parsed JSON), made without its dict and mapping layers."""
    content = {
        "event_id": str(r.event_id),
        "event_type": r.event_type,
        "schema_version": r.schema_version,
        "stream_id": r.stream_id,
        "stream_version": r.stream_version,
        "occurred_at": r.occurred_at.astimezone(timezone.utc).isoformat(),
        "producer": r.producer,
        "correlation_id": r.correlation_id,
        "causation_id": r.causation_id,
        "payload": r.payload,
    }
    return hashlib.sha256(prev.encode("ascii") + orjson.dumps(content, option=orjson.OPT_SORT_KEYS)).hexdigest()


_DOUBT = (TypeError, ValueError, AttributeError, UnicodeError, orjson.JSONEncodeError)


def _chain_holds(records: list[Record]) -> bool:
    """True when every link holds: versions 1..n, each prev_hash the previous hash, each hash `_link`;
    False (and `verify_chain` says where and why) at the first doubt."""
    prev, version = GENESIS, 1
    try:
        for r in records:
            if r.stream_version != version or (r.prev_hash or GENESIS) != prev or _link(prev, r) != r.hash:
                return False
            prev, version = r.hash, version + 1
    except _DOUBT:
        return False
    return True


class ChainCursor:
    """The hash chains of a log read as it streams by, in global order. In an honest log each stream's events
    come in version order and every link holds; a stream where anything is in doubt becomes a suspect, to be read
    again whole and located exactly by `stream_break` (which orders by version and says why). `multi`: the streams
    that hold more than one event (the store says which: store_questions.py); any other is checked as a whole
    stream of one event (version 1, no previous hash) and forgotten, so only those streams keep a head here (next
    version, hash, global position). None: every stream keeps one."""

    __slots__ = ("heads", "multi", "suspects")

    def __init__(self, multi: Container[str] | None = None) -> None:
        self.heads: dict[str, tuple[int, str, int]] = {}
        self.multi = multi
        self.suspects: set[str] = set()

    def feed(self, records: list[Record]) -> None:
        heads, suspects, multi = self.heads, self.suspects, self.multi
        for r in records:
            stream_id = r.stream_id
            if stream_id in suspects:
                continue
            version, prev, position = heads.get(stream_id) or (1, GENESIS, 0)
            try:
                holds = (
                    r.stream_version == version
                    and (r.prev_hash or GENESIS) == prev
                    and r.global_position > position
                    and _link(prev, r) == r.hash
                )
            except _DOUBT:
                holds = False
            if not holds:
                suspects.add(stream_id)
            elif multi is None or stream_id in multi:
                heads[stream_id] = (version + 1, r.hash, r.global_position)


def _out_of_global_order(records: list[Record]) -> Finding | None:
    """Within a stream, later versions were appended later: their global positions must grow too."""
    for before, after in pairwise(records):
        if after.global_position <= before.global_position:
            return finding_at(
                HASH_CHAIN,
                after,
                f"stream version {after.stream_version} sits at global position {after.global_position}, "
                f"not after version {before.stream_version} at {before.global_position}: events were moved",
            )
    return None


def stream_break(stream_id: str, records: list[Record]) -> Finding | None:
    """The first broken link of one stream (records in stream order), or None when it holds.

    An edited event (payload or metadata), a deleted or inserted one, two events whose versions or
    contents were swapped all break the hash chain; two events whose global positions were swapped
    keep it but break the order of positions. Deleting a stream's last event leaves no trace here
    (re-execution and the other checks see it where it matters).
    """
    if _chain_holds(records):
        return _out_of_global_order(records)
    link = verify_chain(stream_id, map(_ChainView, records))
    if link is None:
        return _out_of_global_order(records)
    record = next(r for r in records if r.stream_version == link.stream_version and r.event_id == link.event_id)
    return finding_at(HASH_CHAIN, record, link.reason)


def check_hash_chains(log: AuditLog) -> list[Finding]:
    """One finding per stream whose hash chain does not hold, at its first broken link."""
    findings = []
    for schema in sorted(log.by_schema):
        for stream_id, records in streams_of(log.by_schema[schema]).items():
            finding = stream_break(stream_id, records)
            if finding is not None:
                findings.append(finding)
    return findings


def check_unique_event_ids(log: AuditLog) -> list[Finding]:
    """Every event id names one event across all schemas: a repeat is a copied or forged event."""
    first: dict[str, Record] = {}
    findings = []
    for record in log.records():
        earlier = first.setdefault(record.event_id.lower(), record)
        if earlier is not record:
            findings.append(finding_at(DUPLICATE_EVENT, record, f"event id {record.event_id} is already used by {earlier.place}"))
    return findings
