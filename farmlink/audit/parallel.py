"""The audit's costly checks on both cores: hash chains, signatures, re-execution and the market invariants.

The log is read once, in the main process; worker processes are forked in two stages (`Checks`: as
soon as the matching schema is read, then once the rest is) and see it copy-on-write (nothing is
sent to them but a task's name and number). Each task is a share of independent work:
- a product: re-execute its journal (replay.py, with the snapshot probe) and check its market invariants;
- a share of the streams: their hash chains;
- a share of the pending signatures (signatures.py: the ordered pass ran first, in the main process):
  verify each and compare the recorded fact with the signed payload.
Tasks return only their findings, the state hash's lines and the totals the settlement check needs;
the main process merges them in the log's order, so the findings are the ones the sequential audit
gives, in the same order. With one worker (or where fork is unavailable) the tasks run in-process.
"""

from __future__ import annotations

import gc
import multiprocessing
import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import orjson

from farmlink.audit.amounts import FillTotals, add_pairs
from farmlink.audit.chains import stream_break
from farmlink.audit.market_invariants import check_market_invariants
from farmlink.audit.model import AuditLog, Finding, Record
from farmlink.audit.replay import ReExecution, market_streams, re_execute_products, streams_of
from farmlink.audit.state import StateLines
from farmlink.audit.signatures import PendingSignature, verify_pending
from farmlink.audit.snapshots import SnapshotCheck
from matcher.snapshot import book_from_snapshot, snapshot_bytes

CHAIN_SHARES = 4
MATCHING = "matching"
SIGNATURE_SHARES = 8


def default_workers() -> int:
    """One worker per core the process may use."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


@contextmanager
def no_cyclic_gc() -> Iterator[None]:
    """Without the cyclic garbage collector for the audit's duration: the log is a million acyclic
    records, and each collection would walk all of them again (it tripled the reading time)."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


@dataclass
class _Work:
    """What the workers share (inherited when they fork, never sent)."""

    products: list[tuple[str, list[Record]]]
    chain_shares: list[list[tuple[tuple[str, int], str, list[Record]]]]
    signature_shares: list[list[PendingSignature]]
    probe: SnapshotCheck | None
    after: int | None = None
    """With a checkpoint: the matching schema's position it vouches for; re-execution starts after it."""
    start_books: dict[str, bytes] = field(default_factory=dict)
    """With a checkpoint: each product's book there (snapshot bytes)."""
    want_books: bool = False


_WORK: _Work | None = None


@dataclass
class ProductResult:
    product: str
    reexecution: ReExecution  # without books and streams: they stay in the worker
    book: bytes | None  # the final book's snapshot bytes, when a checkpoint is to be written
    invariants: list[Finding]
    pairs: FillTotals
    probe_findings: list[Finding] = field(default_factory=list)
    probe_reached: set[tuple[str, int]] = field(default_factory=set)
    probe_disagreeing: dict[tuple[str, int], Any] = field(default_factory=dict)


def _product_task(index: int) -> ProductResult:
    assert _WORK is not None
    product, records = _WORK.products[index]
    probe = _WORK.probe
    if probe is not None:  # this worker's copy of the probe: start it empty, hand back what this product adds
        probe.start_share()
    books = {}
    replayed = records
    if _WORK.after is not None:  # resume from the checkpoint's book with what came after it
        replayed = [record for record in records if record.global_position > _WORK.after]
        if product in _WORK.start_books:
            books[product] = book_from_snapshot(_WORK.start_books[product], orjson.loads)
    reexecution = re_execute_products({product: replayed}, probe, books)
    reexecution.lines = StateLines.of(reexecution)
    invariants, pairs = check_market_invariants({product: records})  # the terms set before a checkpoint count too
    light = ReExecution(
        reexecution.findings, [], {}, {}, reexecution.input_count, reexecution.fill_count, lines=reexecution.lines
    )
    book = snapshot_bytes(reexecution.books[product]) if _WORK.want_books else None
    result = ProductResult(product, light, book, invariants, pairs)
    if probe is not None:
        result.probe_findings, result.probe_reached, result.probe_disagreeing = probe.observed()
    return result


def _chain_task(index: int) -> list[tuple[tuple[str, int], Finding]]:
    assert _WORK is not None
    found = []
    for order, stream_id, records in _WORK.chain_shares[index]:
        finding = stream_break(stream_id, records)
        if finding is not None:
            found.append((order, finding))
    return found


def _signature_task(index: int) -> list[tuple[int, Finding]]:
    assert _WORK is not None
    found = []
    for pending in _WORK.signature_shares[index]:
        finding = verify_pending(pending)
        if finding is not None:
            found.append((pending.order, finding))
    return found


_TASKS: dict[str, Callable[[int], Any]] = {"product": _product_task, "chains": _chain_task, "signatures": _signature_task}


def private_mb() -> float:
    """This process's own memory in MB (private pages of /proc/self/smaps_rollup): for a forked worker,
    what it holds beyond the pages it still shares with the main process (its RSS counts those too)."""
    try:
        with open("/proc/self/smaps_rollup") as rollup:
            kib = sum(int(line.split()[1]) for line in rollup if line.startswith(("Private_Clean:", "Private_Dirty:")))
    except (OSError, ValueError, IndexError):
        return 0.0
    return kib / 1024


def _run_task(task: tuple[str, int]) -> tuple[str, int, Any, float, float]:
    started = time.process_time()
    result = _TASKS[task[0]](task[1])
    return task[0], task[1], result, time.process_time() - started, private_mb()


