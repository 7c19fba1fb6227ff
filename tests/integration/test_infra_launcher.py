"""The local infrastructure launcher against the real broker and server it starts.

`ensure_up()` starts Kafka and PostgreSQL in FARMLINK_HOME (or uses KAFKA_BOOTSTRAP_SERVERS /
DATABASE_URL when set) and leaves them running for the tests that follow. Nothing here stops them
or wipes farmlink data: the reset helpers are exercised on a dedicated topic and schema only.
"""

import asyncio
import time
import uuid

import asyncpg
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

from contracts.topics import RECEIPTS, TOPICS, Topic
from events.settings import settings
from tests.kafka_helpers import login
from farmlink.operations import infra

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def infra_up() -> float:
    """Bring the infrastructure up once for this module; return how long it took."""
    started = time.monotonic()
    infra.ensure_up()
    return time.monotonic() - started


@pytest.fixture
async def admin(infra_up):
    client = AIOKafkaAdminClient(bootstrap_servers=settings().bootstrap, **login())
    await client.start()
    yield client
    await client.close()


async def _topic_configs(admin: AIOKafkaAdminClient, names: list[str]) -> dict[str, dict[str, str]]:
    responses = await admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, n) for n in names])
    configs = {}
    for response in responses:
        for error_code, _msg, _type, name, entries in response.resources:
            assert error_code == 0, name
            configs[name] = {entry[0]: entry[1] for entry in entries}
    return configs


def test_status_reports_both_parts_up(infra_up):
    st = infra.status()
    assert st.ok
    assert st.kafka_running, st.kafka_error
    assert st.postgres_reachable, st.postgres_error
    assert st.cluster_id
    assert st.bootstrap == settings().bootstrap
    assert not st.missing_topics
    assert "farmlink-dev-only" not in st.dsn_display
    if not st.kafka_external:
        assert st.kafka_version and st.kafka_version.startswith("4."), st.kafka_version
        assert st.kafka_pid
    if not st.postgres_external:
        assert st.postgres_version and "PostgreSQL 15" in st.postgres_version


async def test_every_topic_exists_with_its_partitions(admin):
    described = {t["topic"]: t for t in await admin.describe_topics([t.name for t in TOPICS])}
    for topic in TOPICS:
        assert described[topic.name]["error_code"] == 0, topic.name
        assert len(described[topic.name]["partitions"]) == topic.partitions, topic.name


async def test_topic_retention(admin):
    configs = await _topic_configs(admin, [t.name for t in TOPICS])
    for topic in TOPICS:
        got = configs[topic.name]
        assert got["min.insync.replicas"] == "1", topic.name
        if topic.keep_forever:
            assert (got["retention.ms"], got["retention.bytes"]) == ("-1", "-1"), topic.name
    assert configs[RECEIPTS]["retention.ms"] == str(7 * 24 * 60 * 60 * 1000)


async def test_auto_topic_creation_is_off(infra_up):
    if settings().uses_external_kafka:
        pytest.skip("external Kafka: its configuration is not ours")
    client = AIOKafkaAdminClient(bootstrap_servers=settings().bootstrap, **login())
    await client.start()
    try:
        brokers = (await client.describe_cluster())["brokers"]
        [response] = await client.describe_configs(
            [ConfigResource(ConfigResourceType.BROKER, str(brokers[0]["node_id"]), {"auto.create.topics.enable": None})]
        )
    finally:
        await client.close()
    entries = {entry[0]: entry[1] for entry in response.resources[0][4]}
    assert entries["auto.create.topics.enable"] == "false"


async def test_database_role_and_durability(infra_up):
    conn = await asyncpg.connect(settings().dsn)
    try:
        assert await conn.fetchval("SELECT current_user") == "farmlink"
        owner = await conn.fetchval("SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = current_database()")
        assert owner == "farmlink"
        if not settings().uses_external_database:
            assert await conn.fetchval("SELECT rolcreaterole FROM pg_roles WHERE rolname = 'farmlink'")
            assert await conn.fetchval("SHOW fsync") == "on"
            assert await conn.fetchval("SHOW synchronous_commit") == "on"
    finally:
        await conn.close()


def test_second_ensure_up_is_quick_and_harmless(infra_up):
    before = infra.status()
    started = time.monotonic()
    infra.ensure_up()
    elapsed = time.monotonic() - started
    after = infra.status()
    assert elapsed < 10, f"second ensure_up took {elapsed:.1f} s"
    assert after.ok
    assert (after.cluster_id, after.kafka_pid) == (before.cluster_id, before.kafka_pid)


async def test_reset_topics_empties_a_dedicated_topic(infra_up):
    bootstrap = settings().bootstrap
    topic = Topic(f"farmlink.test.infra-reset.{uuid.uuid4().hex[:8]}", 2, True, "launcher test only")
    assert await infra.create_topics(bootstrap, [topic]) == [topic.name]
    assert await infra.create_topics(bootstrap, [topic]) == []  # idempotent
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, enable_idempotence=True, **login())
    await producer.start()
    try:
        await producer.send_and_wait(topic.name, b"before reset", partition=1)
    finally:
        await producer.stop()
    await infra.reset_topics(bootstrap, [topic])
    partitions = [TopicPartition(topic.name, p) for p in range(topic.partitions)]
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, **login())
    await consumer.start()
    try:
        assert set((await consumer.end_offsets(partitions)).values()) == {0}
    finally:
        await consumer.stop()
    client = AIOKafkaAdminClient(bootstrap_servers=bootstrap, **login())
    await client.start()
    try:
        assert (await _topic_configs(client, [topic.name]))[topic.name]["retention.ms"] == "-1"
        await client.delete_topics([topic.name])
        for _ in range(40):  # leave no test topic behind for the tests that follow
            if topic.name not in await client.list_topics():
                break
            await asyncio.sleep(0.25)
    finally:
        await client.close()


async def test_drop_schemas_on_a_dedicated_schema(infra_up):
    schema = f"infra_reset_probe_{uuid.uuid4().hex[:8]}"
    conn = await asyncpg.connect(settings().dsn)
    try:
        await conn.execute(f'CREATE SCHEMA "{schema}"; CREATE TABLE "{schema}".t (x int)')
        assert await infra.drop_schemas(conn, only=[schema, "public"]) == [schema]  # public is never dropped
        assert not await conn.fetchval("SELECT 1 FROM pg_namespace WHERE nspname = $1", schema)
        assert await conn.fetchval("SELECT 1 FROM pg_namespace WHERE nspname = 'public'")
    finally:
        await conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        await conn.close()
