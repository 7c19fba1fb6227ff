"""Fixtures for tests against the real broker and database: a fresh schema and fresh topics per test."""

import asyncpg
import pytest
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from events.migrations import migrate
from events.store import EventStore
from tests.kafka_helpers import login


@pytest.fixture
async def pool(infrastructure):
    pool = await asyncpg.create_pool(infrastructure.dsn, min_size=1, max_size=6)
    yield pool
    await pool.close()


@pytest.fixture
async def store(pool, unique):
    """An event store in a schema of its own, dropped afterwards."""
    schema = f"test_{unique}"
    await migrate(pool, schema)
    yield EventStore(pool, schema, producer="test")
    await pool.execute(f'DROP SCHEMA "{schema}" CASCADE')


@pytest.fixture
async def topic(infrastructure, unique):
    """A fresh topic with 3 partitions, deleted afterwards."""
    name = f"test.{unique}"
    admin = AIOKafkaAdminClient(bootstrap_servers=infrastructure.bootstrap, **login())
    await admin.start()
    await admin.create_topics([NewTopic(name, 3, 1)])
    yield name
    await admin.delete_topics([name])
    await admin.close()
