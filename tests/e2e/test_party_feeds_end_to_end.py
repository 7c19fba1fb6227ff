"""Each registered buyer and cooperative gets its records on a topic of its own, exactly once, even when the
feeds service is killed (SIGKILL) mid-stream and started again.

All the services run as processes on the real broker and database. The Yanhe demo and a generated scenario
are published in chunks; while the second and the fourth chunk are in flight the feeds service is killed
and, once that chunk is published, started again. At the end every party topic holds each of that party's
fills exactly once (the fills of the matcher's log, read from PostgreSQL), and the buyer with the most
fills reads its own with its own credentials, handed out once by `farmlink parties credentials`.
"""

import asyncio
import json
import os
import random
import signal
import tempfile
from collections import Counter
from pathlib import Path

import asyncpg
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.errors import KafkaConnectionError

from contracts.topics import party_topic
from events.access import ADMIN, party_credentials_file
from events.settings import settings
from farmlink.operations import processes
from farmlink.operations.caughtup import wait_until_caught_up
from farmlink.cli import DEMO_SCENARIO
from farmlink.producers.keyring import Keyring
from farmlink.operations.parties import take_credentials
from farmlink.producers.publisher import publish_lines
from farmlink.producers.scenario import parse_line, read_scenario
from tests.e2e.inputs import scenario_file
from tests.e2e.scenario_generator import generate
from tests.kafka_helpers import login

pytestmark = pytest.mark.e2e

CHUNKS = 5
KILLED_DURING = (1, 3)


def scenario_lines(seed: int) -> list:
    texts = DEMO_SCENARIO.read_text(encoding="utf-8").splitlines() + generate(seed, lines=150, prefix="pf-")
    return [parse_line(number, text) for number, text in enumerate(texts, 1) if text.strip()]


