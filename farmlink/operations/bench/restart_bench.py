"""`farmlink bench restart`: how long a restarted matching instance takes to its first new fill after a
long journal of one product, from snapshots and without.

The log is written straight into a scratch schema (`bench_restart_matching`; a smoke run uses
`bench_restart_smoke_matching`) the way the matching service writes it: each input's `InputJournaled` entry and the events the matcher decided
(`services.matching.outcomes`), in stream `market-<product>` with hash links, and a row of
`snapshots` after every SNAPSHOT_EVERY-th entry (`services.matching.snapshots.snapshot_row`). The
journal is the matcher bench's synthetic season (farmlink/operations/bench/matcher_bench.py) for one product:
lots, orders, cancellations, commitments, prices and plantings, business dates moving forward, a
book that grows (orders and commitments nobody can supply stay open).

Each measurement is a fresh Python process that does what a restarted matching instance does:
import the service, open its pool as the service's role, and handle one Kafka batch (`consume_batch`,
without Kafka) holding one new harvest that must fill an open order: `load_book` rebuilds the book,
the matcher fills, the batch commits. Timed from the moment the process is spawned to the commit;
the process reports its own steps. After each run the new events are taken out again (as the
schema's owner), so every run restarts after exactly the same journal. Cases:
- `snapshot`: the latest snapshot stands at the journal's last entry (nothing to replay after it);
- `tail`: the latest snapshot is SNAPSHOT_EVERY entries behind (that one set aside for the run): the
  longest tail a restart meets, since a snapshot is written every SNAPSHOT_EVERY entries;
- `none`: no snapshot at all, the whole journal replayed (how the service restarted before).
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from datetime import datetime, timezone
from typing import Any

import asyncpg

from farmlink.operations.bench.restart_journal import (
    PRODUCT,
    STREAM,
    existing_journal,
    latest_state,
    lot_that_fills,
    remember_journal,
    write_journal,
)

SCHEMA = "bench_restart_matching"
SMOKE_SCHEMA = "bench_restart_smoke_matching"
"""Smoke runs write their own schema: they leave a full run's journal for `--reuse`."""
GOAL_S = 10.0


# ---------------------------------------------------------------- one restart, in a fresh process


def _new_input(lot: dict[str, Any]) -> bytes:
    from events.hashchain import canonical_json

    return canonical_json(
        {
            "event_id": str(uuid.uuid5(uuid.NAMESPACE_URL, f"farmlink-bench-restart/{lot['lot_id']}")),
            "event_type": "HarvestRecorded",
            "schema_version": 1,
            "stream_id": f"lot-{lot['lot_id']}",
            "stream_version": 1,
            "occurred_at": datetime(2023, 1, 1, tzinfo=timezone.utc).isoformat(),
            "producer": "service:cooperative",
            "correlation_id": "bench-restart",
            "causation_id": None,
            "payload": lot,
        }
    ).encode()


async def _restart(spawned: float, schema: str, lot: dict[str, Any]) -> dict[str, Any]:
    """The child: a matching instance starting cold and handling one new harvest. Times are from `spawned`."""
    marks = {"python_started_s": time.time() - spawned}
    from contracts.topics import COOPERATIVE_EVENTS
    from events.consumer import Delivery
    from events.runtime import require_store
    from events.handling import consume_batch
    from services.matching import app as matching

    marks["imported_s"] = time.time() - spawned
    runtime = matching.runtime
    runtime.schema = schema
    runtime.on_start.clear()  # no gap sweeper: nothing else touches the books
    runtime.on_stop.clear()
    await runtime.open(with_relay=False)
    marks["pool_open_s"] = time.time() - spawned
    steps: dict[str, float] = {}
    latest, load_book = matching.snapshots.latest, matching.load_book

    async def timed_latest(*args):
        began = time.perf_counter()
        found = await latest(*args)
        steps["snapshot_restore_s"] = time.perf_counter() - began
        steps["snapshot_journal_seq"] = None if found is None else found.journal_seq
        return found

    async def timed_load_book(conn, product):
        began = time.perf_counter()
        live = await load_book(conn, product)
        steps["load_book_s"] = time.perf_counter() - began
        steps["journal_seq"] = live.book.journal_seq
        return live

    matching.snapshots.latest, matching.load_book = timed_latest, timed_load_book
    try:
        delivery = Delivery(COOPERATIVE_EVENTS, 0, 0, PRODUCT.encode(), _new_input(lot), [])
        began = time.perf_counter()
        async with matching.batches:
            await consume_batch(require_store(runtime), matching.CONSUMER, [delivery])
        steps["batch_s"] = time.perf_counter() - began
        marks["first_fill_committed_s"] = time.time() - spawned
        fills = await runtime.pool.fetchval(
            f"SELECT count(*) FROM \"{schema}\".events WHERE stream_id = $1 AND event_type = 'FillMade' AND payload->>'lot_id' = $2",
            STREAM,
            lot["lot_id"],
        )
    finally:
        await runtime.close()
    tail = steps["journal_seq"] - (steps.get("snapshot_journal_seq") or 0)
    return {
        **{k: round(v, 3) for k, v in marks.items()},
        **{k: (round(v, 3) if isinstance(v, float) else v) for k, v in steps.items()},
        "tail_entries_replayed": tail,
        "new_fills": fills,
    }


