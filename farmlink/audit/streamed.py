"""The audit from PostgreSQL in bounded memory: one ordered pass over the log that every check consumes, a batch
at a time, and nothing of the log kept; all of it read in one snapshot of the store (this process's transaction
exports it, the workers' import it).

- **The products** (the matching schema's `market-<product>` streams, most of the log) go to worker processes,
  each reading its product's stream itself (product_share.py): its chain, re-execution and market invariants.
- **The other schemas** stream through this process in the order the checks need (cooperative, buyer, market,
  the matching schema's other streams; then, once the products' fill totals are in, settlement and pairing):
  hash chains per stream (`ChainCursor`), the signature plan (`SignaturePlanner`; the signatures it leaves
  pending go to the workers a chunk at a time, signature_chunks.py, or are verified here when there is one
  worker), the lots' contributions and the settlement invariants, the heads a checkpoint needs (`HeadsCursor`).
- **What a pass cannot answer alone** (an id used twice, a source journaled other than once, which streams hold
  more than one event) is asked of the store first (store_questions.py); the checks then run on the few records
  it names.

What is held: per multi-event stream its head, per party its key, per lot its contributions, per (lot, outlet) its
fill totals, per product its book; the state hash's fill lines go through files. The one exception is the
supervision check of a log whose pairing service evaluated rounds: it keeps the facts those rounds read.
The findings, their order and the state hash are those of `run.audit_log` over the same log in memory.
"""

from __future__ import annotations

import asyncio
import heapq
import multiprocessing
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import asyncpg

from farmlink.audit import views
from farmlink.audit.amounts import FillTotals, add_pairs
from farmlink.audit.chains import ChainCursor, check_unique_event_ids
from farmlink.audit.checkpoint import Checkpoint, moved_heads, prefix_findings_of
from farmlink.audit.ledger import HeadsCursor
from farmlink.audit.log import SCHEMAS, stream_rows
from farmlink.audit.model import AuditLog, Finding, Record
from farmlink.audit.parallel import default_workers
from farmlink.audit.product_share import ProductShare, ProductTask, forget_parent_loop, run_product, set_probe
from farmlink.audit.replay import ReExecution
from farmlink.audit.run import AuditResult, Step, _Laps, _silent, _snapshots_to_compare
from farmlink.audit.settlement_invariants import Contributions, SettlementInvariants, add_contributions
from farmlink.audit.signature_chunks import PendingSignatures
from farmlink.audit.signatures import SCHEMAS as SIGNED_SCHEMAS, SignaturePlan, SignaturePlanner
from farmlink.audit.snapshots import SnapshotCheck, StoredSnapshot, snapshot_findings
from farmlink.audit.state import StateLines, chain_fill_lines, state_hash_of
from farmlink.audit.store_questions import (
    Answers,
    ask_for_the_findings,
    ask_for_the_pass,
    journal_records,
    located_breaks,
    products_of,
    records_at,
    records_with_ids,
)
from farmlink.audit.stored_log import StoredLog
from farmlink.audit.supervision import check_supervision
from farmlink.audit.problems import INSPECTOR_TYPES
from matcher.supervision.facts import FACT_TYPES

FIRST = ("cooperative", "buyer", "market")
"""Streamed before the products' fill totals are needed."""
LAST = ("settlement", "pairing")
SUPERVISION_TYPES = FACT_TYPES | INSPECTOR_TYPES | {"SupervisionRoundHeld"}


