"""Digests of the whole log a third party can hold, and proofs that the log still extends them.

Every stream is a hash chain (events/hashchain.py), so a stream's head (its last version, that
event's hash and global position) stands for everything before it in the stream. A digest is a
Merkle root over the heads of every stream of every schema as of a global position per schema,
with those positions:

    leaf(head) = sha256(0x00 || canonical JSON [schema, stream_id, stream_version, global_position, hash])
    node(l, r) = sha256(0x01 || l || r)

over the leaves sorted by (schema, stream_id), split as RFC 6962's Merkle tree hash (the left part
the largest power of two below the count). Later events move no head as of the digest's positions,
so a log that only grew still gives the same root; an event at or before them that was edited
(and its chain resealed), deleted or inserted moves a head, or adds or removes one, and the root
differs. The chains themselves are recomputed from the events' content by the checks (hash_chain).

A proof for one event: the links of its stream from it to the head as of the digest (recomputed),
then the Merkle audit path from that head's leaf to the root.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import orjson

from farmlink.audit.model import AuditLog, Finding, Record

DIGEST_FORMAT = "farmlink.audit.digest"
DIGEST_VERSION = 1
CHECK = "digest"


@dataclass(frozen=True, slots=True)
class Head:
    """A stream's last event as of some position: its version, global position and hash."""

    stream_version: int
    global_position: int
    hash: str


Heads = dict[str, dict[str, Head]]
"""schema -> stream_id -> head."""


def heads_as_of(log: AuditLog, positions: dict[str, int] | None = None) -> Heads:
    """Each stream's head among the events at or before `positions` (per schema; None: every event).
    The head is the event of the highest stream version (the later one on a tie)."""
    heads: Heads = {}
    for schema, records in log.by_schema.items():
        limit = None if positions is None else positions.get(schema, 0)
        mine = heads.setdefault(schema, {})
        for record in records:
            if limit is not None and record.global_position > limit:
                continue
            known = mine.get(record.stream_id)
            if known is None or record.stream_version >= known.stream_version:
                mine[record.stream_id] = Head(record.stream_version, record.global_position, record.hash)
        if not mine:
            del heads[schema]
    return heads


class HeadsCursor:
    """Each stream's head (as `heads_as_of` finds it), each schema's last position and how many events there are,
    over a log read as it streams by; with `limit` (a checkpoint's positions) also the heads and count at or
    before them. Holds a head per stream, never the events."""

    def __init__(self, limit: dict[str, int] | None = None, streams: bool = True) -> None:
        self.limit = limit
        self.streams = streams
        """Whether to keep each stream's head (a checkpoint's heads need them): else only positions and counts (and,
        with `limit`, the heads at or before it)."""
        self.heads: Heads = {}
        self.before: Heads = {}
        self.positions: dict[str, int] = {}
        self.counts: dict[str, int] = {}
        self.count_before = 0

    @property
    def count(self) -> int:
        return sum(self.counts.values())

    def feed(self, records: Iterable[Record]) -> None:
        limit = self.limit
        for r in records:
            if self.streams:
                _keep_head(self.heads.setdefault(r.schema, {}), r.stream_id, Head(r.stream_version, r.global_position, r.hash))
            self.counts[r.schema] = self.counts.get(r.schema, 0) + 1
            if r.global_position > self.positions.get(r.schema, 0):
                self.positions[r.schema] = r.global_position
            if limit is not None and r.global_position <= limit.get(r.schema, 0):
                _keep_head(self.before.setdefault(r.schema, {}), r.stream_id, Head(r.stream_version, r.global_position, r.hash))
                self.count_before += 1

    def merge(self, other: HeadsCursor) -> None:
        for mine, theirs in ((self.heads, other.heads), (self.before, other.before)):
            for schema, heads in theirs.items():
                into = mine.setdefault(schema, {})
                for stream_id, head in heads.items():
                    _keep_head(into, stream_id, head)
        for schema, position in other.positions.items():
            self.positions[schema] = max(position, self.positions.get(schema, 0))
        for schema, count in other.counts.items():
            self.counts[schema] = self.counts.get(schema, 0) + count
        self.count_before += other.count_before


def _keep_head(heads: dict[str, Head], stream_id: str, head: Head) -> None:
    known = heads.get(stream_id)
    if known is None or (head.stream_version, head.global_position) >= (known.stream_version, known.global_position):
        heads[stream_id] = head


def last_positions(log: AuditLog) -> dict[str, int]:
    """The last global position of each schema's log."""
    return {schema: max(r.global_position for r in records) for schema, records in log.by_schema.items() if records}