def _child_main(argument: str) -> None:
    request = json.loads(argument)
    figures = asyncio.run(_restart(request["spawned"], request["schema"], request["lot"]))
    print(json.dumps(figures), flush=True)


def restart_once(schema: str, lot: dict[str, Any]) -> dict[str, Any]:
    """Spawn a fresh process that restarts the matching service on the scratch schema and makes one fill."""
    spawned = time.time()
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "farmlink.operations.bench.restart_bench",
            json.dumps({"spawned": spawned, "schema": schema, "lot": lot}),
        ],
        capture_output=True,
        text=True,
        timeout=3600,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    if run.returncode != 0:
        raise RuntimeError(f"the restarted instance failed:\n{run.stdout[-3000:]}\n{run.stderr[-6000:]}")
    return json.loads(run.stdout.strip().splitlines()[-1])


async def undo_run(dsn: str, schema: str, head_version: int, inputs: int) -> None:
    """Take out what a measured run added (as the owner), so the next run restarts after the same journal."""
    conn = await asyncpg.connect(dsn)
    try:
        async with conn.transaction():
            await conn.execute(
                f'DELETE FROM "{schema}".events WHERE stream_id = $1 AND stream_version > $2', STREAM, head_version
            )
            await conn.execute(f'DELETE FROM "{schema}".snapshots WHERE journal_seq > $1', inputs)
            for table in ("outbox", "inbox", "offers"):
                await conn.execute(f'DELETE FROM "{schema}".{table}')
    finally:
        await conn.close()


async def set_aside(dsn: str, schema: str, where: str) -> None:
    """Move snapshot rows out of sight of the service for a case (kept in snapshots_aside)."""
    conn = await asyncpg.connect(dsn)
    try:
        async with conn.transaction():
            await conn.execute(f'CREATE TABLE IF NOT EXISTS "{schema}".snapshots_aside (LIKE "{schema}".snapshots)')
            await conn.execute(f'INSERT INTO "{schema}".snapshots_aside SELECT * FROM "{schema}".snapshots WHERE {where}')
            await conn.execute(f'DELETE FROM "{schema}".snapshots WHERE {where}')
    finally:
        await conn.close()


async def put_back(dsn: str, schema: str) -> None:
    conn = await asyncpg.connect(dsn)
    try:
        async with conn.transaction():
            if await conn.fetchval("SELECT to_regclass($1) IS NOT NULL", f"{schema}.snapshots_aside"):
                await conn.execute(
                    f'INSERT INTO "{schema}".snapshots SELECT * FROM "{schema}".snapshots_aside ON CONFLICT DO NOTHING'
                )
                await conn.execute(f'DROP TABLE "{schema}".snapshots_aside')
    finally:
        await conn.close()


# ---------------------------------------------------------------- the bench


def _load_average() -> list[float] | None:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return None


async def _journal(dsn: str, schema: str, inputs: int, every: int, reuse: bool, say: Callable[..., Any]) -> dict[str, Any]:
    """The journal of `inputs` inputs: an earlier run's when `reuse` finds one of the same size, else written now."""
    journal = await existing_journal(dsn, schema, inputs) if reuse else None
    if journal is not None and journal.get("every") == every:
        say(f"reusing the journal of {inputs:,} inputs in schema {schema}")
        journal.pop("new_lot", None)  # chosen by earlier versions of this bench
        return journal
    say(f"journaling {inputs:,} inputs of {PRODUCT} into schema {schema}, a snapshot every {every:,} entries (not timed) ...")
    journal = await write_journal(dsn, schema, inputs, every, say)
    journal |= {"inputs": inputs, "every": every}
    await remember_journal(dsn, schema, journal)
    say(
        f"  {journal['events']:,} events, {journal['fills']:,} fills; the book holds {journal['resting_lots']:,} resting lots "
        f"and {journal['open_outlets']:,} open outlets; {journal['snapshots']} snapshots, "
        f"{journal['snapshot_bytes_stored'] / 1e6:.1f} MB stored (last: {journal['last_snapshot_json_bytes'] / 1e6:.1f} MB of JSON, "
        f"{journal['largest_snapshot_bytes_stored'] / 1e6:.1f} MB compressed); written in {journal['write_s']} s, "
        f"of which taking snapshots {journal['snapshot_s']} s"
    )
    return journal


