"""Bad input on every input topic, against the real services, broker and database.

Hypothesis draws batches of adversarial records (not UTF-8, not JSON, JSON that is not an
object, nesting too deep, empty and null values, oversized values, wrong types, huge and
non-finite numbers, negative and zero quantities, unknown fields, NUL and lone surrogates
in text, unknown input types, another service's input type, a message id reused for a
different payload, odd headers and keys) and interleaves them with valid inputs. Every bad
record must reach farmlink.deadletter with its original bytes and a reason that says why,
every valid input must be accepted with its events, and afterwards every service must
still be alive and consuming.
"""

import asyncio
import json
import re
from dataclasses import dataclass
from typing import Any

import asyncpg
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from hypothesis import HealthCheck, Phase, given, settings

from contracts.topics import DEAD_LETTER, MARKET_INPUT, RECEIPTS
from events.consumer import MAX_REASON_CHARS
from farmlink.operations import processes
from tests.kafka_helpers import login
from tests.e2e.inputs import Record, register_parties
from tests.e2e.fuzz_records import Batch, INPUT_TOPICS, OUTCOME_TIMEOUT_S, SERVICE_OF_TOPIC, batches, valid_on

pytestmark = pytest.mark.e2e


# ---------------------------------------------------------------- running it


@dataclass
class Outcomes:
    dead: dict[tuple[str, int, int], Any]
    receipts: dict[str, list[dict]]


async def publish(bootstrap: str, batch: Batch) -> list[tuple[Record, tuple[str, int, int]]]:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, max_request_size=1_048_576, enable_idempotence=True, **login())
    await producer.start()
    try:
        pending = [await producer.send(r.topic, r.value, key=r.key, headers=list(r.headers)) for r in batch.records]
        sent = []
        for record, future in zip(batch.records, pending):
            meta = await future
            sent.append((record, (meta.topic, meta.partition, meta.offset)))
        return sent
    finally:
        await producer.stop()


async def end_offsets(bootstrap: str) -> dict[TopicPartition, int]:
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, isolation_level="read_committed", **login())
    await consumer.start()
    try:
        return await consumer.end_offsets([TopicPartition(DEAD_LETTER, 0), TopicPartition(RECEIPTS, 0)])
    finally:
        await consumer.stop()