def _balanced(items: list[Any], shares: int, weight: Callable[[Any], int]) -> list[list[Any]]:
    """Items dealt into `shares` lists of about equal weight (heaviest first, each to the lightest list)."""
    lists: list[list[Any]] = [[] for _ in range(max(1, shares))]
    loads = [0] * len(lists)
    for item in sorted(items, key=weight, reverse=True):
        lightest = loads.index(min(loads))
        lists[lightest].append(item)
        loads[lightest] += weight(item)
    return lists


@dataclass
class ParallelChecks:
    """What the workers found, merged in the log's order."""

    chain_findings: list[Finding]
    signature_findings: list[tuple[int, Finding]]
    reexecution: ReExecution
    invariant_findings: list[Finding]
    pairs: FillTotals
    worker_seconds: dict[str, float]
    books: dict[str, bytes] = field(default_factory=dict)
    worker_private_mb: float = 0.0
    """The most private memory a worker held after a task (0 when the tasks ran in this process)."""


class Checks:
    """The costly checks, started in stages as the log is read (each stage forks its own workers, which
    see the log as read so far): first the matching schema's (products, their chains), then the rest
    (the other chains, the pending signatures). `finish` waits for every stage and merges."""

    def __init__(
        self,
        workers: int,
        probe: SnapshotCheck | None,
        *,
        after: int | None = None,
        start_books: dict[str, bytes] | None = None,
        want_books: bool = False,
    ) -> None:
        self.workers = workers
        self.probe = probe
        self.after = after
        self.start_books = dict(start_books or {})
        self.want_books = want_books
        self.forking = workers > 1 and "fork" in multiprocessing.get_all_start_methods()
        self.stages: list[tuple[Any, Any]] = []  # (pool, AsyncResult) or (None, results)

    def start(self, log: AuditLog, schemas: list[str], pending: list[PendingSignature] | None = None) -> None:
        """Start the checks of `schemas` (already read into `log`) and of the `pending` signatures."""
        global _WORK
        products: list[tuple[str, list[Record]]] = []
        if MATCHING in schemas:
            streams = market_streams(log)
            for product in self.start_books:
                streams.setdefault(product, [])  # a product with nothing new still has its book
            products = list(streams.items())
        ordered = [
            ((schema, index), stream_id, records)
            for schema in sorted(schemas)
            for index, (stream_id, records) in enumerate(streams_of(log.by_schema.get(schema, [])).items())
        ]
        pending = pending or []
        _WORK = _Work(
            products=products,
            chain_shares=[share for share in _balanced(ordered, CHAIN_SHARES, lambda item: len(item[2])) if share],
            signature_shares=[pending[i::SIGNATURE_SHARES] for i in range(SIGNATURE_SHARES) if pending[i::SIGNATURE_SHARES]],
            probe=self.probe,
            after=self.after,
            start_books=self.start_books,
            want_books=self.want_books,
        )
        tasks = sorted([("product", i) for i in range(len(products))], key=lambda task: -len(products[task[1]][1]))
        tasks += [("signatures", i) for i in range(len(_WORK.signature_shares))]
        tasks += [("chains", i) for i in range(len(_WORK.chain_shares))]
        if not self.forking:
            self.stages.append((None, [_run_task(task) for task in tasks]))
            _WORK = None
            return
        gc.freeze()  # the workers need not see the log's objects as the collector's
        pool = multiprocessing.get_context("fork").Pool(self.workers)
        gc.unfreeze()
        _WORK = None  # the workers have their copy
        self.stages.append((pool, pool.map_async(_run_task, tasks, chunksize=1)))

    def finish(self) -> ParallelChecks:
        results: list[tuple[str, int, Any, float, float]] = []
        try:
            for pool, outcome in self.stages:
                results += outcome if pool is None else outcome.get()
        finally:
            for pool, _ in self.stages:
                if pool is not None:
                    pool.terminate()
                    pool.join()
        merged = _merge(results, self.probe)
        if not self.forking:
            merged.worker_private_mb = 0.0  # the tasks ran here: no worker held anything
        return merged


def _merge(results: list[tuple[str, int, Any, float, float]], probe: SnapshotCheck | None) -> ParallelChecks:
    seconds = {"hash chains": 0.0, "signatures": 0.0, "re-execution and market invariants": 0.0}
    chains: list[tuple[tuple[str, int], Finding]] = []
    signatures: list[tuple[int, Finding]] = []
    products: list[ProductResult] = []
    for kind, _index, result, spent, _private in results:
        if kind == "chains":
            chains += result
            seconds["hash chains"] += spent
        elif kind == "signatures":
            signatures += result
            seconds["signatures"] += spent
        else:
            products.append(result)
            seconds["re-execution and market invariants"] += spent
    products.sort(key=lambda r: r.product)
    reexecution = ReExecution([], [], {}, {}, lines=StateLines())
    invariants: list[Finding] = []
    pairs: FillTotals = {}
    books: dict[str, bytes] = {}
    for result in products:
        if result.book is not None:
            books[result.product] = result.book
        reexecution.findings += result.reexecution.findings
        reexecution.input_count += result.reexecution.input_count
        reexecution.fill_count += result.reexecution.fill_count
        assert reexecution.lines is not None and result.reexecution.lines is not None
        reexecution.lines.merge(result.reexecution.lines)
        invariants += result.invariants
        add_pairs(pairs, result.pairs)
        if probe is not None:
            probe.add_share(result.probe_findings, result.probe_reached, result.probe_disagreeing)
    return ParallelChecks(
        chain_findings=[finding for _, finding in sorted(chains, key=lambda item: item[0])],
        signature_findings=signatures,
        reexecution=reexecution,
        invariant_findings=invariants,
        pairs=pairs,
        worker_seconds={name: round(value, 2) for name, value in seconds.items()},
        books=books,
        worker_private_mb=max((private for *_, private in results), default=0.0),
    )
