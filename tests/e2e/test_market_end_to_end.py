"""The whole market on real Kafka and PostgreSQL: what is published through the services
gives exactly the fills the rules give, offline, for the same file."""

import json
import os
import random
import uuid
from pathlib import Path

import asyncpg
import pytest
from aiokafka import AIOKafkaProducer

from contracts.topics import COOPERATIVE_INPUT, DEAD_LETTER
from events.access import AUDITOR, COOPERATIVE
from farmlink.buyers import reports
from farmlink.operations.caughtup import wait_until_caught_up
from farmlink.cli import DEMO_SCENARIO
from farmlink.producers.offline import simulate
from farmlink.producers.publisher import publish_lines
from farmlink.producers.scenario import read_scenario
from matcher.output import fill_line
from tests.e2e.scenario_generator import generate
from tests.kafka_helpers import login, read_topic

pytestmark = pytest.mark.e2e


async def live_fill_lines(dsn: str) -> list[str]:
    """Every fill as the contract's output line, each product's in the matcher's order.

    The matcher keeps one journal per product and one instance owns a product; how two products'
    fills interleave in the store is not part of the contract, so both sides are grouped by
    product (a stable sort keeps each product's order)."""
    conn = await asyncpg.connect(dsn)
    try:
        fills = sorted(await reports.recorded_fills(conn), key=lambda f: f["product"])
        return [json.dumps(reports.fill_output(f), ensure_ascii=False, separators=(",", ":")) for f in fills]
    finally:
        await conn.close()


def offline_fill_lines(lines) -> list[str]:
    """The fills the rules give for a file, grouped by product like `live_fill_lines`."""
    return [fill_line(fill) for fill in sorted(simulate(lines), key=lambda f: f.product)]


async def publish_and_compare(system, path: Path) -> tuple[list[str], object]:
    lines = read_scenario(path)
    summary = await publish_lines(system.bootstrap, lines)
    await wait_until_caught_up(system.bootstrap, system.dsn)
    live = await live_fill_lines(system.dsn)
    expected = offline_fill_lines(lines)
    assert live == expected, "the live fills differ from the rules' fills for the same file"
    return live, summary


async def test_the_demo_scenario_publishes_and_gives_the_fills_the_rules_give(clean_system):
    live, summary = await publish_and_compare(clean_system, DEMO_SCENARIO)
    assert summary.rejected == []
    bases = [json.loads(line)["price_basis"] for line in live]
    assert bases.count("floor") >= 1 and bases.count("market") >= 1 and bases.count("order_limit") >= 1
    conn = await asyncpg.connect(clean_system.dsn)
    try:
        paid = await conn.fetchval(
            "SELECT sum(amount_fen) FROM (SELECT (payload->>'amount_fen')::bigint AS amount_fen FROM settlement.events WHERE event_type = 'PaymentMade') p"
        )
        credited = await conn.fetchval("SELECT sum(paid_fen) FROM settlement.incomes")
        coverage = await reports.coverage(conn)
    finally:
        await conn.close()
    assert paid == credited, "every fen paid reaches a household"
    assert any(v["without_income"] > 0 for v in coverage["villages"]), "the demo shows a coverage gap"


async def test_a_scenario_no_test_has_seen_gives_the_fills_the_rules_give(clean_system, tmp_path):
    seed = int(os.environ.get("FARMLINK_SCENARIO_SEED", random.SystemRandom().randrange(10**9)))
    print(f"scenario seed {seed} (FARMLINK_SCENARIO_SEED={seed} reproduces it)")
    path = tmp_path / "generated.jsonl"
    path.write_text("\n".join(generate(seed, lines=120)) + "\n")
    live, summary = await publish_and_compare(clean_system, path)
    assert summary.rejected, "the generated scenario includes lines the services must reject"
    # "unknown order": a cancellation of an order that was itself rejected (an unregistered buyer's)
    expected_reasons = ("unknown cooperative", "already cancelled", "unknown buyer", "belongs to buyer", "unknown order")
    unexpected = [r for r in summary.rejected if not any(reason in r for reason in expected_reasons)]
    assert not unexpected, unexpected


async def test_a_poison_message_lands_on_the_dead_letter_topic_while_the_next_valid_one_is_processed(clean_system, tmp_path):
    poison = b"\xff\xfe poison " + uuid.uuid4().hex.encode()
    producer = AIOKafkaProducer(bootstrap_servers=clean_system.bootstrap, **login(COOPERATIVE))  # a cooperative sends garbage
    await producer.start()
    await producer.send_and_wait(COOPERATIVE_INPUT, poison, key=b"fengjia", headers=[("origin", b"test")])
    await producer.stop()
    path = tmp_path / "after.jsonl"
    path.write_text(
        json.dumps(
            {
                "type": "cooperative.registered",
                "payload": {
                    "cooperative_id": "fengjia",
                    "name": "Fengjia",
                    "county": "Yanhe",
                    "township": "Ketian",
                    "village": "Fengjia",
                    "households": [{"household_id": "fj-1", "registered_poor": True}],
                },
            }
        )
        + "\n"
    )
    summary = await publish_lines(clean_system.bootstrap, read_scenario(path))
    assert summary.accepted == 1
    records = await read_topic(clean_system.bootstrap, DEAD_LETTER, expected=1, partitions=1, principal=AUDITOR)
    [dead] = [r for r in records if r.value == poison]
    headers = dict(dead.headers)
    assert headers["origin"] == b"test"
    assert headers["dlq.topic"] == COOPERATIVE_INPUT.encode()
    assert b"UnicodeDecodeError" in headers["dlq.reason"]
