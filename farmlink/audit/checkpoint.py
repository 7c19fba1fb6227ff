"""Checkpoints for incremental audits.

An auditor who audited the log clean up to global position P (per schema) keeps a checkpoint:
those positions, how many events lay at or before them, every stream's chain head there (and
their Merkle root, as in ledger.py), the state hash, what re-execution needs to go on (each
product's re-executed book as snapshot bytes, the fills' running digest and count, the inputs
re-executed), all signed with the auditor's own Ed25519 key. `farmlink audit --since CHECKPOINT`
(run.py) then
- checks the signature with the auditor's key (a checkpoint that does not verify is refused),
- reads the whole log and recomputes every hash chain (as the full audit does: an event edited
  in place before P breaks its chain),
- compares every stream's head as of P with the checkpoint's (an event edited and its chain
  resealed, deleted or inserted before P moves or adds a head: a `checkpoint` finding),
- runs the ordered passes and the cheap checks over the whole log (keys, message ids, duplicate
  ids, the journal's completeness, the invariants: they need the terms from before P),
- and verifies signatures and re-executes the matcher only for what came after P, from the
  checkpoint's books, so the verdict and state hash equal a full audit's.
A checkpoint is written only after a clean audit: it vouches for the log up to P.
"""

from __future__ import annotations

import base64
import json
import os
import zlib
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from farmlink.audit.ledger import Head, Heads, HeadsCursor, count_as_of, heads_as_of, root_of
from farmlink.audit.model import AuditLog, Finding, Record

CHECKPOINT_FORMAT = "farmlink.audit.checkpoint"
CHECKPOINT_VERSION = 1
SIGNING_CONTEXT = b"farmlink-audit-checkpoint-v1\n"
CHECK = "checkpoint"


class CheckpointError(ValueError):
    """A checkpoint that cannot be used: unreadable, or not signed by the auditor's key."""


# ---------------------------------------------------------------- the auditor's key


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def load_or_create_key(path: Path) -> Ed25519PrivateKey:
    """The auditor's private key from `path` (base64url of the 32-byte seed), made (mode 0600) when missing."""
    if path.exists():
        try:
            return Ed25519PrivateKey.from_private_bytes(_unb64(path.read_text(encoding="ascii").strip()))
        except ValueError as error:
            raise CheckpointError(f"{path}: not an auditor key (base64url of a 32-byte Ed25519 seed): {error}") from error
    path.parent.mkdir(parents=True, exist_ok=True)
    seed = os.urandom(32)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w", encoding="ascii") as handle:
        handle.write(_b64(seed) + "\n")
    return Ed25519PrivateKey.from_private_bytes(seed)


def public_key_text(key: Ed25519PrivateKey) -> str:
    return _b64(key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw))


# ---------------------------------------------------------------- the checkpoint


