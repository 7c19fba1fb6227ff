"""The local broker refuses whatever events/access.py does not allow: every principal against
every topic, produce and consume, allowed and denied, plus consumer groups, logins that
must fail, and an auditor that writes nowhere.

The walk writes probe records to partition 0 of the real farmlink topics and commits offsets
in the real consumer groups, so the services are stopped first and the topics are deleted
and created again afterwards (as the e2e tests do before they run).
"""

import asyncio
import logging

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.errors import GroupAuthorizationFailedError, KafkaConnectionError, TopicAuthorizationFailedError

from events.access import (
    ADMIN,
    ALL_TOPICS,
    AUDITOR,
    BUYER_GROUP_PREFIX,
    BY_NAME,
    CONSUMER_GROUPS,
    PRINCIPALS,
    may_read,
    may_write,
)
from events.settings import kafka_options
from farmlink import infra, processes
from tests.kafka_helpers import login

pytestmark = pytest.mark.integration

PROBE = b"farmlink ACL probe"
PROBE_KEY = b"probe"  # a compacted topic (the relay checkpoints) takes keyed records only
TIMEOUT_S = 10.0


@pytest.fixture(scope="module")
async def secured(infrastructure):
    """The local SASL broker with a probe on partition 0 of every farmlink topic; topics renewed afterwards."""
    if infrastructure.uses_external_kafka:
        pytest.skip("external Kafka: its users and ACLs are not the ones the local launcher set up")
    processes.stop_all(say=lambda _: None)  # no service may consume the probes
    producer = AIOKafkaProducer(bootstrap_servers=infrastructure.bootstrap, **login(ADMIN))
    await producer.start()
    try:
        await asyncio.gather(*(producer.send_and_wait(topic, PROBE, key=PROBE_KEY, partition=0) for topic in ALL_TOPICS))
    finally:
        await producer.stop()
    yield infrastructure
    await infra.reset_topics(infrastructure.bootstrap)  # the probes and the offsets committed here go with them


async def _writes(bootstrap: str, principal: str, topic: str) -> bool:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, request_timeout_ms=int(TIMEOUT_S * 1000), **login(principal))
    await producer.start()
    try:
        await producer.send_and_wait(topic, PROBE, key=PROBE_KEY, partition=0)
        return True
    except TopicAuthorizationFailedError:
        return False
    finally:
        await producer.stop()


async def _reads(bootstrap: str, principal: str, topic: str) -> bool:
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        request_timeout_ms=int(TIMEOUT_S * 1000),
        **login(principal),
    )
    await consumer.start()
    partition = TopicPartition(topic, 0)
    try:
        if topic not in await consumer.topics():
            return False  # not even DESCRIBE: Kafka leaves the topic out of this client's metadata
        consumer.assign([partition])
        loop = asyncio.get_running_loop()
        deadline = loop.time() + TIMEOUT_S
        while loop.time() < deadline:
            if (await consumer.getmany(partition, timeout_ms=500)).get(partition):
                return True
        raise AssertionError(f"{principal} was neither refused nor given the probe on {topic} in {TIMEOUT_S:.0f} s")
    except TopicAuthorizationFailedError:
        return False
    finally:
        await consumer.stop()


async def _commits(bootstrap: str, principal: str, group: str) -> bool:
    """Whether `principal` may commit an offset in `group` (on a topic it may read, so only the group decides)."""
    partition = TopicPartition(BY_NAME[principal].read[0], 0)
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap,
        group_id=group,
        enable_auto_commit=False,
        request_timeout_ms=int(TIMEOUT_S * 1000),
        **login(principal),
    )
    await consumer.start()
    try:
        consumer.assign([partition])
        await consumer.commit({partition: 0})
        return True
    except GroupAuthorizationFailedError:
        return False
    finally:
        await consumer.stop()


def _mismatches(kind: str, principal: str, got: dict[str, bool], allowed) -> list[str]:
    return [
        f"{principal} {'may' if ok else 'may not'} {kind} {name}, the matrix says the opposite"
        for name, ok in got.items()
        if ok != allowed(principal, name)
    ]


