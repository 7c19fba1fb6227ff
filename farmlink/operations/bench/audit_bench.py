"""`farmlink bench audit`: how long the audit of a large log takes, from PostgreSQL, re-execution included.

The log is synthetic (farmlink/operations/bench/synthetic.py) and written into schemas named
`bench_<service>` so the live data is untouched. Reconciliation with Kafka is not part
of the figure: the synthetic log was never published.
"""

import asyncio
import os
import resource
import time
from pathlib import Path
from events.stored import NEW_EVENT_COLUMNS
from typing import Any

import asyncpg

from events.migrations import migrate
from farmlink.audit.log import SCHEMAS
from farmlink.audit.parallel import no_cyclic_gc
from farmlink.audit.report import write_audit_report
from farmlink.audit.report_browser import CHROMIUM, look, screenshot
from farmlink.audit.run import audit
from farmlink.operations.bench.synthetic import generate

PREFIX = "bench_"


MARKER = f'"{PREFIX}matching".synthetic_log'
"""One row naming the size and seed of the synthetic log the bench schemas hold (so `--reuse` can skip generating it)."""


async def loaded_synthetic(dsn: str, events: int, seed: int = 2020) -> dict[str, Any] | None:
    """The figures of the synthetic log already in the bench schemas, if it was generated for `events` and `seed`."""
    conn = await asyncpg.connect(dsn)
    try:
        if not await conn.fetchval("SELECT to_regclass($1) IS NOT NULL", f"{PREFIX}matching.synthetic_log"):
            return None
        row = await conn.fetchrow(f"SELECT target, seed, events, journal_inputs, fills FROM {MARKER}")
        if row is None or (row["target"], row["seed"]) != (events, seed):
            return None
        return {"events": row["events"], "journal_inputs": row["journal_inputs"], "fills": row["fills"], "reused": True}
    finally:
        await conn.close()


async def load_synthetic(dsn: str, events: int, say=print, seed: int = 2020, prefix: str = PREFIX) -> dict[str, Any]:
    """Generate a log of about `events` events and COPY it into the schemas named <prefix><service> (replacing what was there)."""
    started = time.perf_counter()
    log = generate(events, seed)
    generated = time.perf_counter() - started
    say(f"generated {log.count} events ({log.inputs} journal inputs, {log.fills} fills) in {generated:.1f} s")
    pool = await asyncpg.create_pool(dsn, min_size=1, max_size=2)
    try:
        started = time.perf_counter()
        for schema in SCHEMAS:
            name = prefix + schema
            await pool.execute(f'DROP SCHEMA IF EXISTS "{name}" CASCADE')
            await migrate(pool, name)
            async with pool.acquire() as conn:
                await conn.copy_records_to_table(
                    "events", schema_name=name, records=log.rows.get(schema, []), columns=NEW_EVENT_COLUMNS
                )
        marker = f'"{prefix}matching".synthetic_log'
        await pool.execute(f"CREATE TABLE {marker} (target int, seed int, events int, journal_inputs int, fills int)")
        await pool.execute(f"INSERT INTO {marker} VALUES ($1, $2, $3, $4, $5)", events, seed, log.count, log.inputs, log.fills)
        copied = time.perf_counter() - started
        say(f"copied into PostgreSQL in {copied:.1f} s")
    finally:
        await pool.close()
    return {
        "events": log.count,
        "journal_inputs": log.inputs,
        "fills": log.fills,
        "generate_s": round(generated, 2),
        "copy_s": round(copied, 2),
    }


def _cpu_seconds() -> dict[str, float]:
    """CPU seconds (user + system) of this process and of its finished worker processes so far."""
    own, workers = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return {"main": own.ru_utime + own.ru_stime, "workers": workers.ru_utime + workers.ru_stime}


def _peak_rss_mb() -> dict[str, float]:
    """Peak resident memory of this process and of its largest worker (ru_maxrss is in KiB on Linux)."""
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    workers = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    return {"main_mb": round(own), "largest_worker_mb": round(workers)}


