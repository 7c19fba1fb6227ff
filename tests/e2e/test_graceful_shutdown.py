"""SIGTERM in the middle of a stream of inputs loses nothing and does nothing twice.

A real `farmlink serve cooperative` process consumes a steady stream of valid inputs and
is stopped with SIGTERM while it is working; it must exit cleanly, having committed
consumer offsets only for inputs whose transaction committed. Restarted, it must finish
the rest: every input ends with exactly one accepted receipt and its event exactly once.
"""

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import asyncpg
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from contracts.topics import COOPERATIVE_EVENTS, COOPERATIVE_INPUT, EVENT_PARTITIONS, RECEIPTS
from farmlink.operations import processes
from tests.kafka_helpers import login
from tests.e2e.inputs import Record, valid_input, valid_payload

pytestmark = pytest.mark.e2e

INPUTS = 800  # published at about 200 a second
GROUP = "farmlink.cooperative"


class Service:
    """`farmlink serve cooperative` as a child of this test, so its exit code can be read."""

    def __init__(self, log: Path):
        self.log = log
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        processes.ready_file("cooperative").unlink(missing_ok=True)
        with self.log.open("ab") as out:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "farmlink.cli", "serve", "cooperative"],
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                env={**os.environ, "PYTHONUNBUFFERED": "1"},
            )
        processes.pid_file("cooperative").write_text(str(self.process.pid))  # `farmlink down` finds it
        deadline = time.monotonic() + 60
        while not processes.ready_file("cooperative").exists():
            assert self.process.poll() is None, self.log.read_text()[-3000:]
            assert time.monotonic() < deadline, "cooperative service not ready after 60 s"
            time.sleep(0.05)

    def terminate(self, timeout: float = 30.0) -> int:
        assert self.process is not None
        self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout)


def stop_the_launchers_cooperative() -> None:
    pid = processes.running_pid("cooperative")
    if pid:
        os.kill(pid, signal.SIGTERM)
        while processes.running_pid("cooperative"):
            time.sleep(0.05)


def inputs(count: int) -> list[Record]:
    return [
        valid_input("cooperative.registered", valid_payload("cooperative.registered"), correlation_id=f"sigterm:{i}")
        for i in range(count)
    ]


async def publish_steadily(bootstrap: str, records: list[Record], per_tick: int = 10, tick: float = 0.05) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, enable_idempotence=True, **login())
    await producer.start()
    try:
        for start in range(0, len(records), per_tick):
            for r in records[start : start + per_tick]:
                await producer.send(r.topic, r.value, key=r.key)
            await producer.flush()
            await asyncio.sleep(tick)
    finally:
        await producer.stop()


async def receipts_of(bootstrap: str, prefix: str, until, timeout: float = 60.0) -> list[dict]:
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, enable_auto_commit=False, fetch_max_wait_ms=100, isolation_level="read_committed", **login()
    )
    await consumer.start()
    found: list[dict] = []
    try:
        tp = TopicPartition(RECEIPTS, 0)
        consumer.assign([tp])
        await consumer.seek_to_beginning(tp)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while not until(found) and loop.time() < deadline:
            for records in (await consumer.getmany(timeout_ms=200)).values():
                for r in records:
                    receipt = json.loads(r.value)
                    if receipt["correlation_id"].startswith(prefix):
                        found.append(receipt)
        return found
    finally:
        await consumer.stop()


def accepted_ids(receipts: list[dict]) -> set[str]:
    return {r["message_id"] for r in receipts if r["status"] == "accepted"}


async def committed_offsets(bootstrap: str) -> dict[TopicPartition, int]:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, **login())
    await admin.start()
    try:
        return {
            tp: meta.offset
            for tp, meta in (await admin.list_consumer_group_offsets(GROUP)).items()
            if tp.topic == COOPERATIVE_INPUT
        }
    finally:
        await admin.close()


async def behind(consumer: AIOKafkaConsumer, ends: dict[TopicPartition, int]) -> bool:
    return any([await consumer.position(tp) < end for tp, end in ends.items()])


async def records_below(bootstrap: str, offsets: dict[TopicPartition, int]) -> list:
    """Every input record below the committed offsets."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, enable_auto_commit=False, isolation_level="read_committed", **login()
    )
    await consumer.start()
    try:
        wanted = {tp: end for tp, end in offsets.items() if end > 0}
        consumer.assign(list(wanted))
        for tp in wanted:
            await consumer.seek_to_beginning(tp)
        found = []
        while await behind(consumer, wanted):
            for tp, records in (await consumer.getmany(timeout_ms=500)).items():
                found += [r for r in records if r.offset < wanted[tp]]
        return found
    finally:
        await consumer.stop()


async def event_ids_on_kafka(bootstrap: str, expected: set[str], timeout: float = 30.0) -> list[str]:
    """Every event id on the cooperative events topic, read until the expected ones are all there and the end is reached."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        isolation_level="read_committed",
        **login(),
    )
    await consumer.start()
    try:
        tps = [TopicPartition(COOPERATIVE_EVENTS, p) for p in range(EVENT_PARTITIONS)]
        consumer.assign(tps)
        ends = await consumer.end_offsets(tps)
        for tp in tps:
            consumer.seek(tp, 0)
        ids: list[str] = []
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while (not expected <= set(ids) or await behind(consumer, ends)) and loop.time() < deadline:
            for records in (await consumer.getmany(timeout_ms=500)).values():
                ids += [json.loads(r.value)["event_id"] for r in records]
        return ids
    finally:
        await consumer.stop()