async def collect(bootstrap: str, since: dict[TopicPartition, int], done, timeout: float = OUTCOME_TIMEOUT_S) -> Outcomes:
    """Dead letters and receipts from `since` until `done(outcomes)` holds (or the timeout)."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, enable_auto_commit=False, fetch_max_wait_ms=100, isolation_level="read_committed", **login()
    )
    await consumer.start()
    outcomes = Outcomes({}, {})
    try:
        consumer.assign(list(since))
        for tp, offset in since.items():
            consumer.seek(tp, offset)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while not done(outcomes) and loop.time() < deadline:
            for tp, records in (await consumer.getmany(timeout_ms=300)).items():
                for r in records:
                    if tp.topic == DEAD_LETTER:
                        h = dict(r.headers)
                        outcomes.dead[(h["dlq.topic"].decode(), int(h["dlq.partition"]), int(h["dlq.offset"]))] = r
                    else:
                        receipt = json.loads(r.value)
                        outcomes.receipts.setdefault(receipt["correlation_id"], []).append(receipt)
        return outcomes
    finally:
        await consumer.stop()


def valid_accepted(outcomes: Outcomes, record: Record) -> bool:
    return any(r["status"] == "accepted" for r in outcomes.receipts.get(record.correlation_id, ()))


async def run_batch(system, batch: Batch) -> None:
    since = await end_offsets(system.bootstrap)
    sent = await publish(system.bootstrap, batch)
    bad_records = [(r, where) for r, where in sent if r.reason is not None]
    valid = [r for r, _ in sent if r.reason is None]

    def done(o: Outcomes) -> bool:
        return all(where in o.dead for _, where in bad_records) and all(valid_accepted(o, r) for r in valid)

    outcomes = await collect(system.bootstrap, since, done)

    for record, where in bad_records:
        assert where in outcomes.dead, (
            f"not dead-lettered: {record.value[:200] if record.value else record.value!r} at {where} (expected {record.reason!r})"
        )
        dead = outcomes.dead[where]
        headers = dict(dead.headers)
        reason = headers["dlq.reason"].decode()
        assert re.search(record.reason, reason), f"reason {reason!r} does not match {record.reason!r}"
        assert headers["dlq.consumer"].decode() == SERVICE_OF_TOPIC[record.topic]
        original = record.value or b""
        assert len(reason) <= MAX_REASON_CHARS, f"a reason of {len(reason)} characters"
        if "dlq.truncated" in headers:
            assert original.startswith(dead.value) and int(headers["dlq.original-bytes"]) == len(original)
        else:
            assert dead.value == original, f"dead letter of {where} does not carry the original bytes"
        originals = [(n, v) for n, v in record.headers]
        assert [(n, v if v is not None else None) for n, v in dead.headers[: len(originals)]] == originals
    for record in valid:
        receipts = outcomes.receipts.get(record.correlation_id, [])
        accepted = [r for r in receipts if r["status"] == "accepted"]
        assert len(accepted) == 1, f"valid input {record.correlation_id} on {record.topic}: receipts {receipts}"
        assert accepted[0]["event_ids"], f"valid input {record.correlation_id} was accepted without events"
        assert accepted[0]["message_id"] == record.message_id
    conn = await asyncpg.connect(system.dsn)
    try:
        for record in valid:
            [receipt] = [r for r in outcomes.receipts[record.correlation_id] if r["status"] == "accepted"]
            schema = SERVICE_OF_TOPIC[record.topic]
            stored = await conn.fetchval(
                f'SELECT count(*) FROM "{schema}".events WHERE event_id = ANY($1::uuid[]) AND causation_id = $2',
                receipt["event_ids"],
                record.message_id,
            )
            assert stored == len(receipt["event_ids"]), f"the events of {record.correlation_id} are not in {schema}.events"
            effects = await conn.fetchval(f'SELECT count(*) FROM "{schema}".events WHERE causation_id = $1', record.message_id)
            assert effects == len(receipt["event_ids"]), f"message {record.message_id} had a second effect in {schema}"
    finally:
        await conn.close()


async def still_consuming(system) -> None:
    """Every service alive, and a final valid input on every topic accepted (and journaled by the matcher)."""
    assert all(processes.running_pid(name) for name in processes.SERVICES), processes.service_status()
    final = Batch([valid_on(topic) for topic in INPUT_TOPICS])
    await run_batch(system, final)
    price = final.records[INPUT_TOPICS.index(MARKET_INPUT)]
    since = {TopicPartition(RECEIPTS, 0): 0, TopicPartition(DEAD_LETTER, 0): 0}
    outcomes = await collect(
        system.bootstrap,
        since,
        lambda o: any(r["status"] == "journaled" for r in o.receipts.get(price.correlation_id, ())),
    )
    assert any(r["status"] == "journaled" for r in outcomes.receipts.get(price.correlation_id, ())), (
        "the matcher stopped consuming"
    )
    assert all(processes.running_pid(name) for name in processes.SERVICES), processes.service_status()


FUZZ = settings(
    max_examples=4,
    deadline=None,
    derandomize=True,
    phases=[Phase.explicit, Phase.generate],  # no shrinking: each example costs real round trips
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
        HealthCheck.large_base_example,
    ],
    print_blob=True,
)


@pytest.mark.timeout(240)
def test_every_bad_input_is_dead_lettered_with_its_reason_while_every_valid_one_is_processed(clean_system):
    register_parties(clean_system.bootstrap)

    @FUZZ
    @given(batch=batches())
    def fuzz(batch: Batch) -> None:
        asyncio.run(run_batch(clean_system, batch))

    fuzz()
    asyncio.run(still_consuming(clean_system))