async def run_audit_bench(
    bootstrap: str,
    dsn: str,
    events: int,
    say=print,
    reuse: bool = False,
    workers: int | None = None,
    report_dir: Path | None = None,
) -> dict[str, Any]:
    """Load a synthetic log (or, with `reuse`, keep the one of the same size already loaded), audit it
    from PostgreSQL (no reconciliation), return the figures. With `report_dir`, then write the audit's report
    there in English and in Chinese and load each in headless Chromium (`report_figures`)."""
    figures = await loaded_synthetic(dsn, events) if reuse else None
    if figures is None:
        with no_cyclic_gc():  # a million rows held at once: the collector would walk them again and again
            figures = await load_synthetic(dsn, events, say)
    else:
        say(f"reusing the synthetic log of {figures['events']} events already in the {PREFIX}* schemas")
    load = os.getloadavg()
    started, cpu = time.perf_counter(), _cpu_seconds()
    result = await audit(bootstrap, dsn, source="postgres", reconcile_kafka=False, schema_prefix=PREFIX, workers=workers)
    seconds = time.perf_counter() - started
    spent = {name: round(after - before, 2) for (name, after), before in zip(_cpu_seconds().items(), cpu.values())}
    figures |= {
        "audit_s": round(seconds, 2),
        "events_per_s": round(result.log.count() / seconds),
        "findings": len(result.findings),
        "steps_s": {name: round(value, 2) for name, value in result.timings.items()},
        "workers": result.workers,
        "worker_cpu_s": result.worker_seconds,
        "cpu_s": spent,
        "peak_rss": _peak_rss_mb() | {"largest_worker_private_mb": round(result.worker_private_mb)},
        "load_average_before": [round(value, 2) for value in load],
        "load_average_after": [round(value, 2) for value in os.getloadavg()],
        "state_hash": result.state_hash,
        "goal": "audit of 1,000,000 events in at most 60 s, re-execution included",
    }
    say(
        f"audited {result.log.count()} events in {seconds:.1f} s ({figures['events_per_s']} events/s) on {result.workers} processes, "
        f"{len(result.findings)} findings"
    )
    for name, value in result.timings.items():
        say(f"  {name:<26} {value:6.1f} s")
    for name, value in result.worker_seconds.items():
        say(f"  worker CPU, {name:<36} {value:6.1f} s")
    say(
        f"  CPU: main process {spent['main']} s, workers {spent['workers']} s (on an idle machine the wall clock is at least "
        f"the larger of the main process's and half the total)"
    )
    say(
        f"  peak memory: main {figures['peak_rss']['main_mb']} MB, largest worker {figures['peak_rss']['largest_worker_mb']} MB "
        f"({figures['peak_rss']['largest_worker_private_mb']} MB of it its own, the rest shared with the main process); "
        f"load average before {figures['load_average_before']}, after {figures['load_average_after']}"
    )
    if report_dir is not None:
        figures["report"] = await asyncio.to_thread(report_figures, result, report_dir, say)
    return figures


def report_figures(result: Any, directory: Path, say=print) -> dict[str, Any]:
    """The audit's report written in both languages (its log read again from the store), each page loaded three
    times in headless Chromium: its size, how long it took to write, its charts and how many drew, the load times the
    page measured, anything it logged, and a screenshot. Empty when Chromium is not installed."""
    if not CHROMIUM.exists():
        say(f"no report figures: {CHROMIUM} is not installed")
        return {}
    directory.mkdir(parents=True, exist_ok=True)
    figures: dict[str, Any] = {}
    for lang in ("en", "zh"):
        page = directory / f"audit-report-{lang}.html"
        started = time.perf_counter()
        write_audit_report(result, page, lang)
        built = time.perf_counter() - started
        looks = [look(page, directory) for _ in range(3)]
        figures[lang] = {
            "bytes": page.stat().st_size,
            "build_s": round(built, 1),
            "charts": looks[0].charts,
            "charts_drawn": min(seen.drawn for seen in looks),
            "load_ms": [seen.load_ms for seen in looks],
            "page_errors": sorted({seen.errors for seen in looks if seen.errors}),
            "console": sorted({line for seen in looks for line in seen.console}),
            "screenshot": str(screenshot(page, directory)),
        }
        f = figures[lang]
        say(
            f"  report ({lang}): {f['bytes']:,} bytes, written in {built:.1f} s; {f['charts_drawn']} of {f['charts']} charts "
            f"drawn, loaded in {', '.join(map(str, f['load_ms']))} ms in Chromium; {len(f['page_errors']) + len(f['console'])} "
            f"errors; {f['screenshot']}"
        )
    return figures
