"""`farmlink bench append` / `farmlink bench replay`: farmlink's event store against a peer.

The peer is the eventsourcing library's PostgreSQL recorder (`PostgresApplicationRecorder`,
eventsourcing 9.5.6, psycopg 3), used directly: `insert_events` with `StoredEvent`s and
`select_notifications` pages. Both sides run on the same PostgreSQL server and database,
each in schemas of its own created for the run and dropped afterwards, with the server's
durability settings as they are (fsync and synchronous_commit are read and reported, never
changed).

append: three cases, each timed for the same number of seconds per side, in alternating
slices (ours, peer, peer, ours, ...) so that machine noise hits both:
  single  one writer, one event per transaction
  four    four concurrent writers, one event per transaction each (ours: one asyncio task
          per writer on a 4-connection asyncpg pool; the peer: four threads)
  batch   one writer, 100 events per transaction
Ours is the public `EventStore.append` (expected-version check, hash chain, outbox rows and
NOTIFY in the same transaction); each writer appends to streams of its own at the right
expected version and starts a new stream every STREAM_LENGTH events. The peer does the
same with originator ids and versions.

replay: N events written into a fresh schema on each side (ours by COPY of rows with
correct hash chains, the peer by `insert_events` in batches), then both logs are read
end to end into the same trivial projection (count per event type, sum of price_fen),
decoding every JSON payload: ours through the store's projection reader
`EventStore.read_all_payloads` (position, type, payload), the peer through
`select_notifications` pages of 1,000. `read_all` (a validated Envelope per event) is
measured too, for comparison.

The peer's speed depends on which psycopg implementation is installed: `eventsourcing[postgres]`
pulls pure-Python psycopg (libpq through ctypes); with `psycopg-binary` (the C implementation)
the same peer is markedly faster. The figures name the implementation that was used
(`peer_driver`), so compare runs only when it is the same.
"""

import asyncio
import os
import subprocess
import tempfile
import time
import uuid
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import suppress
from typing import Any

import asyncpg

from events.hashchain import canonical_json
from events.migrations import migrate
from events.store import EventStore, NewEvent, create_pool
from farmlink.operations.bench.store_peer import (
    PEER,
    PEER_TOPIC,
    STREAM_LENGTH,
    Peer,
    payload_sets,
    psycopg_driver,
    server_settings,
    warn_unless_durable,
    verdict,
)
from farmlink.operations.bench.store_replay import run_replay_bench

__all__ = ["fdatasync_rate", "run_append_bench", "run_replay_bench"]

SLICE_S = 2.5
"""About how long one side runs before the other takes over, in a full run."""
APPEND_RATIO_GOAL = {"single": 1.5, "four": 3.0, "batch": 2.0}
"""Issue 10's goals against the peer in the same run: 1 writer >= 1.5x, 4 writers >= 3x, 100-event batches >= 2x."""
PG_TEST_FSYNC = "/usr/lib/postgresql/15/bin/pg_test_fsync"

CASES = (
    ("single", "one writer, one event per transaction", 1, 1),
    ("four", "4 concurrent writers, one event per transaction each", 4, 1),
    ("batch", "one writer, 100-event batches", 1, 100),
)


async def _ours_writer(store: EventStore, writer: int, deadline: float, batch: int, events: Sequence[NewEvent]) -> int:
    appended, version, stream, n = 0, 0, "", writer * 7919
    while time.perf_counter() < deadline:
        if not stream or version >= STREAM_LENGTH:
            stream, version = f"bench-{writer}-{uuid.uuid4().hex[:16]}", 0
        chunk = [events[(n + k) % len(events)] for k in range(batch)]
        n += batch
        await store.append(stream, chunk, version, correlation_id=f"bench-{writer}-{n}")
        version += batch
        appended += batch
    return appended


def _peer_writer(peer: Peer, writer: int, deadline: float, batch: int, states: Sequence[bytes]) -> int:
    StoredEvent = peer.StoredEvent
    appended, version, originator, n = 0, 0, None, writer * 7919
    while time.perf_counter() < deadline:
        if originator is None or version >= STREAM_LENGTH:
            originator, version = uuid.uuid4(), 0
        peer.recorder.insert_events(
            [StoredEvent(originator, version + k + 1, PEER_TOPIC, states[(n + k) % len(states)]) for k in range(batch)]
        )
        n += batch
        version += batch
        appended += batch
    return appended


