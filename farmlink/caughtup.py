"""Waiting until every service has caught up: outboxes drained and no consumer group lagging."""

import asyncio
import time

import asyncpg
from aiokafka import AIOKafkaConsumer
from aiokafka.admin import AIOKafkaAdminClient

from events.access import AUDITOR, CONSUMER_GROUPS
from events.settings import kafka_options, settings
from farmlink.processes import SERVICES


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
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False, isolation_level="read_committed", **security)
    await admin.start()
    await consumer.start()
    try:
        lag = 0
        for group in CONSUMER_GROUPS:
            committed = await admin.list_consumer_group_offsets(group)
            if not committed:
                continue
            ends = await consumer.end_offsets(list(committed))
            lag += sum(max(0, ends[tp] - meta.offset) for tp, meta in committed.items() if meta.offset >= 0)
        return lag
    finally:
        await consumer.stop()
        await admin.close()


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
