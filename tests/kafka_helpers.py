"""Reading what actually reached Kafka, for assertions; logging in as a principal of events/access.py."""

import asyncio

from aiokafka import AIOKafkaConsumer, TopicPartition
from faststream.security import BaseSecurity

from events.access import ADMIN
from events.settings import kafka_options, kafka_security, settings


def login(principal: str = ADMIN) -> dict:
    """aiokafka options for a client acting as `principal` (the super user by default: tests create scratch topics)."""
    return kafka_options(settings(), principal)


def broker_login(principal: str = ADMIN) -> BaseSecurity | None:
    """The same as FastStream's `security=` object."""
    return kafka_security(settings(), principal)


async def read_topic(
    bootstrap: str, name: str, expected: int, partitions: int = 3, timeout: float = 20.0, principal: str = ADMIN
) -> list:
    """Every record on a topic from offset 0, once at least `expected` have arrived (or the timeout)."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        isolation_level="read_committed",
        **login(principal),
    )
    await consumer.start()
    try:
        assigned = [TopicPartition(name, p) for p in range(partitions)]
        consumer.assign(assigned)
        starts = await consumer.beginning_offsets(assigned)
        for tp in assigned:
            consumer.seek(tp, starts[tp])
        records = []
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while len(records) < expected and loop.time() < deadline:
            batch = await consumer.getmany(timeout_ms=200)
            for items in batch.values():
                records += items
        return records
    finally:
        await consumer.stop()
