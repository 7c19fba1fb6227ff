"""`farmlink bench publish`: farmlink's publish path (the outbox relay: read committed rows,
publish each batch in a Kafka transaction with its checkpoint, delete the rows; pipelined)
against raw aiokafka producers sending the same messages, same sizes, same batches (wait for
every acknowledgement each BATCH_SIZE messages), same broker, no transactions, no database.

Two raw producers, because the relay builds aiokafka record batches itself
(`create_batch`/`send_batch`) instead of calling `send` per message, which costs less Python:
- `send`: `producer.send` per message (the baseline of the earlier figures);
- `batch`: the same messages appended to `create_batch()` builders per partition, `send_batch`.
The overhead is taken against the faster of the two, so an API that is cheaper per message
is not counted as relay speed."""

import asyncio
import time
import uuid
from typing import Any

import asyncpg
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.partitioner import DefaultPartitioner

from events.access import ADMIN
from events.migrations import migrate
from events.relay import BATCH_SIZE, idempotent_producer, publish_pending, transactional_producer
from events.settings import kafka_options, settings

GOAL = 0.10


def _security() -> dict:
    """The bench writes a scratch topic of its own, which no service principal may touch: it runs as the super user."""
    return kafka_options(settings(), ADMIN)


async def _fill_outbox(pool: asyncpg.Pool, schema: str, topic: str, messages: int, size: int) -> None:
    value = b"x" * size
    rows = [(topic, f"key-{n % 12}".encode(), value, "[]") for n in range(messages)]
    async with pool.acquire() as conn:
        await conn.copy_records_to_table("outbox", schema_name=schema, records=rows, columns=("topic", "key", "value", "headers"))


async def _relay_rate(pool: asyncpg.Pool, schema: str, bootstrap: str, topic: str, messages: int, size: int) -> float:
    await _fill_outbox(pool, schema, topic, messages, size)
    producer = transactional_producer(bootstrap, schema, **_security())
    await producer.start()
    try:
        async with pool.acquire() as conn, pool.acquire() as delete_conn:  # the relay reads on one, deletes on the other
            started = time.perf_counter()
            sent = 0
            while sent < messages:
                sent += await publish_pending(conn, schema, producer, delete_conn=delete_conn)
            return messages / (time.perf_counter() - started)
    finally:
        await producer.stop()


async def _raw_rate(bootstrap: str, topic: str, messages: int, size: int) -> float:
    """`send` per message; every acknowledgement awaited each BATCH_SIZE messages."""
    value = b"x" * size
    producer = idempotent_producer(bootstrap, **_security())
    await producer.start()
    try:
        started = time.perf_counter()
        for first in range(0, messages, BATCH_SIZE):
            deliveries = [
                await producer.send(topic, value, key=f"key-{n % 12}".encode())
                for n in range(first, min(first + BATCH_SIZE, messages))
            ]
            await asyncio.gather(*deliveries)
        return messages / (time.perf_counter() - started)
    finally:
        await producer.stop()


async def _raw_batch_rate(bootstrap: str, topic: str, messages: int, size: int) -> float:
    """The same messages through aiokafka's batch API: one closed builder per partition (more when
    full), `send_batch`, every acknowledgement awaited each BATCH_SIZE messages."""
    value = b"x" * size
    producer = idempotent_producer(bootstrap, **_security())
    await producer.start()
    try:
        partitioner = DefaultPartitioner()
        partitions = sorted(await producer.partitions_for(topic))
        started = time.perf_counter()
        for first in range(0, messages, BATCH_SIZE):
            builders: dict[int, Any] = {}
            full = []
            for n in range(first, min(first + BATCH_SIZE, messages)):
                key = f"key-{n % 12}".encode()
                partition = partitioner(key, partitions, partitions)
                builder = builders.get(partition)
                if builder is None or builder.append(timestamp=None, key=key, value=value, headers=[]) is None:
                    if builder is not None:
                        full.append((partition, builder))
                    builder = builders[partition] = producer.create_batch()
                    builder.append(timestamp=None, key=key, value=value, headers=[])
            deliveries = []
            for partition, builder in full + list(builders.items()):
                builder.close()
                deliveries.append(await producer.send_batch(builder, topic, partition=partition))
            await asyncio.gather(*deliveries)
        return messages / (time.perf_counter() - started)
    finally:
        await producer.stop()


async def run_publish_bench(
    bootstrap: str, dsn: str, messages: int = 100_000, size: int = 600, rounds: int = 3, smoke: bool = False, say=print
) -> dict[str, Any]:
    """Messages/s through the relay and through the two raw producers, alternating in each round;
    overhead = 1 - relay / the faster raw producer (best of the rounds each)."""
    if smoke:
        messages, rounds = 2_000, 1
    run_id = uuid.uuid4().hex[:8]
    schema, topic = f"bench_publish_{run_id}", f"bench.publish.{run_id}"
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, **_security())
    await admin.start()
    await admin.create_topics([NewTopic(topic, 6, 1)])
    pool = await asyncpg.create_pool(dsn, min_size=1, max_size=2)
    relay_rates: list[float] = []
    raw_rates: list[float] = []
    batch_rates: list[float] = []
    try:
        await migrate(pool, schema)
        for round_no in range(rounds):
            raw_rates.append(await _raw_rate(bootstrap, topic, messages, size))
            batch_rates.append(await _raw_batch_rate(bootstrap, topic, messages, size))
            relay_rates.append(await _relay_rate(pool, schema, bootstrap, topic, messages, size))
            say(
                f"round {round_no + 1}: raw producer send {raw_rates[-1]:,.0f} msg/s, send_batch {batch_rates[-1]:,.0f} msg/s,"
                f" farmlink relay {relay_rates[-1]:,.0f} msg/s"
            )
    finally:
        await pool.execute(f'DROP SCHEMA "{schema}" CASCADE')
        await pool.close()
        await admin.delete_topics([topic])
        await admin.close()
    relay, raw, raw_batch = max(relay_rates), max(raw_rates), max(batch_rates)
    fastest_raw = max(raw, raw_batch)
    overhead = 1 - relay / fastest_raw
    say(
        f"best of {rounds}: relay {relay:,.0f} msg/s; raw send {raw:,.0f} msg/s (overhead {1 - relay / raw:.0%}),"
        f" raw send_batch {raw_batch:,.0f} msg/s (overhead {1 - relay / raw_batch:.0%}); {size}-byte messages"
    )
    say(
        f"overhead against the faster raw producer: {overhead:.0%} (goal at most {GOAL:.0%}: {'met' if overhead <= GOAL else 'not met'})"
    )
    return {
        "messages": messages,
        "message_bytes": size,
        "rounds": rounds,
        "relay_msgs_per_s": round(relay),
        "raw_msgs_per_s": round(raw),
        "raw_batch_msgs_per_s": round(raw_batch),
        "relay_rounds": [round(r) for r in relay_rates],
        "raw_rounds": [round(r) for r in raw_rates],
        "raw_batch_rounds": [round(r) for r in batch_rates],
        "overhead_vs_send": round(1 - relay / raw, 3),
        "overhead_vs_send_batch": round(1 - relay / raw_batch, 3),
        "overhead": round(overhead, 3),
        "goal_met": overhead <= GOAL,
    }