async def _run_ours(store: EventStore, writers: int, batch: int, seconds: float, events: Sequence[NewEvent]) -> tuple[int, float]:
    started = time.perf_counter()
    counts = await asyncio.gather(*(_ours_writer(store, w, started + seconds, batch, events) for w in range(writers)))
    return sum(counts), time.perf_counter() - started


async def _run_peer(
    peer: Peer, executor: ThreadPoolExecutor, writers: int, batch: int, seconds: float, states: Sequence[bytes]
) -> tuple[int, float]:
    loop = asyncio.get_running_loop()
    started = time.perf_counter()
    counts = await asyncio.gather(
        *(loop.run_in_executor(executor, _peer_writer, peer, w, started + seconds, batch, states) for w in range(writers))
    )
    return sum(counts), time.perf_counter() - started


async def _alternate(
    store: EventStore,
    peer: Peer,
    executor: ThreadPoolExecutor,
    writers: int,
    batch: int,
    seconds: float,
    events: Sequence[NewEvent],
    states: Sequence[bytes],
) -> tuple[int, int, int, float, float]:
    """Both sides warmed up (not counted), then timed in alternating slices: (slices, ours_n, peer_n, ours_s, peer_s)."""
    await _run_ours(store, writers, batch, 0.2, events)
    await _run_peer(peer, executor, writers, batch, 0.2, states)
    slices = max(2, round(seconds / SLICE_S))
    each = seconds / slices
    ours_n = peer_n = 0
    ours_s = peer_s = 0.0
    for index in range(slices):
        order = ("ours", "peer") if index % 2 == 0 else ("peer", "ours")
        for side in order:
            if side == "ours":
                n, s = await _run_ours(store, writers, batch, each, events)
                ours_n, ours_s = ours_n + n, ours_s + s
            else:
                n, s = await _run_peer(peer, executor, writers, batch, each, states)
                peer_n, peer_s = peer_n + n, peer_s + s
    return slices, ours_n, peer_n, ours_s, peer_s


async def _append_case(
    dsn: str,
    admin: asyncpg.Pool,
    name: str,
    writers: int,
    batch: int,
    seconds: float,
    events: Sequence[NewEvent],
    states: Sequence[bytes],
) -> dict[str, Any]:
    run_id = uuid.uuid4().hex[:8]
    ours_schema, peer_schema = f"bench_append_{run_id}", f"bench_append_peer_{run_id}"
    pool = await create_pool(dsn, min_size=writers, max_size=writers)
    peer: Peer | None = None
    executor = ThreadPoolExecutor(max_workers=writers, thread_name_prefix="bench-peer")
    try:
        await migrate(pool, ours_schema)
        store = EventStore(pool, ours_schema, producer="bench")
        await admin.execute(f'CREATE SCHEMA "{peer_schema}"')
        peer = Peer(dsn, peer_schema, pool_size=writers)
        await asyncio.to_thread(peer.create)
        slices, ours_n, peer_n, ours_s, peer_s = await _alternate(store, peer, executor, writers, batch, seconds, events, states)
        stored = await admin.fetchval(f'SELECT count(*) FROM "{ours_schema}".events')
        outbox = await admin.fetchval(f'SELECT count(*) FROM "{ours_schema}".outbox')
        peer_stored = await admin.fetchval(f'SELECT count(*) FROM "{peer_schema}".stored_events')
        peer_sync = await asyncio.to_thread(peer.setting, "synchronous_commit")
    finally:
        executor.shutdown(wait=True)
        if peer is not None:
            await asyncio.to_thread(peer.close)
        await pool.close()
        await admin.execute(f'DROP SCHEMA IF EXISTS "{ours_schema}" CASCADE')
        await admin.execute(f'DROP SCHEMA IF EXISTS "{peer_schema}" CASCADE')
    ours_rate, peer_rate = ours_n / ours_s, peer_n / peer_s
    ratio = ours_rate / peer_rate
    return {
        "description": next(d for c, d, _, _ in CASES if c == name),
        "writers": writers,
        "events_per_transaction": batch,
        "slices_per_side": slices,
        "ours_events": ours_n,
        "ours_s": round(ours_s, 2),
        "ours_events_per_s": round(ours_rate),
        "peer_events": peer_n,
        "peer_s": round(peer_s, 2),
        "peer_events_per_s": round(peer_rate),
        "ratio": round(ratio, 2),
        "goal": f">= {APPEND_RATIO_GOAL[name]:g}x the peer",
        "met": ratio >= APPEND_RATIO_GOAL[name],
        "checked_rows": {"ours_events": stored, "ours_outbox": outbox, "peer_events": peer_stored},
        "peer_synchronous_commit": peer_sync,
    }