async def test_sigterm_mid_stream_exits_cleanly_and_after_a_restart_every_input_has_exactly_one_outcome(clean_system, tmp_path):
    bootstrap = clean_system.bootstrap
    stop_the_launchers_cooperative()
    service = Service(processes.log_dir() / "cooperative.log")
    log_start = service.log.stat().st_size if service.log.exists() else 0
    service.start()
    records = inputs(INPUTS)
    ids = {r.message_id for r in records}
    began = time.monotonic()
    publishing = asyncio.create_task(publish_steadily(bootstrap, records))

    seen = await receipts_of(bootstrap, "sigterm:", lambda found: len(accepted_ids(found)) >= 100)
    done_before = len(accepted_ids(seen))
    assert done_before >= 100, "the service did not start consuming"
    assert not publishing.done(), "the stream ended before SIGTERM: the test would not stop the service mid-stream"
    code = await asyncio.to_thread(service.terminate)

    log = service.log.read_bytes()[log_start:].decode("utf-8", "replace")
    assert code == 0, f"exit code {code} after SIGTERM\n{log[-3000:]}"
    assert "FastStream app shutting down" in log and "FastStream app shut down gracefully" in log, log[-3000:]
    assert "Traceback" not in log, log[-5000:]

    # Offsets were committed only for inputs whose transaction committed (their ids are in the inbox).
    committed = await committed_offsets(bootstrap)
    below = await records_below(bootstrap, committed)
    conn = await asyncpg.connect(clean_system.dsn)
    try:
        inbox = {
            row["message_id"]
            for row in await conn.fetch("SELECT message_id FROM cooperative.inbox WHERE consumer = 'cooperative'")
        }
    finally:
        await conn.close()
    committed_ids = {json.loads(r.value)["message_id"] for r in below}
    assert committed_ids <= inbox, f"{len(committed_ids - inbox)} inputs below a committed offset were never processed"
    assert len(inbox & ids) < INPUTS, "everything was done before SIGTERM: nothing was in flight"

    await publishing
    print(f"stopped after {time.monotonic() - began:.1f} s")
    service.start()
    receipts = await receipts_of(bootstrap, "sigterm:", lambda found: accepted_ids(found) >= ids, timeout=90)
    assert accepted_ids(receipts) == ids, f"{len(ids - accepted_ids(receipts))} inputs never got an accepted receipt"
    print(f"all accepted after {time.monotonic() - began:.1f} s")
    outcomes = {}
    for receipt in receipts:
        outcomes.setdefault(receipt["message_id"], set()).add(json.dumps(receipt, sort_keys=True))
    assert all(len(o) == 1 for o in outcomes.values()), "an input got two different outcomes"
    duplicates = len(receipts) - len(outcomes)
    assert duplicates == 0, f"{duplicates} receipts were published twice"

    conn = await asyncpg.connect(clean_system.dsn)
    try:
        per_message = await conn.fetch(
            "SELECT causation_id, count(*) AS n FROM cooperative.events WHERE causation_id = ANY($1::text[]) GROUP BY causation_id",
            list(ids),
        )
    finally:
        await conn.close()
    assert len(per_message) == INPUTS and all(row["n"] == 1 for row in per_message), (
        "an input's event is missing or recorded twice"
    )
    event_ids = {e for r in receipts for e in r["event_ids"]}
    on_kafka = await event_ids_on_kafka(bootstrap, event_ids)
    print(f"events read after {time.monotonic() - began:.1f} s")
    assert event_ids <= set(on_kafka), "an event never reached Kafka"
    assert len(on_kafka) == len(set(on_kafka)), "an event was published twice"
    print(f"{done_before} accepted before SIGTERM; {len(inbox & ids)} done at exit; all {INPUTS} exactly once after the restart")


def test_farmlink_down_stops_every_service_with_sigterm_and_each_shuts_down_gracefully(clean_system):
    logs = {name: processes.log_dir() / f"{name}.log" for name in processes.SERVICES}
    sizes = {name: path.stat().st_size for name, path in logs.items()}
    pids = processes.service_status()
    assert all(pids.values()), pids
    started = time.monotonic()
    processes.stop_all(say=lambda _: None)
    took = time.monotonic() - started
    assert took < 20.0, f"stopping took {took:.1f} s: a service needed SIGKILL"
    for name, path in logs.items():
        tail = path.read_bytes()[sizes[name] :].decode("utf-8", "replace")
        assert "FastStream app shut down gracefully" in tail, f"{name} did not shut down gracefully:\n{tail[-2000:]}"
        assert "Traceback" not in tail, f"{name}:\n{tail[-3000:]}"
    assert not any(processes.service_status().values())
