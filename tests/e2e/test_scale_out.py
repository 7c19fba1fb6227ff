"""Scale out: two instances of every service share the partitions of their consumer groups. Mid-stream
the first instance of every service is stopped (SIGTERM) and started again, twice, so partitions move
to the instances that keep running, back, away and back again, while inputs flow. The fills must be
exactly the rules' fills offline for the same file (each product's fills in the rules' order; across
products two matchers may commit in either order), every fill must reach settlement once, every fen
paid must reach a household, and the audit must be clean from PostgreSQL and from Kafka.

The second round matters for the matcher: an instance that keeps running holds the books of the
products it had in memory; when their partitions come back to it after the other instance wrote to
them, its cached stream versions are stale, and only the expected-version append (a ConcurrencyError,
then a fresh book from the journal) keeps it from deciding on an old book.
"""

import asyncio
import itertools
import json
import os
import random
import time
from pathlib import Path

import asyncpg
import pytest

from contracts.topics import EVENT_PARTITIONS
from events.access import AUDITOR
from events.settings import kafka_options, settings
from farmlink.operations import infra, processes
from farmlink.buyers import reports
from farmlink.audit.run import audit
from farmlink.operations.caughtup import wait_until_caught_up
from farmlink.cli import DEMO_SCENARIO
from farmlink.producers.offline import simulate
from farmlink.producers.publisher import publish_lines
from farmlink.producers.scenario import read_scenario
from matcher.output import fill_line
from tests.e2e.scenario_generator import generate

pytestmark = pytest.mark.e2e

INSTANCES = {service: 2 for service in processes.SERVICES}
EXPECTED_REJECTIONS = ("unknown cooperative", "already cancelled", "unknown buyer", "belongs to buyer", "unknown order")


@pytest.fixture
def scaled_system(infrastructure):
    """A clean system with two instances of every service."""
    processes.stop_all(say=lambda _: None)
    infra.reset_data(progress=lambda _: None)
    processes.start_all(say=lambda _: None, instances=INSTANCES)
    yield infrastructure
    processes.stop_all(say=lambda _: None)


def group_assignments(group: str) -> list[set[tuple[str, int]]]:
    """The partitions each member of a consumer group holds now (as the auditor, who may describe the groups).

    confluent-kafka's admin client: aiokafka 0.14 cannot decode Kafka 4's DescribeGroups answer."""
    from confluent_kafka.admin import AdminClient

    options = kafka_options(settings(), AUDITOR)
    config = {"bootstrap.servers": settings().bootstrap, "client.id": "farmlink-test-scale-out", "log_level": 3}
    if "security_protocol" in options:
        config["security.protocol"] = options["security_protocol"]
    if options.get("sasl_plain_username"):
        config |= {
            "sasl.mechanism": options["sasl_mechanism"],
            "sasl.username": options["sasl_plain_username"],
            "sasl.password": options["sasl_plain_password"],
        }
    admin = AdminClient(config)  # kept referenced until the answer came: a dropped client never answers
    description = admin.describe_consumer_groups([group])[group].result(timeout=15)
    return [{(tp.topic, tp.partition) for tp in member.assignment.topic_partitions} for member in description.members]


def wait_for_shared_group(group: str, members: int, timeout: float = 60.0) -> list[set[tuple[str, int]]]:
    """Wait until `members` members of the group each hold partitions (the group has settled on a new generation)."""
    deadline = time.monotonic() + timeout
    while True:
        assignments = group_assignments(group)
        if len(assignments) == members and all(assignments):
            return assignments
        if time.monotonic() > deadline:
            raise AssertionError(f"{group}: expected {members} members sharing the partitions, found {assignments}")
        time.sleep(0.5)


def stop_first_instances() -> None:
    processes.stop([processes.instance_name(service, 1) for service in processes.SERVICES], say=lambda _: None)


def start_first_instances() -> None:
    processes.start_all(say=lambda _: None, instances=INSTANCES)