@dataclass
class Checkpoint:
    """An auditor's signed record of a clean log up to `positions`."""

    positions: dict[str, int]
    events: int
    heads: Heads
    root: str
    state_hash: str
    fills_digest: str
    fill_count: int
    input_count: int
    books: dict[str, bytes] = field(default_factory=dict)
    """product -> snapshot bytes of its re-executed book at the checkpoint."""
    auditor: str = ""
    signature: str = ""

    def body(self) -> dict[str, Any]:
        """Everything the signature covers."""
        return {
            "format": CHECKPOINT_FORMAT,
            "version": CHECKPOINT_VERSION,
            "positions": dict(sorted(self.positions.items())),
            "events": self.events,
            "root": self.root,
            "state_hash": self.state_hash,
            "fills_digest": self.fills_digest,
            "fill_count": self.fill_count,
            "input_count": self.input_count,
            "auditor": self.auditor,
            "heads": {
                schema: {stream: [h.stream_version, h.global_position, h.hash] for stream, h in sorted(streams.items())}
                for schema, streams in sorted(self.heads.items())
            },
            "books": {product: _b64(zlib.compress(data, 6)) for product, data in sorted(self.books.items())},
        }

    def signed_bytes(self) -> bytes:
        return SIGNING_CONTEXT + orjson.dumps(self.body(), option=orjson.OPT_SORT_KEYS)

    def sign(self, key: Ed25519PrivateKey) -> Checkpoint:
        self.auditor = public_key_text(key)
        self.signature = _b64(key.sign(self.signed_bytes()))
        return self

    def write(self, path: Path) -> None:
        path.write_bytes(orjson.dumps({**self.body(), "signature": self.signature}, option=orjson.OPT_SORT_KEYS))

    def journal_seqs(self) -> dict[str, int]:
        """The journal entry each product's book at the checkpoint stands after."""
        return {product: int(orjson.loads(data)["journal_seq"]) for product, data in self.books.items()}

    @classmethod
    def read(cls, path: Path, key: Ed25519PrivateKey) -> Checkpoint:
        """The checkpoint in `path`, its signature checked against the auditor's key; CheckpointError otherwise."""
        try:
            data = json.loads(path.read_bytes())
            if data.get("format") != CHECKPOINT_FORMAT or data.get("version") != CHECKPOINT_VERSION:
                raise CheckpointError(f"{path}: not a version {CHECKPOINT_VERSION} audit checkpoint")
            checkpoint = cls(
                positions={k: int(v) for k, v in data["positions"].items()},
                events=int(data["events"]),
                heads={
                    schema: {stream: Head(int(v[0]), int(v[1]), str(v[2])) for stream, v in streams.items()}
                    for schema, streams in data["heads"].items()
                },
                root=str(data["root"]),
                state_hash=str(data["state_hash"]),
                fills_digest=str(data["fills_digest"]),
                fill_count=int(data["fill_count"]),
                input_count=int(data["input_count"]),
                books={product: zlib.decompress(_unb64(text)) for product, text in data["books"].items()},
                auditor=str(data["auditor"]),
                signature=str(data["signature"]),
            )
        except CheckpointError:
            raise
        except (OSError, ValueError, KeyError, TypeError, AttributeError, IndexError, zlib.error) as error:
            raise CheckpointError(f"{path}: unreadable checkpoint: {type(error).__name__}: {error}") from error
        if checkpoint.auditor != public_key_text(key):
            raise CheckpointError(f"{path}: signed by {checkpoint.auditor}, not by this auditor's key ({public_key_text(key)})")
        public: Ed25519PublicKey = key.public_key()
        try:
            public.verify(_unb64(checkpoint.signature), checkpoint.signed_bytes())
        except (InvalidSignature, ValueError) as error:
            raise CheckpointError(f"{path}: the signature does not verify: the checkpoint was changed") from error
        return checkpoint


def make_checkpoint(
    log: AuditLog,
    state_hash: str,
    fills_digest: str,
    fill_count: int,
    input_count: int,
    books: dict[str, bytes],
    key: Ed25519PrivateKey,
    cursor: HeadsCursor | None = None,
) -> Checkpoint:
    """A signed checkpoint of the log as audited now (`cursor`: its heads, positions and count, gathered as the
    log streamed by; else they are read from `log`)."""
    if cursor is None:
        positions = {schema: max(r.global_position for r in records) for schema, records in log.by_schema.items() if records}
        heads, count = heads_as_of(log, positions), log.count()
    else:
        positions, heads, count = dict(cursor.positions), cursor.heads, cursor.count
    return Checkpoint(positions, count, heads, root_of(heads), state_hash, fills_digest, fill_count, input_count, books).sign(key)