def fdatasync_rate(seconds: int = 2, directory: str | None = None) -> float | None:
    """fdatasync calls per second (one 8 kB write each) from pg_test_fsync, or None when it cannot run.

    Stops pg_test_fsync as soon as it has printed that figure (the full tool takes ~30 s).
    """
    if not os.path.exists(PG_TEST_FSYNC):
        return None
    with tempfile.TemporaryDirectory(prefix="bench_fsync_", dir=directory) as folder:
        process = subprocess.Popen(
            [PG_TEST_FSYNC, "-s", str(seconds), "-f", os.path.join(folder, "probe")],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        try:
            assert process.stdout is not None
            for line in process.stdout:
                parts = line.split()
                if parts[:1] == ["fdatasync"] and "ops/sec" in parts:
                    with suppress(ValueError):
                        return float(parts[1])
            return None
        finally:
            if process.poll() is None:
                process.terminate()
            with suppress(subprocess.TimeoutExpired):
                process.wait(timeout=5)


async def run_append_bench(dsn: str, seconds: float = 10.0, smoke: bool = False, say=print) -> dict:
    """Append throughput of EventStore.append against the peer's insert_events, three cases."""
    if smoke:
        seconds = min(seconds, 1.0)
    models, states = payload_sets(1000)
    events = [NewEvent(model) for model in models]
    admin = await asyncpg.create_pool(dsn, min_size=1, max_size=1)
    try:
        settings = await server_settings(admin)
        warn_unless_durable(settings, say)
        say(
            f"append: farmlink EventStore.append vs {PEER} ({psycopg_driver()}), same server, "
            f"fsync={settings.get('fsync')}, synchronous_commit={settings.get('synchronous_commit')}, "
            f"{seconds:g} s per side per case, alternating slices"
        )
        fsync_rate = None
        if not smoke:
            fsync_rate = await asyncio.to_thread(fdatasync_rate)
            if fsync_rate is not None:
                say(f"pg_test_fsync: fdatasync {fsync_rate:,.0f} ops/s (8 kB writes, a temp dir on this machine)")
        cases: dict[str, Any] = {}
        for name, description, writers, batch in CASES:
            say(f"  {name}: {description} ...")
            case = await _append_case(dsn, admin, name, writers, batch, seconds, events, states)
            cases[name] = case
            say(
                f"    ours {case['ours_events_per_s']:>8,} events/s   peer {case['peer_events_per_s']:>8,} events/s   "
                f"ratio {case['ratio']:.2f}x   goal {case['goal']}: {verdict(case['met'])}"
            )
        ours_sync = await admin.fetchval("SHOW synchronous_commit")
    finally:
        await admin.close()
    all_met = all(case["met"] for case in cases.values())
    say(f"append goals (1 writer >= 1.5x, 4 writers >= 3x, 100-event batches >= 2x the peer): {verdict(all_met)}")
    return {
        "peer": PEER,
        "peer_driver": psycopg_driver(),
        "seconds_per_side_per_case": seconds,
        "stream_length": STREAM_LENGTH,
        "payload_bytes": {
            "ours": round(sum(len(canonical_json(m.model_dump(mode="json"))) for m in models) / len(models)),
            "peer": round(sum(len(s) for s in states) / len(states)),
        },
        "server": settings
        | {
            "ours_session_synchronous_commit": ours_sync,
            "peer_session_synchronous_commit": sorted({c["peer_synchronous_commit"] for c in cases.values()}),
        },
        "fdatasync_ops_per_s": round(fsync_rate) if fsync_rate else None,
        "cases": cases,
        "goal": "append: 1 writer >= 1.5x, 4 writers >= 3x, 100-event batches >= 2x the peer",
        "goals_met": all_met,
        "machine_note": f"{os.cpu_count()} cores, load average {', '.join(f'{x:.2f}' for x in os.getloadavg())} at the end",
    }