def count_as_of(log: AuditLog, positions: dict[str, int]) -> int:
    return sum(1 for schema, records in log.by_schema.items() for r in records if r.global_position <= positions.get(schema, 0))


# ---------------------------------------------------------------- the Merkle tree


def leaf_hash(schema: str, stream_id: str, head: Head) -> bytes:
    return hashlib.sha256(
        b"\x00" + orjson.dumps([schema, stream_id, head.stream_version, head.global_position, head.hash])
    ).digest()


def _node(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def _split(n: int) -> int:
    """The largest power of two below n (n > 1)."""
    k = 1
    while k * 2 < n:
        k *= 2
    return k


def merkle_root(leaves: list[bytes]) -> bytes:
    """RFC 6962's Merkle tree hash of the leaf hashes (sha256 of nothing for none)."""
    if not leaves:
        return hashlib.sha256(b"").digest()
    level = leaves
    # bottom-up over complete subtrees gives the same tree as the recursive split, without recursion
    return _root(level, 0, len(level))


def _root(leaves: list[bytes], start: int, end: int) -> bytes:
    n = end - start
    if n == 1:
        return leaves[start]
    k = _split(n)
    return _node(_root(leaves, start, start + k), _root(leaves, start + k, end))


def audit_path(leaves: list[bytes], index: int) -> list[tuple[str, str]]:
    """The sibling hashes from leaf `index` up to the root, each with its side ("left"/"right"), hex."""
    path: list[tuple[str, str]] = []
    start, end = 0, len(leaves)
    frames: list[tuple[str, bytes]] = []
    while end - start > 1:
        k = _split(end - start)
        if index < start + k:
            frames.append(("right", _root(leaves, start + k, end)))
            end = start + k
        else:
            frames.append(("left", _root(leaves, start, start + k)))
            start = start + k
    for side, sibling in reversed(frames):
        path.append((side, sibling.hex()))
    return path


def root_from_path(leaf: bytes, path: list[tuple[str, str]]) -> bytes:
    """The root a leaf and its audit path give: what a third party computes to check a proof."""
    node = leaf
    for side, sibling in path:
        node = _node(bytes.fromhex(sibling), node) if side == "left" else _node(node, bytes.fromhex(sibling))
    return node


def _sorted_leaves(heads: Heads) -> list[tuple[str, str, Head, bytes]]:
    return [
        (schema, stream_id, head, leaf_hash(schema, stream_id, head))
        for schema in sorted(heads)
        for stream_id, head in sorted(heads[schema].items())
    ]


def root_of(heads: Heads) -> str:
    return merkle_root([leaf for *_, leaf in _sorted_leaves(heads)]).hex()


# ---------------------------------------------------------------- digests


@dataclass(frozen=True)
class Digest:
    """What a third party holds: the positions per schema, how many events and streams lay at or before them, the root."""

    positions: dict[str, int]
    events: int
    streams: int
    root: str

    def as_dict(self) -> dict[str, Any]:
        return {
            "format": DIGEST_FORMAT,
            "version": DIGEST_VERSION,
            "positions": dict(sorted(self.positions.items())),
            "events": self.events,
            "streams": self.streams,
            "root": self.root,
        }

    def text(self) -> str:
        return json.dumps(self.as_dict(), separators=(",", ":"), sort_keys=True)

    @classmethod
    def parse(cls, text: str) -> Digest:
        """A digest from its JSON text; ValueError naming the field that is wrong."""
        try:
            data = json.loads(text)
        except json.JSONDecodeError as error:
            raise ValueError(f"not a digest: not JSON ({error})") from error
        if not isinstance(data, dict) or data.get("format") != DIGEST_FORMAT:
            raise ValueError(f"not a digest: format is not {DIGEST_FORMAT!r}")
        if data.get("version") != DIGEST_VERSION:
            raise ValueError(f"digest version {data.get('version')!r}: this farmlink reads version {DIGEST_VERSION}")
        positions = data.get("positions")
        if not isinstance(positions, dict) or not all(isinstance(k, str) and type(v) is int for k, v in positions.items()):
            raise ValueError("digest field positions: an object of schema -> global position")
        for name in ("events", "streams"):
            if type(data.get(name)) is not int:
                raise ValueError(f"digest field {name}: a whole number")
        root = data.get("root")
        if not isinstance(root, str) or len(root) != 64 or any(c not in "0123456789abcdef" for c in root):
            raise ValueError("digest field root: 64 lowercase hex digits")
        return cls(positions, data["events"], data["streams"], root)


def digest_of(log: AuditLog) -> Digest:
    """The digest of the whole log as it stands."""
    positions = last_positions(log)
    heads = heads_as_of(log, positions)
    return Digest(positions, log.count(), sum(len(streams) for streams in heads.values()), root_of(heads))


def _finding(message: str, record: Record | None = None, where: str = "log") -> Finding:
    if record is None:
        return Finding(check=CHECK, where=where, message=message)
    return Finding(
        check=CHECK,
        where=record.place,
        message=message,
        schema=record.schema,
        stream_id=record.stream_id,
        stream_version=record.stream_version,
        global_position=record.global_position,
        event_id=record.event_id,
    )


def as_of_digest(log: AuditLog, digest: Digest) -> HeadsCursor:
    """One pass over the log: each schema's last position and the heads and count at or before the digest's positions."""
    cursor = HeadsCursor(digest.positions, streams=False)
    for schema in sorted(log.by_schema):
        cursor.feed(log.by_schema[schema])
    return cursor


def extends(log: AuditLog, digest: Digest, chain_findings: list[Finding], cursor: HeadsCursor | None = None) -> list[Finding]:
    """Findings when the log does not extend the digest: an event at or before its positions whose chain
    does not hold (from `chain_findings`), a different number of events there, or another Merkle root.
    `cursor`: the log's pass as of the digest (`as_of_digest`), when the caller has made it already."""
    cursor = cursor or as_of_digest(log, digest)
    findings = [
        _finding(f"before the digest: {finding.message}", where=finding.where)
        for finding in chain_findings
        if finding.schema is not None
        and finding.global_position is not None
        and finding.global_position <= digest.positions.get(finding.schema, 0)
    ]
    for schema, position in sorted(digest.positions.items()):
        present = cursor.positions.get(schema, 0)
        if present < position:
            findings.append(
                _finding(
                    f"the digest covers {schema} up to position {position}, the log now ends at {present}",
                    where=f"{schema} (position {position})",
                )
            )
    if cursor.count_before != digest.events:
        findings.append(
            _finding(f"{cursor.count_before} events lie at or before the digest's positions, the digest counted {digest.events}")
        )
    root = root_of(cursor.before)
    if root != digest.root:
        findings.append(
            _finding(
                f"the stream heads as of the digest's positions give the Merkle root {root[:16]}..., the digest holds "
                f"{digest.root[:16]}...: an event at or before those positions was changed, deleted or inserted"
            )
        )
    return findings


# ---------------------------------------------------------------- the proof for one event


def proof_for(log: AuditLog, digest: Digest, event_id: str, heads: Heads | None = None) -> dict[str, Any]:
    """How one event at or before the digest is bound to its root: its stream's links up to the head as
    of the digest, and the Merkle audit path from that head's leaf. KeyError when no such event.
    `heads`: the heads as of the digest's positions, when the caller has them (`as_of_digest`)."""
    record = next((r for r in log.records() if r.event_id == event_id), None)
    if record is None:
        raise KeyError(f"no event {event_id} in the log")
    if record.global_position > digest.positions.get(record.schema, 0):
        raise KeyError(f"event {event_id} is at {record.schema} position {record.global_position}, after the digest")
    heads = heads if heads is not None else heads_as_of(log, digest.positions)
    leaves = _sorted_leaves(heads)
    index = next(
        i for i, (schema, stream_id, *_rest) in enumerate(leaves) if (schema, stream_id) == (record.schema, record.stream_id)
    )
    _, _, head, leaf = leaves[index]
    links = sorted(
        (
            r
            for r in log.by_schema[record.schema]
            if r.stream_id == record.stream_id and record.stream_version < r.stream_version <= head.stream_version
        ),
        key=lambda r: r.stream_version,
    )
    path = audit_path([leaf for *_, leaf in leaves], index)
    root = root_from_path(leaf, path).hex()
    return {
        "event": {
            "schema": record.schema,
            "stream_id": record.stream_id,
            "stream_version": record.stream_version,
            "global_position": record.global_position,
            "event_id": record.event_id,
            "hash": record.hash,
        },
        "chain_to_head": [{"stream_version": r.stream_version, "prev_hash": r.prev_hash, "hash": r.hash} for r in links],
        "head": {"stream_version": head.stream_version, "global_position": head.global_position, "hash": head.hash},
        "leaf": leaf.hex(),
        "merkle_path": [{"side": side, "hash": sibling} for side, sibling in path],
        "root": root,
        "matches_digest": root == digest.root,
    }
