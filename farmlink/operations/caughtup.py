"""Waiting until every service has caught up: outboxes drained and no consumer group lagging."""

import asyncio
import time

import asyncpg
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from events.access import AUDITOR, CONSUMER_GROUPS
from events.settings import kafka_options, settings
from farmlink.operations.processes import SERVICES

EXACT_LAG_BELOW = 1000  # offset gaps up to this are checked record by record


async def outbox_backlog(dsn: str) -> int:
    """Rows still waiting in any service's outbox."""
    conn = await asyncpg.connect(dsn)
    try:
        total = 0
        for schema in SERVICES:
            if await conn.fetchval("SELECT to_regclass($1) IS NOT NULL", f"{schema}.outbox"):
                total += await conn.fetchval(f'SELECT count(*) FROM "{schema}".outbox')
        return total
    finally:
        await conn.close()


async def consumer_lag(bootstrap: str) -> int:
    """Messages the farmlink consumer groups have not committed yet, over all their partitions (as the
    auditor: it may read every topic and look at, not join, the groups)."""
    security = kafka_options(settings(), AUDITOR)
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, **security)
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, enable_auto_commit=False, isolation_level="read_committed", **security
    )
    await admin.start()
    await consumer.start()
    try:
        lag = 0
        for group in CONSUMER_GROUPS:
            committed = await admin.list_consumer_group_offsets(group)
            if not committed:
                continue
            ends = await consumer.end_offsets(list(committed))
            for tp, meta in committed.items():
                if meta.offset >= 0 and ends[tp] > meta.offset:
                    lag += await _records_between(consumer, tp, meta.offset, ends[tp])
        return lag
    finally:
        await consumer.stop()
        await admin.close()


async def _records_between(consumer: AIOKafkaConsumer, tp: TopicPartition, committed: int, end: int) -> int:
    """Committed records a group has not consumed yet on one partition. Offsets alone overcount: a relay
    transaction's commit marker takes an offset too, and a group that read up to a marker commits the
    offset of the marker, not past it. So the records are read (read_committed, markers skipped)."""
    if end - committed > EXACT_LAG_BELOW:
        return end - committed  # far behind either way: offsets are close enough
    consumer.assign([tp])
    consumer.seek(tp, committed)
    count = 0
    while await consumer.position(tp) < end:
        batch = await consumer.getmany(tp, timeout_ms=1000, max_records=10_000)
        records = batch.get(tp, [])
        if not records and await consumer.position(tp) < end:
            break  # nothing readable right now (an open transaction): not caught up
        count += sum(1 for record in records if record.offset < end)
    return max(count, 1) if count or await consumer.position(tp) < end else 0


async def wait_until_caught_up(bootstrap: str, dsn: str, timeout: float = 60.0, settle_checks: int = 2) -> None:
    """Return once outboxes are empty and groups have no lag, `settle_checks` times in a row."""
    deadline = time.monotonic() + timeout
    quiet = 0
    while quiet < settle_checks:
        if await outbox_backlog(dsn) == 0 and await consumer_lag(bootstrap) == 0:
            quiet += 1
        else:
            quiet = 0
        if time.monotonic() > deadline:
            raise TimeoutError(f"services did not catch up within {timeout:.0f} s")
        await asyncio.sleep(0.2)