@pytest.mark.parametrize("principal", [p.name for p in PRINCIPALS])
async def test_a_principal_writes_and_reads_exactly_the_topics_the_matrix_allows(secured, principal):
    bootstrap = secured.bootstrap
    writes = await asyncio.gather(*(_writes(bootstrap, principal, topic) for topic in ALL_TOPICS))
    reads = await asyncio.gather(*(_reads(bootstrap, principal, topic) for topic in ALL_TOPICS))
    problems = _mismatches("write", principal, dict(zip(ALL_TOPICS, writes)), may_write) + _mismatches(
        "read", principal, dict(zip(ALL_TOPICS, reads)), may_read
    )
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("principal", [p.name for p in PRINCIPALS])
async def test_only_a_service_commits_offsets_and_only_in_its_own_consumer_groups(secured, principal):
    commits = await asyncio.gather(*(_commits(secured.bootstrap, principal, group) for group in CONSUMER_GROUPS))
    got = dict(zip(CONSUMER_GROUPS, commits))
    assert got == {group: group in BY_NAME[principal].groups for group in CONSUMER_GROUPS}


async def test_a_buyer_system_may_use_consumer_groups_named_buyer_dot_anything_and_no_other(secured):
    assert await _commits(secured.bootstrap, "buyer", f"{BUYER_GROUP_PREFIX}yuping-offers")
    assert not await _commits(secured.bootstrap, "buyer", "yuping-offers")
    assert not await _commits(secured.bootstrap, "cooperative", f"{BUYER_GROUP_PREFIX}yuping-offers")


async def test_the_auditor_cannot_write_to_any_topic(secured):
    writes = await asyncio.gather(*(_writes(secured.bootstrap, AUDITOR, topic) for topic in ALL_TOPICS))
    assert not any(writes), [topic for topic, ok in zip(ALL_TOPICS, writes) if ok]


async def test_the_auditor_sees_the_services_committed_offsets_without_joining_their_groups(secured):
    for group in CONSUMER_GROUPS:
        consumer = AIOKafkaConsumer(
            bootstrap_servers=secured.bootstrap, group_id=group, enable_auto_commit=False, **login(AUDITOR)
        )
        await consumer.start()
        try:
            await consumer.committed(TopicPartition(ALL_TOPICS[0], 0))  # OffsetFetch: DESCRIBE on the group
        finally:
            await consumer.stop()


async def test_a_producer_principal_cannot_even_look_at_a_services_consumer_group(secured):
    consumer = AIOKafkaConsumer(
        bootstrap_servers=secured.bootstrap, group_id="farmlink.matching", enable_auto_commit=False, **login("cooperative")
    )
    await consumer.start()
    try:
        with pytest.raises(GroupAuthorizationFailedError):
            await consumer.committed(TopicPartition(ALL_TOPICS[0], 0))
    finally:
        await consumer.stop()


async def test_an_unauthenticated_client_is_refused(secured):
    producer = AIOKafkaProducer(bootstrap_servers=secured.bootstrap, request_timeout_ms=5000)  # PLAINTEXT, no login
    with pytest.raises(KafkaConnectionError):
        await producer.start()
    await producer.stop()


async def test_a_wrong_password_is_refused_as_an_authentication_failure(secured, caplog):
    options = kafka_options(secured, "buyer") | {"sasl_plain_password": "not-the-password"}
    producer = AIOKafkaProducer(bootstrap_servers=secured.bootstrap, request_timeout_ms=5000, **options)
    with caplog.at_level(logging.ERROR, logger="aiokafka"), pytest.raises(KafkaConnectionError):
        await producer.start()
    await producer.stop()
    assert "SaslAuthenticationFailed" in caplog.text


async def test_a_user_that_does_not_exist_is_refused(secured):
    options = kafka_options(secured, "buyer") | {"sasl_plain_username": "mallory"}
    producer = AIOKafkaProducer(bootstrap_servers=secured.bootstrap, request_timeout_ms=5000, **options)
    with pytest.raises(KafkaConnectionError):
        await producer.start()
    await producer.stop()