class _Pass:
    """This process's share of the pass: the schemas other than the products' streams, fed to every check."""

    def __init__(
        self, answers: Answers, since: Checkpoint | None, signatures: PendingSignatures, step: Step, total: int, want_heads: bool
    ) -> None:
        self.answers = answers
        self.chains: dict[str, ChainCursor] = {}
        self.heads = HeadsCursor(since.positions if since is not None else None, streams=want_heads)
        self.planner = SignaturePlanner(answers.repeated_message_ids)
        self.signatures = signatures
        self.contributions = Contributions()
        self.settlement_findings: list[Finding] = []
        self.supervised = AuditLog(source="postgres")
        self.progress = step("reading PostgreSQL", total)

    def feed(self, schema: str, batch: list[Record], settlement: SettlementInvariants | None = None) -> None:
        chains = self.chains.get(schema)
        if chains is None:
            chains = self.chains[schema] = ChainCursor(self.answers.multi_event_streams.get(schema, set()))
        chains.feed(batch)
        self.heads.feed(batch)
        if schema in SIGNED_SCHEMAS:  # as plan_signatures reads them: a signed type anywhere else is not a party's input
            self.signatures.add(self.planner.feed(batch))
        if schema == "cooperative":
            add_contributions(self.contributions, batch)
        elif settlement is not None:
            settlement.feed(batch)
        if self.answers.supervised and schema != "matching":  # the matching facts are read apart (_read_last)
            kept = batch if schema == "pairing" else [r for r in batch if r.event_type in SUPERVISION_TYPES]
            self.supervised.by_schema.setdefault(schema, []).extend(kept)
        self.progress(len(batch))


async def _stream(conn: asyncpg.Connection, prefix: str, schema: str, where: str = "", *args: Any) -> Any:
    """A schema's events in global order, in the audit's transaction (its snapshot: `audit_stored`)."""
    async for batch in stream_rows(conn, schema, prefix, where, args):
        yield batch


def _fill_lines(shares: list[ProductShare]) -> Iterator[str]:
    """Every product's fill lines merged in the market's order (each file is sorted)."""

    def lines(path: str) -> Iterator[tuple[int, int, str]]:
        with open(path, encoding="utf-8") as source:
            for line in source:
                position, index, text = line.rstrip("\n").split("\t", 2)
                yield int(position), int(index), text

    for _position, _index, text in heapq.merge(*(lines(share.fills_file) for share in shares)):
        yield text


def _pairs_of(shares: list[ProductShare]) -> FillTotals:
    pairs: FillTotals = {}
    for share in shares:
        add_pairs(pairs, share.pairs)
    return pairs


@dataclass(frozen=True)
class _Run:
    """What the end of a streamed audit needs of its start."""

    conn: asyncpg.Connection
    dsn: str
    prefix: str
    answers: Answers
    since: Checkpoint | None
    probe: SnapshotCheck | None


def _start_pool(workers: int, probe: SnapshotCheck | None) -> Any:
    """The workers, forked now while this process holds nothing of the log (None: everything runs here)."""
    set_probe(probe)
    if workers < 2 or "fork" not in multiprocessing.get_all_start_methods():
        return None
    return multiprocessing.get_context("fork").Pool(workers, initializer=forget_parent_loop)


def _product_tasks(
    dsn: str, prefix: str, answers: Answers, since: Checkpoint | None, want_books: bool, fills_dir: str, snapshot: str
) -> list[ProductTask]:
    sizes = dict(answers.products)
    for product in since.books if since is not None else ():
        sizes.setdefault(product, 0)  # a product with nothing new still has its book
    products = sorted(sizes, key=lambda product: (-sizes[product], product))  # the longest first: the shares even out
    return [
        ProductTask(
            dsn,
            prefix,
            product,
            after=since.positions.get("matching", 0) if since is not None else None,
            start_book=since.books.get(product) if since is not None else None,
            want_books=want_books,
            fills_dir=fills_dir,
            limit=since.positions if since is not None else None,
            snapshot=snapshot,
        )
        for product in products
    ]


async def _shares(pool: Any, tasks: list[ProductTask], step: Step) -> Any:
    """Start the products' shares; returns an awaitable of them, sorted by product."""
    done = step("re-executing products", len(tasks))
    if pool is None:

        async def here() -> list[ProductShare]:
            shares = []
            for task in tasks:
                share = await asyncio.to_thread(run_product, task)
                share.private_mb = 0.0  # it ran here: no worker held anything
                shares.append(share)
                done(1)
            return sorted(shares, key=lambda share: share.product)

        return here
    pending = [pool.apply_async(run_product, (task,), callback=lambda _: done(1)) for task in tasks]

    async def there() -> list[ProductShare]:
        shares = []
        for result in pending:
            await asyncio.to_thread(result.wait)
            shares.append(result.get())
        return sorted(shares, key=lambda share: share.product)

    return there