# The generator's products all sit in partitions 3-5 of the event topics; a second generated scenario
# moved to products of partitions 0-2 keeps inputs flowing on both halves of the range assignment, so
# whichever half moves at a rebalance, the instance that kept running meets books it cached earlier.
OTHER_HALF = {"chili": "tea_tree_mushroom", "oil_tea_fruit": "tea_tree_mushroom", "live_pig": "eco_chicken"}


def partition_of(product: str) -> int:
    from aiokafka.partitioner import DefaultPartitioner

    partitions = list(range(EVENT_PARTITIONS))
    return DefaultPartitioner()(product.encode(), partitions, partitions)


def scenario(tmp_path: Path, seed: int) -> Path:
    """The Yanhe demo, then two generated scenarios (ids of their own) line by line, one on each half of the partitions."""
    first = generate(seed, lines=120, prefix="g-")
    second = [json.dumps(moved(json.loads(line))) for line in generate(seed + 1, lines=120, prefix="h-")]
    halves = {
        partition_of(json.loads(line)["payload"]["product"]) < EVENT_PARTITIONS // 2
        for line in first + second
        if "product" in json.loads(line)["payload"]
    }
    assert halves == {True, False}, "the scenario must put inputs on both halves of the partitions"
    mixed = [line for pair in itertools.zip_longest(first, second) for line in pair if line is not None]
    path = tmp_path / "scale-out.jsonl"
    path.write_text(DEMO_SCENARIO.read_text(encoding="utf-8").rstrip("\n") + "\n" + "\n".join(mixed) + "\n", encoding="utf-8")
    return path


def moved(line: dict) -> dict:
    payload = line["payload"]
    if payload.get("product") in OTHER_HALF:
        payload = {**payload, "product": OTHER_HALF[payload["product"]]}
    return {**line, "payload": payload}


async def fills_and_money(dsn: str) -> tuple[list[tuple[str, str]], int, int, int, int]:
    """(product, fill line) of every fill in the matching log's order; fills settled (rows, distinct); fen paid; fen credited."""
    conn = await asyncpg.connect(dsn)
    try:
        live = [
            (f["product"], json.dumps(reports.fill_output(f), ensure_ascii=False, separators=(",", ":")))
            for f in await reports.recorded_fills(conn)
        ]
        settled = await conn.fetchval("SELECT count(*) FROM settlement.fills")
        distinct_settled = await conn.fetchval("SELECT count(DISTINCT fill_id) FROM settlement.fills")
        paid = await conn.fetchval(
            "SELECT coalesce(sum((payload->>'amount_fen')::bigint), 0) FROM settlement.events WHERE event_type = 'PaymentMade'"
        )
        credited = await conn.fetchval("SELECT coalesce(sum(paid_fen), 0) FROM settlement.incomes")
        return live, settled, distinct_settled, paid, credited
    finally:
        await conn.close()


def by_product(fills: list[tuple[str, str]]) -> dict[str, list[str]]:
    """Each product's fills in order: the order the rules define. Across products, two matchers commit in either order."""
    grouped: dict[str, list[str]] = {}
    for product, line in fills:
        grouped.setdefault(product, []).append(line)
    return grouped


class PacedPublisher:
    """Publishes the file a chunk at a time, each chunk's effects caught up before the next (a delivery or
    payment may depend on a fill of an earlier chunk), so inputs keep flowing for as long as the
    rebalances take, whatever the publisher's own speed."""

    CHUNK = 24

    def __init__(self, system):
        self.system = system
        self.accepted = 0
        self.rejected: list[str] = []
        self.settled_at: list[float] = []

    def on_line(self, line, reason) -> None:
        self.settled_at.append(time.monotonic())

    async def publish(self, lines) -> None:
        for start in range(0, len(lines), self.CHUNK):
            summary = await publish_lines(self.system.bootstrap, lines[start : start + self.CHUNK], on_line=self.on_line)
            self.accepted += summary.accepted
            self.rejected += summary.rejected
            await wait_until_caught_up(self.system.bootstrap, self.system.dsn, timeout=120)

    def settled_between(self, began: float, ended: float) -> int:
        return sum(1 for at in self.settled_at if began <= at <= ended)