async def publish_killing_feeds(bootstrap: str, lines: list) -> int:
    """Publish the lines in chunks; SIGKILL the feeds service once a chunk of KILLED_DURING is under way
    (some of its lines settled), start it again after the chunk. Returns the lines accepted."""
    accepted = 0
    for index in range(CHUNKS):
        chunk = lines[len(lines) * index // CHUNKS : len(lines) * (index + 1) // CHUNKS]
        settled = asyncio.Event()
        seen: list[int] = []

        def on_line(line, reason, seen=seen, settled=settled) -> None:
            seen.append(1)
            if len(seen) >= 5:
                settled.set()

        publishing = asyncio.create_task(publish_lines(bootstrap, chunk, on_line=on_line))
        if index in KILLED_DURING:
            await asyncio.wait_for(settled.wait(), 120)
            pid = processes.running_pid("feeds")
            assert pid is not None, "the feeds service runs"
            os.kill(pid, signal.SIGKILL)
            await wait_for(dead, "the killed feeds service is gone", timeout=30)
        summary = await publishing
        accepted += summary.accepted
        if index in KILLED_DURING:
            await asyncio.to_thread(processes.start_instance, "feeds", 1, lambda _: None)
    return accepted


async def dead() -> bool:
    return processes.running_pid("feeds") is None


async def fills_by_party(dsn: str) -> dict[str, Counter]:
    """Each party topic's expected fill ids, from the matcher's log."""
    conn = await asyncpg.connect(dsn)
    try:
        rows = await conn.fetch("SELECT payload FROM matching.events WHERE event_type = 'FillMade'")
    finally:
        await conn.close()
    expected: dict[str, Counter] = {}
    for row in rows:
        fill = json.loads(row["payload"]) if isinstance(row["payload"], str) else row["payload"]
        for kind, party_id in (("buyer", fill["buyer_id"]), ("cooperative", fill["cooperative_id"])):
            expected.setdefault(party_topic(kind, party_id), Counter())[fill["fill_id"]] += 1
    return expected


async def fills_on(bootstrap: str, topic: str, options: dict) -> Counter:
    """The fill ids of every FillMade on a party topic, read committed from offset 0 to its end."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, enable_auto_commit=False, isolation_level="read_committed", **options
    )
    await consumer.start()
    try:
        partition = TopicPartition(topic, 0)
        consumer.assign([partition])
        await consumer.seek_to_beginning(partition)
        end = (await consumer.end_offsets([partition]))[partition]
        fills: Counter = Counter()
        while await consumer.position(partition) < end:
            for record in (await consumer.getmany(partition, timeout_ms=1000)).get(partition, []):
                envelope = json.loads(record.value)
                if envelope.get("event_type") == "FillMade":
                    fills[envelope["payload"]["fill_id"]] += 1
        return fills
    finally:
        await consumer.stop()


@pytest.mark.timeout(600)
async def test_every_partys_fills_arrive_once_on_its_own_topic_though_the_feeds_service_is_killed_mid_stream(
    clean_system,
):
    seed = int(os.environ.get("FARMLINK_SCENARIO_SEED", random.SystemRandom().randrange(10**9)))
    print(f"scenario seed {seed} (FARMLINK_SCENARIO_SEED={seed} reproduces it)")
    lines = scenario_lines(seed)
    accepted = await publish_killing_feeds(clean_system.bootstrap, lines)
    assert accepted > len(lines) // 2
    await wait_until_caught_up(clean_system.bootstrap, clean_system.dsn, timeout=120)

    expected = await fills_by_party(clean_system.dsn)
    assert sum(sum(c.values()) for c in expected.values()) >= 2 * 21, "the demo alone makes 21 fills"
    for topic, fills in sorted(expected.items()):
        assert await fills_on(clean_system.bootstrap, topic, login(ADMIN)) == fills, topic

    busiest = max((t for t in expected if ".party.buyer." in t), key=lambda t: (sum(expected[t].values()), t))
    buyer_id = next(
        line.payload["buyer_id"]
        for line in lines
        if getattr(line, "type", "") == "buyer.registered" and party_topic("buyer", line.payload["buyer_id"]) == busiest
    )
    credentials = take_credentials("buyer", buyer_id)
    own = {
        "security_protocol": "SASL_PLAINTEXT",
        "sasl_mechanism": credentials["mechanism"],
        "sasl_plain_username": credentials["principal"],
        "sasl_plain_password": credentials["password"],
    }
    assert credentials["topic"] == busiest
    assert await fills_on(clean_system.bootstrap, busiest, own) == expected[busiest]


async def wait_for(condition, what: str, timeout: float = 60.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not await condition():
        assert loop.time() < deadline, f"{what} within {timeout:.0f} s"
        await asyncio.sleep(0.5)


async def logs_in(bootstrap: str, options: dict) -> bool:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, request_timeout_ms=5000, **options)
    try:
        await producer.start()
        return True
    except KafkaConnectionError:
        return False
    finally:
        await producer.stop()


@pytest.mark.timeout(300)
async def test_a_buyer_that_registers_gets_a_principal_of_its_own_and_loses_it_when_it_revokes_its_key(clean_system, tmp_path):
    keyring = Keyring(Path(tempfile.mkdtemp(prefix="farmlink-party-feeds-")))
    registered = scenario_file(
        tmp_path / "registered.jsonl", ("buyer.registered", {"buyer_id": "yuping-mart", "name": "Yuping mart"})
    )
    assert (await publish_lines(clean_system.bootstrap, read_scenario(registered), keyring=keyring)).accepted == 1
    waiting = party_credentials_file(settings().home, "buyer", "yuping-mart")

    async def handed_over() -> bool:
        return waiting.exists()

    await wait_for(handed_over, "the feeds service leaves the new buyer's credentials")
    assert waiting.stat().st_mode & 0o777 == 0o600
    credentials = take_credentials("buyer", "yuping-mart")
    own = {
        "security_protocol": "SASL_PLAINTEXT",
        "sasl_mechanism": credentials["mechanism"],
        "sasl_plain_username": credentials["principal"],
        "sasl_plain_password": credentials["password"],
    }
    assert await logs_in(clean_system.bootstrap, own)

    revoked = scenario_file(
        tmp_path / "revoked.jsonl", ("buyer.key_revoked", {"party_id": "yuping-mart", "reason": "the purchasing PC was stolen"})
    )
    assert (await publish_lines(clean_system.bootstrap, read_scenario(revoked), keyring=keyring)).accepted == 1

    async def refused() -> bool:
        return not await logs_in(clean_system.bootstrap, own)

    await wait_for(refused, "the revoked buyer's login is refused")