class _HeadPlaces:
    """Findings placed at a stream's head as the log has it now (its record), or at the stream where none is left."""

    def __init__(self, records: Iterable[Record], now: Heads) -> None:
        self.by_place = {
            (r.schema, r.stream_id, r.stream_version): r
            for r in records
            if r.stream_id in now.get(r.schema, {}) and r.stream_version == now[r.schema][r.stream_id].stream_version
        }

    def at(self, schema: str, stream_id: str, head: Head | None, message: str) -> Finding:
        record = None if head is None else self.by_place.get((schema, stream_id, head.stream_version))
        if record is None:
            return Finding(check=CHECK, where=f"{schema}/{stream_id}", message=message, schema=schema, stream_id=stream_id)
        return Finding(
            check=CHECK,
            where=record.place,
            message=message,
            schema=schema,
            stream_id=stream_id,
            stream_version=record.stream_version,
            global_position=record.global_position,
            event_id=record.event_id,
        )


def _count_finding(before: int, checkpoint: Checkpoint) -> Finding | None:
    """A schema lost or gained events at or before the checkpoint's positions (`before` of them now)."""
    if before == checkpoint.events:
        return None
    return Finding(
        check=CHECK,
        where="log",
        message=f"{before} events lie at or before the checkpoint's positions "
        f"{dict(sorted(checkpoint.positions.items()))}, the checkpoint counted "
        f"{checkpoint.events}: events were deleted or inserted",
    )


def _moved_head(position: int, old: Head | None, new: Head | None) -> tuple[Head | None, str]:
    """Where and why a stream's head as of the checkpoint differs from the checkpoint's (`old` != `new`)."""
    if old is None:
        return new, (
            f"events at or before the checkpoint's position {position} in a stream the checkpoint does not know: inserted"
        )
    if new is None:
        return None, f"the stream's events up to version {old.stream_version} at the checkpoint are gone: deleted"
    return new, (
        f"head at the checkpoint was version {old.stream_version} at position "
        f"{old.global_position} (hash {old.hash[:16]}...), the log now has version "
        f"{new.stream_version} at {new.global_position} (hash {new.hash[:16]}...): "
        "an event before the checkpoint was changed, deleted or inserted"
    )


def prefix_findings(log: AuditLog, checkpoint: Checkpoint) -> list[Finding]:
    """Where the log at or before the checkpoint's positions is no longer what it vouched for: a stream
    whose head there moved (an event edited and resealed, deleted, or appended before P), a stream it
    did not know, a schema that lost events."""
    now = heads_as_of(log, checkpoint.positions)
    records = log.records() if moved_heads(checkpoint, now) else ()
    return prefix_findings_of(checkpoint, now, count_as_of(log, checkpoint.positions), records)


def _moves(checkpoint: Checkpoint, now: Heads) -> list[tuple[str, str, Head | None, str]]:
    moved = []
    for schema in sorted(set(checkpoint.heads) | set(now)):
        then, current = checkpoint.heads.get(schema, {}), now.get(schema, {})
        for stream_id in sorted(set(then) | set(current)):
            old, new = then.get(stream_id), current.get(stream_id)
            if old != new:
                moved.append((schema, stream_id, *_moved_head(checkpoint.positions.get(schema, 0), old, new)))
    return moved


def moved_heads(checkpoint: Checkpoint, now: Heads) -> list[tuple[str, str, int]]:
    """(schema, stream_id, stream_version) of each head at the checkpoint's positions that moved, as the log has it now."""
    return [(schema, stream_id, head.stream_version) for schema, stream_id, head, _ in _moves(checkpoint, now) if head]


def prefix_findings_of(checkpoint: Checkpoint, now: Heads, before: int, records: Iterable[Record]) -> list[Finding]:
    """`prefix_findings` from the heads at the checkpoint's positions now and how many events lie there;
    `records` holds (at least) the records at the moved heads, to place the findings on."""
    counted = _count_finding(before, checkpoint)
    findings: list[Finding] = [] if counted is None else [counted]
    moved = _moves(checkpoint, now)
    if moved:
        places = _HeadPlaces(records, now)
        findings += [places.at(schema, stream_id, head, message) for schema, stream_id, head, message in moved]
    return findings
