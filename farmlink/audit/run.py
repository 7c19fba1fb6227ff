"""One audit run: read the log, check it every way, and say what was found."""

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from farmlink.audit import views
from farmlink.audit.checkpoint import Checkpoint, make_checkpoint, prefix_findings
from farmlink.audit.chains import check_unique_event_ids
from farmlink.audit.settlement_invariants import check_settlement_invariants
from farmlink.audit.ledger import HeadsCursor, count_as_of
from farmlink.audit.log import (
    count_on_kafka,
    load_from_postgres,
    log_from_copies,
    read_kafka_copies,
)
from farmlink.audit.model import AuditLog, Finding
from farmlink.audit.parallel import Checks, ParallelChecks, default_workers, no_cyclic_gc
from farmlink.audit.reconcile import reconcile
from farmlink.audit.replay import ReExecution
from farmlink.audit.state import state_hash_of
from farmlink.audit.signatures import plan_signatures
from farmlink.audit.snapshots import SnapshotCheck, StoredSnapshot, load_snapshots, snapshot_findings
from farmlink.audit.supervision import check_supervision

Step = Callable[[str, int], Callable[[int], None]]
"""Starts a named step of `total` units and returns the function that advances it."""


def _silent(name: str, total: int) -> Callable[[int], None]:
    return lambda _: None


@dataclass
class AuditResult:
    """What one audit found, and enough of the log to report on it."""

    source: str
    log: AuditLog
    reexecution: ReExecution
    findings: list[Finding]
    state_hash: str
    timings: dict[str, float] = field(default_factory=dict)
    reconciled: bool = False
    workers: int = 1
    worker_seconds: dict[str, float] = field(default_factory=dict)
    """CPU seconds the worker processes spent per check (they overlap: see `timings` for the wall clock)."""
    fills_digest: str = ""
    books: dict[str, bytes] = field(default_factory=dict)
    """Each product's final book as snapshot bytes (only when asked for: to write a checkpoint)."""
    since: dict[str, Any] | None = None
    """For an incremental audit: the checkpoint's positions and how many events lay before and after them."""
    worker_private_mb: float = 0.0
    """The most memory a worker process held of its own (beyond the pages shared with this one), in MB."""
    heads: HeadsCursor | None = None
    """Each stream's head, each schema's last position and count, when the audit streamed the log (streamed.py)."""
    repeated_event_ids: list[str] = field(default_factory=list)
    """The store's event ids used more than once (the streamed audit asks the store: store_questions.py)."""

    @property
    def clean(self) -> bool:
        return not self.findings

    def summary(self) -> dict[str, Any]:
        return {
            "clean": self.clean,
            "source": self.source,
            "events_audited": self.log.count(),
            "journal_inputs": self.reexecution.input_count,
            "fills": self.reexecution.fill_count,
            "findings": len(self.findings),
            "reconciled_with_kafka": self.reconciled,
            "state_hash": self.state_hash,
            "seconds": {name: round(seconds, 3) for name, seconds in self.timings.items()},
            "workers": self.workers,
            "worker_cpu_seconds": dict(self.worker_seconds),
            **({"since_checkpoint": self.since} if self.since is not None else {}),
        }


async def audit(
    bootstrap: str,
    dsn: str,
    source: str = "postgres",
    reconcile_kafka: bool = True,
    step: Step = _silent,
    schema_prefix: str = "",
    workers: int | None = None,
    since: Checkpoint | None = None,
    want_books: bool = False,
) -> AuditResult:
    """Read the whole log from `source`, verify chains and signatures, re-execute the matcher, check
    invariants, and (unless told not to) reconcile the store with the Kafka topics. The costly checks
    run on `workers` processes (default: one per core; parallel.py). With `since` (a checkpoint,
    checkpoint.py), the log up to it is checked against it and only what came after is verified and
    re-executed; `want_books` keeps the final books so a checkpoint can be written (`checkpoint_of`)."""
    with no_cyclic_gc():
        if source == "kafka":
            return await _audit_from_kafka(bootstrap, dsn, step, workers, since, want_books)
        from farmlink.audit.reconcile_stored import reconcile_stored  # they build on this module
        from farmlink.audit.streamed import audit_stored

        # Snapshots live only in the store: the PostgreSQL audit compares each with its re-execution.
        snapshots = await load_snapshots(dsn, schema_prefix)
        result = await audit_stored(
            dsn, prefix=schema_prefix, step=step, workers=workers, since=since, want_books=want_books, snapshots=snapshots
        )
        if reconcile_kafka:
            started = time.perf_counter()
            assert result.heads is not None
            progress = step("reading Kafka topics", await count_on_kafka(bootstrap))
            result.findings += await reconcile_stored(
                bootstrap, dsn, schema_prefix, result.heads.positions, result.repeated_event_ids, progress
            )
            result.reconciled = True
            result.timings["reconciliation"] = time.perf_counter() - started
        return result


async def _audit_from_kafka(
    bootstrap: str, dsn: str, step: Step, workers: int | None, since: Checkpoint | None, want_books: bool
) -> AuditResult:
    """The log as the topics hold it, read into memory (ordered per schema), audited and reconciled with the store."""
    started = time.perf_counter()
    copies = await read_kafka_copies(bootstrap, progress=step("reading Kafka topics", await count_on_kafka(bootstrap)))
    read = time.perf_counter() - started
    result = await audit_log(log_from_copies(copies), "kafka", step=step, workers=workers, since=since, want_books=want_books)
    result.timings = {"read kafka": read} | result.timings
    started = time.perf_counter()
    result.findings += reconcile(await load_from_postgres(dsn), copies)
    result.reconciled = True
    result.timings["reconciliation"] = time.perf_counter() - started
    return result