async def _read_first(conn: asyncpg.Connection, prefix: str, schemas: list[str], main: _Pass) -> None:
    """Cooperative, buyer and market, then the matching schema's streams that are not a product's."""
    for schema in FIRST:
        if schema in schemas:
            async for batch in _stream(conn, prefix, schema):
                main.feed(schema, batch)
    if "matching" in schemas:
        async for batch in _stream(conn, prefix, "matching", "stream_id NOT LIKE 'market-%'"):
            main.feed("matching", batch)


async def _read_last(conn: asyncpg.Connection, prefix: str, schemas: list[str], main: _Pass, pairs: FillTotals) -> None:
    """Settlement (against the products' fill totals) and pairing; the matching facts supervision reads, if any."""
    settlement = SettlementInvariants(main.contributions, main.settlement_findings, pairs)
    for schema in LAST:
        if schema in schemas:
            async for batch in _stream(conn, prefix, schema):
                main.feed(schema, batch, settlement if schema == "settlement" else None)
    if main.answers.supervised and "matching" in schemas:
        kept = main.supervised.by_schema.setdefault("matching", [])
        async for batch in _stream(conn, prefix, "matching", "event_type = ANY($1::text[])", sorted(SUPERVISION_TYPES)):
            kept += batch


async def _chain_findings(conn: asyncpg.Connection, prefix: str, main: _Pass, shares: list[ProductShare]) -> list[Finding]:
    """Every suspect stream read again whole and located exactly, in the order of the streams' first events."""
    found: list[tuple[tuple[str, int], Finding]] = []
    for schema, cursor in main.chains.items():
        found += await located_breaks(conn, prefix, schema, cursor.suspects)
    found += [(("matching", share.chain_order), share.chain) for share in shares if share.chain is not None]
    return [finding for _, finding in sorted(found, key=lambda item: item[0])]


async def audit_stored(
    dsn: str,
    *,
    prefix: str = "",
    step: Step = _silent,
    workers: int | None = None,
    since: Checkpoint | None = None,
    want_books: bool = False,
    snapshots: list[StoredSnapshot] | None = None,
) -> AuditResult:
    """Every check of the log in the store (no reconciliation), in bounded memory: see the module's docstring and
    `run.audit_log`, whose findings and state hash it gives."""
    workers = workers or default_workers()
    lap = _Laps()
    snapshots = _snapshots_to_compare(snapshots, since)
    probe = SnapshotCheck(snapshots) if snapshots is not None else None
    conn = await asyncpg.connect(dsn)
    pool = None
    # One snapshot of the store for the whole audit: this process's queries run in the transaction that exports it,
    # the workers' import it. A store being written to meanwhile is audited as it stood when the audit began.
    snapshot = conn.transaction(isolation="repeatable_read", readonly=True)
    await snapshot.start()
    try:
        exported = await conn.fetchval("SELECT pg_export_snapshot()")
        with tempfile.TemporaryDirectory(prefix="farmlink-audit-") as fills_dir:
            schemas = [s for s in SCHEMAS if await conn.fetchval("SELECT to_regclass($1) IS NOT NULL", f"{prefix}{s}.events")]
            answers = Answers(schemas, await products_of(conn, prefix, schemas))
            pool = _start_pool(workers, probe)
            tasks = _product_tasks(dsn, prefix, answers, since, want_books, fills_dir, exported)
            shares_of = await _shares(pool, tasks, step)
            products = asyncio.ensure_future(shares_of())  # the workers start now, while the questions are answered
            await ask_for_the_pass(conn, prefix, answers)
            outside = sum([await conn.fetchval(f'SELECT count(*) FROM "{prefix}{s}".events') for s in schemas if s != "matching"])
            lap("questions to the store")
            signatures = PendingSignatures(pool, since.positions if since is not None else {}, fills_dir)
            main = _Pass(answers, since, signatures, step, outside, want_books)
            await _read_first(conn, prefix, schemas, main)
            lap("read and check (the products alongside)")
            shares = await products
            lap("waiting for the products")
            await _read_last(conn, prefix, schemas, main, _pairs_of(shares))
            signatures.send()  # the last chunk, before the questions only the findings need
            await ask_for_the_findings(conn, prefix, answers)
            verified = await signatures.finish()
            lap("settlement, pairing, last signatures")
            result = await _result(_Run(conn, dsn, prefix, answers, since, probe), main, shares, verified, lap)
            result.workers = workers
            return result
    finally:
        if pool is not None:
            pool.terminate()
            pool.join()
        set_probe(None)
        await snapshot.rollback()
        await conn.close()


