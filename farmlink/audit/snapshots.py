"""The snapshot check: every stored snapshot of a product's book must be the book re-execution holds
after the same journal entry.

Snapshots (`matching.snapshots`, written by services/matching/snapshots.py) are derived data: the
live service restarts from them, the audit never does. It re-executes every journal from its first
entry (replay.py) and, right after each journal entry a snapshot names, encodes the re-executed
book the same way (`matcher.snapshot.snapshot_bytes`) and compares. A finding names the product
and the journal_seq when a snapshot
- cannot be read (its state is not zlib-compressed snapshot bytes),
- does not match its own digest (the state or the digest was changed),
- differs from the re-executed book (its digest is not the re-executed state's; the finding names
  the parts that differ: resting lots, open orders, seen ids, ...),
- stands at another stream version than the one its entry's decisions end at,
- names a journal entry re-execution never reached (a product without a journal, or past its end).

States are read one row at a time and only their digests are kept; the state of a snapshot that
disagrees is read again afterwards to say what differs. Only the PostgreSQL audit checks snapshots:
they are not published to Kafka.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import asyncpg
import orjson

from farmlink.audit.model import Finding, Record
from matcher.book import Book
from matcher.snapshot import digest_of, snapshot_bytes, snapshot_data

CHECK = "snapshot"
MATCHING = "matching"
DETAILED = 20
"""For at most this many disagreeing snapshots the audit reads the state again to say what differs."""


@dataclass(frozen=True)
class StoredSnapshot:
    """A row of `matching.snapshots` as the audit keeps it: where it says it stands, its digest, and
    what its state really hashes to (None when the state cannot be read; `problem` says why)."""

    product: str
    journal_seq: int
    stream_version: int
    digest: str
    state_digest: str | None
    problem: str | None = None

    @classmethod
    def of(cls, product: str, journal_seq: int, stream_version: int, state: bytes, digest: str) -> StoredSnapshot:
        try:
            data = snapshot_data(state)
        except zlib.error as error:
            return cls(product, journal_seq, stream_version, digest, None, f"its state cannot be decompressed ({error})")
        return cls(product, journal_seq, stream_version, digest, digest_of(data))

    @property
    def key(self) -> tuple[str, int]:
        return (self.product, self.journal_seq)


def _where(product: str, journal_seq: int) -> str:
    return f"{MATCHING}/snapshots (product {product}, journal_seq {journal_seq})"


def _finding(snapshot: StoredSnapshot, message: str, entry: Record | None = None) -> Finding:
    return Finding(
        check=CHECK,
        where=_where(snapshot.product, snapshot.journal_seq),
        message=f"snapshot of {snapshot.product} at journal_seq {snapshot.journal_seq}: {message}",
        schema=MATCHING,
        stream_id=f"market-{snapshot.product}",
        stream_version=snapshot.stream_version,
        global_position=None if entry is None else entry.global_position,
        event_id=None if entry is None else entry.event_id,
    )


def differing_parts(stored: Any, replayed: Any) -> list[str]:
    """The top-level parts of two snapshot states that differ; for tables and id lists, where first."""
    if not isinstance(stored, dict) or not isinstance(replayed, dict):
        return ["the whole state (not a JSON object)"]
    parts = []
    for name in sorted(stored.keys() | replayed.keys()):
        if name not in stored or name not in replayed:
            parts.append(f"{name} ({'missing' if name not in stored else 'not a part of the state'})")
            continue
        mine, theirs = stored[name], replayed[name]
        if mine == theirs:
            continue
        if isinstance(theirs, dict) and "rows" in theirs and isinstance(mine, dict) and isinstance(mine.get("rows"), list):
            parts.append(f"{name} ({_first_difference(mine['rows'], theirs['rows'])})")
        elif isinstance(theirs, dict) and isinstance(mine, dict):
            inner = [key for key in sorted(mine.keys() | theirs.keys()) if mine.get(key) != theirs.get(key)]
            parts.append(f"{name} ({', '.join(inner)})")
        elif isinstance(theirs, list) and isinstance(mine, list):
            parts.append(f"{name} ({_first_difference(mine, theirs)})")
        else:
            parts.append(f"{name} (stored {mine!r}, re-executed {theirs!r})")
    return parts


def _first_difference(stored: list, replayed: list) -> str:
    for index, (mine, theirs) in enumerate(zip(stored, replayed)):
        if mine != theirs:
            return f"{len(stored)} stored, {len(replayed)} re-executed; first difference at {index + 1}: stored {_short(mine)}, re-executed {_short(theirs)}"
    return f"{len(stored)} stored, {len(replayed)} re-executed"


def _short(value: Any, limit: int = 200) -> str:
    text = orjson.dumps(value).decode()
    return text if len(text) <= limit else text[: limit - 3] + "..."


class SnapshotCheck:
    """A StateProbe for `re_execute`: compares the stored snapshots with the re-executed books."""

    def __init__(self, snapshots: Iterable[StoredSnapshot]) -> None:
        self.snapshots: dict[str, dict[int, StoredSnapshot]] = {}
        self._findings: list[Finding] = []
        for snapshot in snapshots:
            self.snapshots.setdefault(snapshot.product, {})[snapshot.journal_seq] = snapshot
        self.reached: set[tuple[str, int]] = set()
        # (snapshot, re-executed digest, re-executed bytes (only the first DETAILED), its journal entry)
        self.disagreeing: dict[tuple[str, int], tuple[StoredSnapshot, str, bytes | None, Record]] = {}

    @property
    def count(self) -> int:
        return sum(len(by_seq) for by_seq in self.snapshots.values())

    # -- the probe

    def journal_seqs(self, product: str) -> Mapping[int, StoredSnapshot]:
        return self.snapshots.get(product, {})

    def observe(self, product: str, entry: Record, stream_version: int, book: Book) -> None:
        snapshot = self.snapshots[product][book.journal_seq]
        self.reached.add(snapshot.key)
        if snapshot.stream_version != stream_version:
            self._findings.append(
                _finding(
                    snapshot,
                    f"stream_version {snapshot.stream_version}, but journal entry {book.journal_seq} and its decisions "
                    f"end at version {stream_version} of market-{product}",
                    entry,
                )
            )
        if snapshot.state_digest is None:
            self._findings.append(_finding(snapshot, str(snapshot.problem), entry))
            return
        if snapshot.state_digest != snapshot.digest:
            self._findings.append(
                _finding(
                    snapshot,
                    f"its state does not match its digest (digest {snapshot.digest[:16]}..., the state hashes to "
                    f"{snapshot.state_digest[:16]}...): the state or the digest was changed",
                    entry,
                )
            )
        replayed = snapshot_bytes(book)
        replayed_digest = digest_of(replayed)
        if replayed_digest != snapshot.state_digest:
            kept = replayed if len(self.disagreeing) < DETAILED else None
            self.disagreeing[snapshot.key] = (snapshot, replayed_digest, kept, entry)

    # -- shares of the products, in worker processes (parallel.py)

    def start_share(self) -> None:
        """Forget what was observed: a worker's copy then gathers only what its products add."""
        self._findings, self.reached, self.disagreeing = [], set(), {}

    def observed(self) -> tuple[list[Finding], set[tuple[str, int]], dict[tuple[str, int], Any]]:
        return self._findings, self.reached, self.disagreeing

    def add_share(self, findings: list[Finding], reached: set[tuple[str, int]], disagreeing: dict[tuple[str, int], Any]) -> None:
        """Take in what a worker's share observed (the re-executed states kept for the first DETAILED disagreements only)."""
        self._findings += findings
        self.reached |= reached
        for key, (snapshot, digest, replayed, entry) in disagreeing.items():
            self.disagreeing[key] = (snapshot, digest, replayed if len(self.disagreeing) < DETAILED else None, entry)

    # -- the findings

    def findings(self, states: Mapping[tuple[str, int], bytes] | None = None) -> list[Finding]:
        """Every finding; `states` (the stored state column of disagreeing snapshots, by product and
        journal_seq) lets the findings say which parts differ."""
        states = states or {}
        findings = list(self._findings)
        for key, (snapshot, replayed_digest, replayed, entry) in self.disagreeing.items():
            detail = ""
            if replayed is not None and key in states:
                try:
                    parts = differing_parts(orjson.loads(snapshot_data(states[key])), orjson.loads(replayed))
                    detail = f"; differs in {'; '.join(parts)}"
                except (zlib.error, orjson.JSONDecodeError) as error:
                    detail = f"; its state is not JSON ({error})"
            findings.append(
                _finding(
                    snapshot,
                    f"disagrees with the re-executed book after journal entry {snapshot.journal_seq} (stored state "
                    f"{str(snapshot.state_digest)[:16]}..., re-executed {replayed_digest[:16]}...){detail}",
                    entry,
                )
            )
        for product, by_seq in sorted(self.snapshots.items()):
            for journal_seq, snapshot in sorted(by_seq.items()):
                if snapshot.key not in self.reached:
                    findings.append(
                        _finding(snapshot, f"re-execution of the {product} journal never reached journal entry {journal_seq}")
                    )
        return findings

    def detail_keys(self) -> list[tuple[str, int]]:
        """The snapshots whose stored state the findings would like to read again."""
        return [key for key, (_, _, replayed, _) in self.disagreeing.items() if replayed is not None]