class _Laps:
    """Wall-clock seconds per phase of an audit: each lap is added to its phase's total."""

    def __init__(self) -> None:
        self.timings: dict[str, float] = {}
        self.started = time.perf_counter()

    def __call__(self, name: str) -> None:
        now = time.perf_counter()
        self.timings[name] = self.timings.get(name, 0.0) + now - self.started
        self.started = now


def _snapshots_to_compare(snapshots: list[StoredSnapshot] | None, since: Checkpoint | None) -> list[StoredSnapshot] | None:
    """The stored snapshots to compare: for an incremental audit, only those after the checkpoint's books (the
    ones they cover were compared when it was made)."""
    if since is None or snapshots is None:
        return snapshots
    seqs = since.journal_seqs()
    return [s for s in snapshots if s.journal_seq > seqs.get(s.product, 0)]


def _result_of(
    source: str,
    log: AuditLog,
    parallel: ParallelChecks,
    findings: list[Finding],
    lap: _Laps,
    workers: int,
    since: Checkpoint | None,
) -> AuditResult:
    """The audit's result from its checks' findings and the workers' re-execution (resumed from the checkpoint's
    fill digest and counts for an incremental audit)."""
    reexecution = parallel.reexecution
    lines = reexecution.lines
    assert lines is not None
    if since is not None:
        lines.start_digest, lines.start_count = since.fills_digest, since.fill_count
        reexecution.input_count += since.input_count
        reexecution.fill_count += since.fill_count
    fills_digest, fill_count = lines.fills_digest()
    state = state_hash_of(fills_digest, fill_count, lines.books)
    result = AuditResult(source, log, reexecution, findings, state, lap.timings, False, workers, parallel.worker_seconds)
    result.fills_digest, result.books = fills_digest, parallel.books
    result.worker_private_mb = parallel.worker_private_mb
    if since is not None:
        before = count_as_of(log, since.positions)
        result.since = {"positions": dict(since.positions), "events_before": before, "events_after": log.count() - before}
    return result


async def audit_log(
    log: AuditLog,
    source: str,
    *,
    snapshots: list[StoredSnapshot] | None = None,
    dsn: str | None = None,
    schema_prefix: str = "",
    step: Step = _silent,
    workers: int | None = None,
    since: Checkpoint | None = None,
    want_books: bool = False,
) -> AuditResult:
    """Every check of a log held in memory (no reconciliation): see `audit`. The audit of a log from Kafka, and the
    reference the streamed audit of the store (streamed.py) is tested against. `dsn` lets the snapshot findings read
    a disagreeing snapshot again to say what differs."""
    workers = workers or default_workers()
    lap = _Laps()
    with no_cyclic_gc():
        after: dict[str, int] = since.positions if since is not None else {}
        snapshots = _snapshots_to_compare(snapshots, since)
        probe = SnapshotCheck(snapshots) if snapshots is not None else None
        after_matching = after.get("matching", 0) if since else None
        checks = Checks(workers, probe, after=after_matching, start_books=since.books if since else None, want_books=want_books)
        checks.start(log, ["matching"])
        checking = step("checking", 3)
        prefix = prefix_findings(log, since) if since is not None else []
        signatures = plan_signatures(log)  # the ordered pass: keys and message ids in log order; verifying is left pending
        pending = signatures.pending
        if since is not None:
            pending = [p for p in pending if p.record.global_position > after.get(p.record.schema, 0)]
        checks.start(log, [schema for schema in sorted(log.by_schema) if schema != "matching"], pending)
        lap("ordered passes")
        checking(1)
        duplicates = check_unique_event_ids(log)
        journal = views.check_journal_complete(log)
        lap("duplicates and journal")
        parallel = checks.finish()
        lap("parallel checks")  # what is left of the workers' share once the main process is done
        checking(1)
        findings: list[Finding] = [
            *prefix,
            *parallel.chain_findings,
            *duplicates,
            *signatures.finish(parallel.signature_findings),
            *parallel.reexecution.findings,
        ]
        if probe is not None:
            findings += await snapshot_findings(dsn, probe, schema_prefix) if dsn is not None else probe.findings()
        findings += parallel.invariant_findings
        findings += check_settlement_invariants(log, parallel.pairs)
        findings += journal
        findings += check_supervision(log)
        lap("settlement and snapshots")
        checking(1)
        return _result_of(source, log, parallel, findings, lap, workers, since)


def checkpoint_of(result: AuditResult, key: Ed25519PrivateKey) -> Checkpoint:
    """A signed checkpoint of a clean audit (run with want_books); ValueError for an audit with findings."""
    if not result.clean:
        raise ValueError(f"the audit has {len(result.findings)} findings: a checkpoint vouches only for a clean log")
    if set(result.books) != set(result.reexecution.lines.books if result.reexecution.lines else {}):
        raise ValueError("the audit kept no books: run it with want_books to write a checkpoint")
    return make_checkpoint(
        result.log,
        result.state_hash,
        result.fills_digest,
        result.reexecution.fill_count,
        result.reexecution.input_count,
        result.books,
        key,
        result.heads,
    )