async def _findings(run: _Run, main: _Pass, shares: list[ProductShare], verified: list[tuple[int, Finding]]) -> list[Finding]:
    """Every finding, in the order `run.audit_log` gives them."""
    conn, prefix, answers, since, probe = run.conn, run.prefix, run.answers, run.since, run.probe
    findings: list[Finding] = []
    if since is not None:
        now = main.heads.before
        moved = moved_heads(since, now)
        findings += prefix_findings_of(since, now, main.heads.count_before, await records_at(conn, prefix, moved))
    findings += await _chain_findings(conn, prefix, main, shares)
    findings += check_unique_event_ids(await records_with_ids(conn, prefix, answers.schemas, answers.repeated_event_ids))
    findings += SignaturePlan(main.planner.findings, []).finish(verified)
    findings += [finding for share in shares for finding in share.findings]
    if probe is not None:
        for share in shares:
            probe.add_share(*share.probe)
        findings += await snapshot_findings(run.dsn, probe, prefix)
    findings += [finding for share in shares for finding in share.invariants]
    findings += main.settlement_findings
    findings += views.check_journal_complete(await journal_records(conn, prefix, answers.schemas, answers.journal_suspects))
    findings += check_supervision(main.supervised) if answers.supervised else []
    return findings


async def _result(
    run: _Run, main: _Pass, shares: list[ProductShare], verified: list[tuple[int, Finding]], lap: _Laps
) -> AuditResult:
    for share in shares:
        main.heads.merge(share.heads)
    findings = await _findings(run, main, shares, verified)
    since = run.since
    start_digest, start_count = (since.fills_digest, since.fill_count) if since is not None else ("", 0)
    fills_digest = chain_fill_lines(_fill_lines(shares), start_digest)
    fill_count = start_count + sum(share.fill_count for share in shares)
    books = {share.product: share.book_line for share in shares}
    reexecution = ReExecution(
        [finding for share in shares for finding in share.findings],
        [],
        {},
        {},
        input_count=sum(share.input_count for share in shares) + (since.input_count if since is not None else 0),
        fill_count=fill_count,
        lines=StateLines(books=books, start_digest=start_digest, start_count=start_count),
    )
    heads = main.heads
    log = StoredLog(run.dsn, run.prefix, heads.positions, heads.counts)
    lap("findings and the state hash")
    seconds = {
        "hash chains, re-execution and market invariants": round(sum(share.cpu_s for share in shares), 2),
        "signatures": round(main.signatures.seconds, 2),
    }
    result = AuditResult("postgres", log, reexecution, findings, state_hash_of(fills_digest, fill_count, books), lap.timings)
    result.worker_seconds = seconds
    result.fills_digest = fills_digest
    result.books = {share.product: share.book for share in shares if share.book is not None}
    result.worker_private_mb = max((share.private_mb for share in shares), default=0.0)
    result.heads = heads
    result.repeated_event_ids = run.answers.repeated_event_ids
    if since is not None:
        before = heads.count_before
        result.since = {"positions": dict(since.positions), "events_before": before, "events_after": heads.count - before}
    return result
