"""`farmlink bench publish`: farmlink's publish path (the outbox relay: read committed rows,
send them through the idempotent producer, await the acknowledgements, delete the rows)
against raw aiokafka's producer sending the same messages, same sizes, same batches, same broker."""

import asyncio
import time
import uuid
from typing import Any

import asyncpg
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from events.access import ADMIN
from events.migrations import migrate
from events.relay import BATCH_SIZE, idempotent_producer, publish_pending, transactional_producer
from events.settings import kafka_options, settings



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
        async with pool.acquire() as conn:
            started = time.perf_counter()
            sent = 0
            while sent < messages:
                sent += await publish_pending(conn, schema, producer)
            return messages / (time.perf_counter() - started)
    finally:
        await producer.stop()


async def _raw_rate(bootstrap: str, topic: str, messages: int, size: int) -> float:
    value = b"x" * size
    producer = idempotent_producer(bootstrap, **_security())
    await producer.start()
    try:
        started = time.perf_counter()
        for first in range(0, messages, BATCH_SIZE):
            deliveries = [await producer.send(topic, value, key=f"key-{n % 12}".encode()) for n in range(first, min(first + BATCH_SIZE, messages))]
            await asyncio.gather(*deliveries)
        return messages / (time.perf_counter() - started)
    finally:
        await producer.stop()


async def run_publish_bench(bootstrap: str, dsn: str, messages: int = 100_000, size: int = 600, rounds: int = 3,
                            smoke: bool = False, say=print) -> dict[str, Any]:
    """Messages/s through the relay and through a raw producer, alternating rounds; overhead = 1 - relay/raw."""
    if smoke:
        messages, rounds = 2_000, 1
    run_id = uuid.uuid4().hex[:8]
    schema, topic = f"bench_publish_{run_id}", f"bench.publish.{run_id}"
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, **_security())
    await admin.start()
    await admin.create_topics([NewTopic(topic, 6, 1)])
    pool = await asyncpg.create_pool(dsn, min_size=1, max_size=2)
    relay_rates, raw_rates = [], []
    try:
        await migrate(pool, schema)
        for round_no in range(rounds):
            raw_rates.append(await _raw_rate(bootstrap, topic, messages, size))
            relay_rates.append(await _relay_rate(pool, schema, bootstrap, topic, messages, size))
            say(f"round {round_no + 1}: raw producer {raw_rates[-1]:,.0f} msg/s, farmlink relay {relay_rates[-1]:,.0f} msg/s")
    finally:
        await pool.execute(f'DROP SCHEMA "{schema}" CASCADE')
        await pool.close()
        await admin.delete_topics([topic])
        await admin.close()
    relay, raw = max(relay_rates), max(raw_rates)
    overhead = 1 - relay / raw
    say(f"best of {rounds}: relay {relay:,.0f} msg/s vs raw {raw:,.0f} msg/s ({size}-byte messages): overhead {overhead:.0%}"
        f" (goal at most 10%: {'met' if overhead <= 0.10 else 'not met'})")
    return {"messages": messages, "message_bytes": size, "rounds": rounds, "relay_msgs_per_s": round(relay),
            "raw_msgs_per_s": round(raw), "overhead": round(overhead, 3), "goal_met": overhead <= 0.10}
