"""One audit run: read the log, check it every way, and say what was found."""

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from farmlink.audit import views
from farmlink.audit.checks import check_settlement_invariants, check_unique_event_ids
from farmlink.audit.log import (
    count_in_postgres,
    count_on_kafka,
    load_from_postgres,
    log_from_copies,
    read_kafka_copies,
)
from farmlink.audit.model import AuditLog, Finding
from farmlink.audit.reconcile import reconcile
from farmlink.audit.parallel import default_workers, no_cyclic_gc, run_checks
from farmlink.audit.signatures import plan_signatures
from farmlink.audit.snapshots import SnapshotCheck, load_snapshots, snapshot_findings
from farmlink.audit.replay import ReExecution, state_hash

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
        }


async def audit(
    bootstrap: str, dsn: str, source: str = "postgres", reconcile_kafka: bool = True, step: Step = _silent, schema_prefix: str = "",
    workers: int | None = None,
) -> AuditResult:
    """Read the whole log from `source`, verify chains and signatures, re-execute the matcher, check
    invariants, and (unless told not to) reconcile the store with the Kafka topics. The costly checks
    run on `workers` processes (default: one per core; parallel.py)."""
    with no_cyclic_gc():
        return await _audit(bootstrap, dsn, source, reconcile_kafka, step, schema_prefix, workers or default_workers())


async def _audit(bootstrap: str, dsn: str, source: str, reconcile_kafka: bool, step: Step, schema_prefix: str, workers: int) -> AuditResult:
    timings: dict[str, float] = {}
    started = time.perf_counter()

    def lap(name: str) -> None:
        nonlocal started
        now = time.perf_counter()
        timings[name] = now - started
        started = now

    copies = None
    if source == "kafka" or reconcile_kafka:
        copies = await read_kafka_copies(bootstrap, progress=step("reading Kafka topics", await count_on_kafka(bootstrap)))
        lap("read kafka")
    if source == "kafka":
        log = log_from_copies(copies or [])
    else:
        total = await count_in_postgres(dsn, schema_prefix)
        log = await load_from_postgres(dsn, progress=step("reading PostgreSQL", total), prefix=schema_prefix)
        lap("read postgres")
    checking = step("checking", 3)
    # Snapshots live only in the store: the PostgreSQL audit compares each with its re-execution.
    snapshots = SnapshotCheck(await load_snapshots(dsn, schema_prefix)) if source == "postgres" else None
    signatures = plan_signatures(log)  # the ordered pass: keys and message ids in log order; verifying is left pending
    lap("ordered passes")
    checking(1)
    cheap: dict[str, list[Finding]] = {}

    def while_waiting() -> None:
        cheap["duplicates"] = check_unique_event_ids(log)
        cheap["journal"] = views.check_journal_complete(log)

    parallel = run_checks(log, signatures.pending, snapshots, workers, while_waiting)
    lap("parallel checks")
    checking(1)
    reexecution = parallel.reexecution
    findings: list[Finding] = [*parallel.chain_findings, *cheap["duplicates"], *signatures.finish(parallel.signature_findings),
                               *reexecution.findings]
    if snapshots is not None:
        findings += await snapshot_findings(dsn, snapshots, schema_prefix)
    findings += parallel.invariant_findings
    findings += check_settlement_invariants(log, parallel.pairs)
    findings += cheap["journal"]
    lap("settlement and snapshots")
    reconciled = False
    if copies is not None and (reconcile_kafka or source == "kafka"):
        store = log if source == "postgres" else await load_from_postgres(dsn)
        findings += reconcile(store, copies)
        reconciled = True
        lap("reconciliation")
    checking(1)
    digest = state_hash(reexecution)
    return AuditResult(source, log, reexecution, findings, digest, timings, reconciled, workers, parallel.worker_seconds)