@pytest.mark.timeout(900)
async def test_two_instances_of_every_service_with_rebalances_mid_stream_give_the_offline_fills_and_a_clean_audit(
    scaled_system, tmp_path
):
    assert all(processes.running_count(service) == 2 for service in processes.SERVICES), processes.instances()
    for group in ("farmlink.matching", "farmlink.settlement.events"):
        await asyncio.to_thread(wait_for_shared_group, group, 2)

    seed = int(os.environ.get("FARMLINK_SCENARIO_SEED", random.SystemRandom().randrange(10**9)))
    print(f"scenario seed {seed} (FARMLINK_SCENARIO_SEED={seed} reproduces it)")
    lines = read_scenario(scenario(tmp_path, seed))
    # Five fifths of the file; while the 2nd..5th are published, the first instance of every service is
    # stopped, started, stopped again and started again (SIGTERM; start waits until each consumes).
    fifths = [lines[len(lines) * k // 5 : len(lines) * (k + 1) // 5] for k in range(5)]
    actions = [None, stop_first_instances, start_first_instances, stop_first_instances, start_first_instances]
    publisher = PacedPublisher(scaled_system)
    overlaps: list[tuple[str, float, int]] = []
    for part, action in zip(fifths, actions):
        if action is None:
            await publisher.publish(part)
            continue
        began = time.monotonic()
        acting = asyncio.create_task(asyncio.to_thread(action))
        await publisher.publish(part)
        await acting
        ended = time.monotonic()
        overlaps.append((action.__name__, round(ended - began, 1), publisher.settled_between(began, ended)))
    print(f"rebalances (action, seconds, lines settled meanwhile): {overlaps}")
    assert all(settled > 0 for _, _, settled in overlaps), f"a stop or start did not happen mid-stream: {overlaps}"
    assert all(processes.running_count(service) == 2 for service in processes.SERVICES), processes.instances()
    assert publisher.accepted + len(publisher.rejected) == len(lines)

    unexpected = [r for r in publisher.rejected if not any(reason in r for reason in EXPECTED_REJECTIONS)]
    assert not unexpected, unexpected
    await wait_until_caught_up(scaled_system.bootstrap, scaled_system.dsn)

    live, settled_fills, distinct_settled, paid, credited = await fills_and_money(scaled_system.dsn)
    expected = [(fill.product, fill_line(fill)) for fill in simulate(lines)]
    assert by_product(live) == by_product(expected), "the live fills differ from the rules' fills for the same file"
    assert sorted(live) == sorted(expected)
    assert len(live) >= 21, "the demo alone makes 21 fills"
    assert settled_fills == distinct_settled == len(live), "every fill reached settlement exactly once"
    assert paid == credited and paid > 0, "every fen paid reaches a household"

    from_store = await audit(scaled_system.bootstrap, scaled_system.dsn)
    from_kafka = await audit(scaled_system.bootstrap, scaled_system.dsn, source="kafka")
    assert from_store.findings == [], [str(f) for f in from_store.findings[:10]]
    assert from_kafka.findings == [], [str(f) for f in from_kafka.findings[:10]]
    assert from_store.reexecution.fill_count == len(live)
    assert from_store.state_hash == from_kafka.state_hash

    for group in ("farmlink.matching", "farmlink.settlement.events"):
        await asyncio.to_thread(wait_for_shared_group, group, 2)  # the restarted instances took their share again


def test_up_rejects_a_bad_instances_argument_naming_the_bad_part():
    from typer.testing import CliRunner

    from farmlink.cli import app

    for argument, named in (
        ("matchng=2", "unknown service 'matchng'"),
        ("matching=0", "at least 1"),
        ("matching=two", "'two' is not a whole number"),
        ("matching", "'matching' is not SERVICE=COUNT"),
        ("matching=2,,buyer=1", "an empty part"),
        ("matching=2,matching=3", "matching is named twice"),
    ):
        result = CliRunner().invoke(app, ["up", "--instances", argument])
        assert result.exit_code == 2, (argument, result.output)
        assert named in " ".join(result.output.split()), (argument, result.output)