# ---------------------------------------------------------------- reading PostgreSQL


def _table(prefix: str) -> str:
    return f'"{prefix}{MATCHING}".snapshots'


async def load_snapshots(dsn: str, prefix: str = "") -> list[StoredSnapshot]:
    """Every snapshot row of the matching schema (none if it has no snapshots table), states hashed and let go."""
    conn = await asyncpg.connect(dsn)
    try:
        if not await conn.fetchval("SELECT to_regclass($1) IS NOT NULL", f"{prefix}{MATCHING}.snapshots"):
            return []
        snapshots = []
        async with conn.transaction(isolation="repeatable_read", readonly=True):
            cursor = conn.cursor(
                f"SELECT product, journal_seq, stream_version, state, digest FROM {_table(prefix)} ORDER BY product, journal_seq",
                prefetch=4,
            )
            async for row in cursor:
                snapshots.append(StoredSnapshot.of(row[0], row[1], row[2], row[3], row[4]))
        return snapshots
    finally:
        await conn.close()


async def load_states(dsn: str, keys: Iterable[tuple[str, int]], prefix: str = "") -> dict[tuple[str, int], bytes]:
    """The stored state column of some snapshots, by (product, journal_seq)."""
    keys = list(keys)
    if not keys:
        return {}
    conn = await asyncpg.connect(dsn)
    try:
        rows = await conn.fetch(
            f"SELECT product, journal_seq, state FROM {_table(prefix)} "
            "WHERE (product, journal_seq) IN (SELECT * FROM unnest($1::text[], $2::int[]))",
            [product for product, _ in keys],
            [seq for _, seq in keys],
        )
        return {(row["product"], row["journal_seq"]): row["state"] for row in rows}
    finally:
        await conn.close()


async def snapshot_findings(dsn: str, check: SnapshotCheck, prefix: str = "") -> list[Finding]:
    """The check's findings, with the parts that differ read from the disagreeing snapshots."""
    return check.findings(await load_states(dsn, check.detail_keys(), prefix))
