"""One product's share of the streamed audit (streamed.py), run in a worker process: the product's matching
stream (`market-<product>`) read from PostgreSQL a batch at a time, in stream order, and fed to its hash chain,
its re-execution (replay.py) and its market invariants (market_invariants.py) at once. Nothing of the stream is
kept: the worker holds the product's book, the terms its journal set and the totals of its fills; the fill lines
of the state hash go to a file, in the market's order, for the main process to merge.
"""

from __future__ import annotations

import asyncio
import os
import re
import tempfile
import time
from dataclasses import dataclass, field
from typing import Any

import asyncpg
import orjson

from farmlink.audit.amounts import FillTotals
from farmlink.audit.chains import ChainCursor, stream_break
from farmlink.audit.ledger import HeadsCursor
from farmlink.audit.log import stream_rows
from farmlink.audit.market_invariants import _MarketInvariants
from farmlink.audit.model import Finding, Record
from farmlink.audit.parallel import private_mb
from farmlink.audit.replay import MARKET_STREAM_PREFIX, MATCHING, _ProductReplay
from farmlink.audit.snapshots import SnapshotCheck
from farmlink.audit.state import book_line, fill_line_of
from matcher.snapshot import book_from_snapshot, snapshot_bytes

BATCH = 2_000
_SNAPSHOT_ID = re.compile(r"[0-9A-F]+-[0-9A-F]+(-[0-9]+)?")


@dataclass(frozen=True)
class ProductTask:
    """What a worker needs to audit one product (small: sent to the worker, never the log)."""

    dsn: str
    prefix: str
    product: str
    after: int | None = None
    """With a checkpoint: the matching schema's position it vouches for; re-execution starts after it."""
    start_book: bytes | None = None
    want_books: bool = False
    fills_dir: str = ""
    limit: dict[str, int] | None = None
    """With a checkpoint: its positions per schema (the heads there are compared with it)."""
    snapshot: str | None = None
    """The audit's snapshot of the store (pg_export_snapshot), for this worker's reads to see the same store."""


@dataclass
class ProductShare:
    """What one product's share found, and what the main process merges."""

    product: str
    chain: Finding | None
    findings: list[Finding]
    invariants: list[Finding]
    pairs: FillTotals
    input_count: int
    fill_count: int
    fills_file: str
    """The fill lines, one per line as `position<TAB>index<TAB>line`, sorted by (position, index)."""
    book_line: str
    book: bytes | None
    heads: HeadsCursor
    chain_order: int = 0
    """The stream's first global position: a broken chain's finding takes its place among the others by it."""
    cpu_s: float = 0.0
    private_mb: float = 0.0
    probe: tuple[list[Finding], set[tuple[str, int]], dict[tuple[str, int], Any]] = field(default_factory=lambda: ([], set(), {}))


_PROBE: SnapshotCheck | None = None
"""The stored snapshots to compare with the re-executed books: set in the main process before the workers fork."""


def set_probe(probe: SnapshotCheck | None) -> None:
    global _PROBE
    _PROBE = probe


def forget_parent_loop() -> None:
    """In a worker forked from a process running an event loop: that loop is the parent's, not this process's."""
    asyncio.events._set_running_loop(None)
    asyncio.set_event_loop(None)


def run_product(task: ProductTask) -> ProductShare:
    """The product's share (in a worker process, or in this one when there is one worker)."""
    started = time.process_time()
    share = _run_in_own_loop(task)
    share.cpu_s = time.process_time() - started
    share.private_mb = private_mb()
    return share


def _run_in_own_loop(task: ProductTask) -> ProductShare:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(_audit_product(task))
    # called from a running loop (one worker, in-process): a thread of its own runs the product's loop
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, _audit_product(task)).result()


class _FillLines:
    """The re-executed fill lines written out as they are made (sorted again at the end if a forged log made them
    come out of the market's order)."""

    def __init__(self, directory: str) -> None:
        # named by the system, not by the product: a forged stream id may hold a path's characters
        handle, self.path = tempfile.mkstemp(prefix="fills-", suffix=".tsv", dir=directory or None)
        self.file = os.fdopen(handle, "w", encoding="utf-8")
        self.last: tuple[int, int] = (-1, -1)
        self.sorted = True
        self.count = 0

    def write(self, fills: list[tuple[int, int, dict[str, Any]]]) -> None:
        for position, index, payload in fills:
            if (position, index) < self.last:
                self.sorted = False
            self.last = (position, index)
            self.file.write(f"{position}\t{index}\t{fill_line_of(payload)}\n")
        self.count += len(fills)
        fills.clear()

    def close(self) -> str:
        self.file.close()
        if not self.sorted:
            with open(self.path, encoding="utf-8") as source:
                lines = sorted(source, key=lambda line: tuple(int(part) for part in line.split("\t", 2)[:2]))
            with open(self.path, "w", encoding="utf-8") as target:
                target.writelines(lines)
        return self.path


async def _audit_product(task: ProductTask) -> ProductShare:
    stream_id = f"{MARKET_STREAM_PREFIX}{task.product}"
    probe = _PROBE
    if probe is not None:
        probe.start_share()
    book = book_from_snapshot(task.start_book, orjson.loads) if task.start_book is not None else None
    replay = _ProductReplay(task.product, probe, book)
    invariant_findings: list[Finding] = []
    pairs: FillTotals = {}
    invariants = _MarketInvariants(task.product, invariant_findings, pairs)
    chain = ChainCursor()
    lines = _FillLines(task.fills_dir)
    heads = HeadsCursor(task.limit, streams=task.want_books)
    conn = await asyncpg.connect(task.dsn)
    try:
        async with conn.transaction(isolation="repeatable_read", readonly=True):
            if task.snapshot is not None:
                if not _SNAPSHOT_ID.fullmatch(task.snapshot):
                    raise ValueError(f"not a snapshot id: {task.snapshot!r}")
                await conn.execute(f"SET TRANSACTION SNAPSHOT '{task.snapshot}'")
            order = "stream_version, global_position"  # the stream's order, as streams_of sorts it
            async for batch in stream_rows(conn, MATCHING, task.prefix, "stream_id = $1", (stream_id,), order, BATCH):
                heads.feed(batch)
                chain.feed(batch)
                invariants.run(batch)  # the terms set before a checkpoint count too
                replay.feed(batch if task.after is None else [r for r in batch if r.global_position > task.after])
                lines.write(replay.fills)
            replay.close()
            lines.write(replay.fills)
            broken, first = None, 0
            if chain.suspects:  # read the stream again, whole, to say exactly where and why
                records: list[Record] = []
                async for batch in stream_rows(conn, MATCHING, task.prefix, "stream_id = $1", (stream_id,), order, BATCH):
                    records += batch
                broken, first = stream_break(stream_id, records), min(r.global_position for r in records)
    finally:
        await conn.close()
    share = ProductShare(
        task.product,
        broken,
        replay.findings.all(),
        invariant_findings,
        pairs,
        replay.inputs,
        lines.count,
        lines.close(),
        book_line(task.product, replay.book),
        snapshot_bytes(replay.book) if task.want_books else None,
        heads,
        first,
    )
    if probe is not None:
        share.probe = probe.observed()
    return share