async def _measure(
    dsn: str, schema: str, journal: dict[str, Any], lot: dict[str, Any], case: str, count: int, say: Callable[..., Any]
) -> list[dict[str, Any]]:
    """`count` restarts of one case, each undone after it."""
    results = []
    for n in range(count):
        load = _load_average()
        figures = restart_once(schema, lot)
        await undo_run(dsn, schema, journal["head_version"], journal["inputs"])
        figures["load_average_before"] = load
        results.append(figures)
        say(
            f"  {case:<8} run {n + 1}: first new fill committed {figures['first_fill_committed_s']:.2f} s after spawn "
            f"(python + imports {figures['imported_s']:.2f} s, pool {figures['pool_open_s'] - figures['imported_s']:.2f} s, "
            f"load_book {figures['load_book_s']:.2f} s of which snapshot {figures['snapshot_restore_s']:.2f} s, "
            f"{figures['tail_entries_replayed']:,} entries replayed; batch {figures['batch_s']:.2f} s); "
            f"{figures['new_fills']} fill; load average {load}"
        )
        if figures["new_fills"] < 1:
            raise RuntimeError("the new harvest made no fill")
    return results


def _summary(cases: dict[str, list[dict[str, Any]]]) -> dict[str, dict[str, Any]]:
    def best(case: str) -> dict[str, Any]:
        return min(cases[case], key=lambda f: f["first_fill_committed_s"])

    return {
        case: {
            "best_first_fill_s": best(case)["first_fill_committed_s"],
            "best_load_book_s": best(case)["load_book_s"],
            "runs": len(results),
            "all_first_fill_s": [f["first_fill_committed_s"] for f in results],
        }
        for case, results in cases.items()
    }


async def run_restart_bench(
    dsn: str,
    inputs: int = 1_000_000,
    runs: int = 3,
    smoke: bool = False,
    reuse: bool = False,
    without_snapshots: bool = True,
    say: Callable[..., Any] = print,
) -> dict[str, Any]:
    """Journal `inputs` inputs of one product with snapshots, then restart the matching service in fresh processes:
    from the latest snapshot, with the longest tail, and (unless told not to) without snapshots."""
    from services.matching.snapshots import SNAPSHOT_EVERY

    every = SNAPSHOT_EVERY
    schema = SMOKE_SCHEMA if smoke else SCHEMA
    if smoke:
        inputs, runs, every = min(inputs, 3_000), 1, min(every, 1_000)
    if inputs % every:
        raise ValueError(
            f"inputs ({inputs}) must be a multiple of the snapshot interval ({every}) for the cases to mean what they say"
        )
    journal = await _journal(dsn, schema, inputs, every, reuse and not smoke, say)
    await put_back(dsn, schema)
    await undo_run(dsn, schema, journal["head_version"], inputs)
    lot = lot_that_fills(await latest_state(dsn, schema))
    say(f"the new input: harvest {lot['lot_id']}, grade A, {lot['available_from']}..{lot['expires_on']}, {lot['county']}")
    say(f"restarting after {inputs:,} journal inputs ({runs} runs per case; load average now {_load_average()}):")
    cases: dict[str, list[dict[str, Any]]] = {"snapshot": await _measure(dsn, schema, journal, lot, "snapshot", runs, say)}
    await set_aside(dsn, schema, f"journal_seq = {inputs}")
    cases["tail"] = await _measure(dsn, schema, journal, lot, "tail", runs, say)
    if without_snapshots:
        await set_aside(dsn, schema, "true")
        cases["none"] = await _measure(dsn, schema, journal, lot, "none", 1, say)
    await put_back(dsn, schema)
    summary = _summary(cases)
    worst_case = summary["tail"]["best_first_fill_s"]
    met = worst_case <= GOAL_S
    say(
        f"first new fill after a restart, best of {runs}: {summary['snapshot']['best_first_fill_s']:.2f} s from the latest snapshot, "
        f"{worst_case:.2f} s with the longest tail ({every:,} entries)"
        + (f", {summary['none']['best_first_fill_s']:.2f} s without snapshots" if "none" in summary else "")
        + f"   goal <= {GOAL_S:.0f} s: {'met' if met else 'NOT MET'}"
        + (" (a smoke run: the goal is for 1,000,000 inputs)" if smoke else "")
    )
    return {
        "inputs": inputs,
        "product": PRODUCT,
        "snapshot_every": every,
        "journal": journal,
        "new_input": lot,
        "summary": summary,
        "cases": cases,
        "goal": f"first new fill within {GOAL_S:.0f} s of a restart after 1,000,000 journaled inputs of one product",
        "goal_met_with_longest_tail": met,
    }


if __name__ == "__main__":
    _child_main(sys.argv[1])
