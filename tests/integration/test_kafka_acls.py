"""The local broker refuses whatever events/access.py does not allow: every principal against
every topic, produce and consume, allowed and denied, plus consumer groups, logins that
must fail, and an auditor that writes nowhere.

The walk writes probe records to partition 0 of the real farmlink topics and commits offsets
in the real consumer groups, so the services are stopped first and the topics are deleted
and created again afterwards (as the e2e tests do before they run).
"""

import asyncio
import logging
import uuid
from dataclasses import dataclass

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
from contracts.topics import BUYER_INPUT, COOPERATIVE_INPUT, FILLS, OFFERS, RECEIPTS, party_name, party_topic
from events.settings import kafka_options, settings
from farmlink.operations import infra, processes
from farmlink.operations.parties import PartyError, take_credentials
from services.feeds.registrar import Registrar
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
    partition = TopicPartition((BY_NAME[principal].read or ALL_TOPICS)[0], 0)  # the registrar reads nothing
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


# -- per-party topics (issue 12 part 2): each buyer and cooperative reads only its own ---------------------


@dataclass(frozen=True)
class Party:
    kind: str
    party_id: str
    login: dict

    @property
    def topic(self) -> str:
        return party_topic(self.kind, self.party_id)


@pytest.fixture(scope="module")
async def parties(secured):
    """Buyers A and B and cooperatives A and B registered by the feeds service's registrar (as party-registrar),
    their credentials taken once as `farmlink parties credentials` does, a probe on each one's topic."""
    registrar = Registrar(settings())
    run = uuid.uuid4().hex[:8]
    made = {}
    for kind, who in (("buyer", "A"), ("buyer", "B"), ("cooperative", "A"), ("cooperative", "B")):
        party_id = f"acl-{kind}-{who}-{run}"
        assert await asyncio.to_thread(registrar.register, kind, party_id), "a new party gets a new user"
        credentials = take_credentials(kind, party_id)
        login_options = {
            "security_protocol": "SASL_PLAINTEXT",
            "sasl_mechanism": credentials["mechanism"],
            "sasl_plain_username": credentials["principal"],
            "sasl_plain_password": credentials["password"],
        }
        made[(kind, who)] = Party(kind, party_id, login_options)
    producer = AIOKafkaProducer(bootstrap_servers=secured.bootstrap, **login(ADMIN))
    await producer.start()
    try:
        await asyncio.gather(*(producer.send_and_wait(p.topic, PROBE, key=PROBE_KEY) for p in made.values()))
    finally:
        await producer.stop()
    yield made
    for party in made.values():
        await asyncio.to_thread(registrar.revoke, party.kind, party.party_id)


async def _party_reads(bootstrap: str, party: Party, topic: str) -> bool:
    """True when the party's principal subscribes to `topic` and gets a record of it; False when the broker
    answers TopicAuthorizationFailed (aiokafka raises it from start(), waiting for the topic's metadata)."""
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        isolation_level="read_committed",
        request_timeout_ms=int(TIMEOUT_S * 1000),
        **party.login,
    )
    try:
        await consumer.start()
        records = await asyncio.wait_for(consumer.getone(), TIMEOUT_S)
        return records.topic == topic
    except TopicAuthorizationFailedError:
        return False
    finally:
        await consumer.stop()


async def test_a_buyer_reads_its_own_topic_and_is_refused_on_another_buyers_and_on_all_the_fills(secured, parties):
    a, b = parties[("buyer", "A")], parties[("buyer", "B")]
    assert await _party_reads(secured.bootstrap, a, a.topic)
    assert not await _party_reads(secured.bootstrap, a, b.topic)
    assert not await _party_reads(secured.bootstrap, a, FILLS)
    assert not await _party_reads(secured.bootstrap, a, parties[("cooperative", "A")].topic)


async def test_a_cooperative_cannot_read_another_cooperatives_topic_nor_all_the_receipts(secured, parties):
    a, b = parties[("cooperative", "A")], parties[("cooperative", "B")]
    assert await _party_reads(secured.bootstrap, a, a.topic)
    assert not await _party_reads(secured.bootstrap, a, b.topic)
    assert not await _party_reads(secured.bootstrap, a, RECEIPTS)


async def test_offers_stay_readable_by_a_buyer_and_the_shared_buyer_principal_reads_no_fills(secured, parties):
    assert await _party_reads(secured.bootstrap, parties[("buyer", "B")], OFFERS)
    assert await _reads(secured.bootstrap, "buyer", OFFERS)
    assert not await _reads(secured.bootstrap, "buyer", FILLS)


async def test_a_party_writes_its_kinds_input_topic_and_not_even_its_own_party_topic(secured, parties):
    buyer, cooperative = parties[("buyer", "A")], parties[("cooperative", "A")]

    async def writes(party: Party, topic: str) -> bool:
        producer = AIOKafkaProducer(bootstrap_servers=secured.bootstrap, request_timeout_ms=int(TIMEOUT_S * 1000), **party.login)
        await producer.start()
        try:
            await producer.send_and_wait(topic, PROBE, key=PROBE_KEY, partition=0)
            return True
        except TopicAuthorizationFailedError:
            return False
        finally:
            await producer.stop()

    assert await writes(buyer, BUYER_INPUT) and await writes(cooperative, COOPERATIVE_INPUT)
    assert not await writes(buyer, COOPERATIVE_INPUT)
    assert not await writes(buyer, buyer.topic), "only the feeds service writes party topics"


async def test_a_party_commits_offsets_only_in_consumer_groups_under_its_own_prefix(secured, parties):
    a, b = parties[("buyer", "A")], parties[("buyer", "B")]

    async def commits(party: Party, group: str) -> bool:
        consumer = AIOKafkaConsumer(bootstrap_servers=secured.bootstrap, group_id=group, enable_auto_commit=False, **party.login)
        await consumer.start()
        try:
            consumer.assign([TopicPartition(party.topic, 0)])
            await consumer.commit({TopicPartition(party.topic, 0): 0})
            return True
        except GroupAuthorizationFailedError:
            return False
        finally:
            await consumer.stop()

    assert await commits(a, f"{party_name('buyer', a.party_id)}.fills")
    assert not await commits(a, f"{party_name('buyer', b.party_id)}.fills")
    assert not await commits(a, "farmlink.matching")


async def test_credentials_are_handed_out_once_and_a_revoked_party_can_no_longer_log_in(secured, parties):
    registrar = Registrar(settings())
    party_id = f"acl-revoked-{uuid.uuid4().hex[:8]}"
    await asyncio.to_thread(registrar.register, "buyer", party_id)
    credentials = take_credentials("buyer", party_id)
    with pytest.raises(PartyError, match="handed out already"):
        take_credentials("buyer", party_id)
    assert not await asyncio.to_thread(registrar.register, "buyer", party_id), "registering again keeps the user"
    revoked = Party(
        "buyer",
        party_id,
        parties[("buyer", "A")].login
        | {"sasl_plain_username": credentials["principal"], "sasl_plain_password": credentials["password"]},
    )
    assert await _party_reads(secured.bootstrap, revoked, OFFERS), "before revocation it logs in and reads"
    await asyncio.to_thread(registrar.revoke, "buyer", party_id)
    producer = AIOKafkaProducer(bootstrap_servers=secured.bootstrap, request_timeout_ms=5000, **revoked.login)
    with pytest.raises(KafkaConnectionError):
        await producer.start()
    await producer.stop()
