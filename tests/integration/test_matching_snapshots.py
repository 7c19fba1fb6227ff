"""The matching service on the real PostgreSQL: it writes a snapshot of a book every N journal entries
in the batch's transaction, a restarted instance (books cleared) resumes from the latest snapshot and
the journal after it, and decides exactly what an instance that never restarted decides. The audit
finds the snapshots agree with its re-execution, and names one that was tampered with."""

import random
import uuid
from datetime import date, datetime, timedelta, timezone

import asyncpg
import pytest
from faststream.kafka import TestKafkaBroker

from contracts.topics import BUYER_EVENTS, COOPERATIVE_EVENTS, MARKET_EVENTS
from events.hashchain import canonical_json
from farmlink.audit.run import audit
from services.matching import app as matching
from services.matching import snapshots

pytestmark = pytest.mark.integration

EVERY = 7
START = date(2020, 8, 1)


def event(event_type: str, payload: dict, stream_id: str) -> bytes:
    return canonical_json(
        {
            "event_id": str(uuid.uuid4()),
            "event_type": event_type,
            "schema_version": 1,
            "stream_id": stream_id,
            "stream_version": 1,
            "occurred_at": datetime(2020, 8, 1, tzinfo=timezone.utc).isoformat(),
            "producer": "service:test",
            "correlation_id": "c",
            "causation_id": None,
            "payload": payload,
        }
    ).encode()


def inputs(count: int, seed: int = 7) -> list[tuple[str, bytes]]:
    """A chili journal of lots, orders, cancellations, commitments and prices: (topic, event bytes)."""
    rng = random.Random(seed)
    day = lambda: (START + timedelta(days=rng.randint(0, 20))).isoformat()  # noqa: E731
    orders: list[str] = []
    made: list[tuple[str, bytes]] = []
    for n in range(count):
        kind = rng.choice(["lot", "lot", "lot", "order", "order", "price", "commitment", "cancel"])
        if kind == "lot":
            start = START + timedelta(days=rng.randint(0, 20))
            parts = [
                (f"h{h}", f"{rng.randint(10, 400)}.{rng.randint(0, 999):03d}", rng.random() < 0.4)
                for h in range(rng.randint(1, 3))
            ]
            total = sum(int(q.replace(".", "")) for _, q, _ in parts)
            payload = {
                "lot_id": f"L{n}",
                "cooperative_id": "fengjia",
                "county": "Yanhe",
                "township": rng.choice(["Ketian", "Tangba"]),
                "village": "Fengjia",
                "product": "chili",
                "grade": rng.choice("ABC"),
                "quantity": f"{total // 1000}.{total % 1000:03d}",
                "available_from": start.isoformat(),
                "expires_on": (start + timedelta(days=rng.randint(2, 15))).isoformat(),
                "contributions": [{"household_id": h, "quantity": q, "registered_poor": p} for h, q, p in parts],
            }
            made.append((COOPERATIVE_EVENTS, event("HarvestRecorded", payload, f"lot-L{n}")))
        elif kind == "order":
            start = START + timedelta(days=rng.randint(0, 20))
            orders.append(f"O{n}")
            payload = {
                "order_id": f"O{n}",
                "buyer_id": "tongren-mart",
                "product": "chili",
                "min_grade": rng.choice("ABC"),
                "quantity": str(rng.randint(20, 900)),
                "limit_price_fen": rng.randint(30, 120) * 10,
                "deliver_from": start.isoformat(),
                "deliver_to": (start + timedelta(days=rng.randint(3, 20))).isoformat(),
                "regions": rng.choice([[], ["Yanhe"], ["Tangba"]]),
            }
            made.append((BUYER_EVENTS, event("OrderPlaced", payload, f"order-O{n}")))
        elif kind == "cancel" and orders:
            order_id = orders.pop(rng.randrange(len(orders)))
            made.append(
                (
                    BUYER_EVENTS,
                    event(
                        "OrderCancelled",
                        {"order_id": order_id, "buyer_id": "tongren-mart", "product": "chili"},
                        f"order-{order_id}",
                    ),
                )
            )
        elif kind == "commitment":
            start = START + timedelta(days=rng.randint(0, 10))
            payload = {
                "commitment_id": f"C{n}",
                "buyer_id": "yuping",
                "product": "chili",
                "min_grade": "B",
                "floor_price_fen": rng.randint(30, 80) * 10,
                "reference_market": "Tongren",
                "valid_from": start.isoformat(),
                "valid_to": (start + timedelta(days=30)).isoformat(),
                "eligible_counties": [],
                "eligible_cooperatives": [],
                "cap_quantity": str(rng.randint(100, 2000)),
                "max_quantity_per_mu": None,
            }
            made.append((BUYER_EVENTS, event("CommitmentMade", payload, f"commitment-C{n}")))
        else:
            payload = {
                "product": "chili",
                "grade": rng.choice("ABC"),
                "market": "Tongren",
                "price_fen": rng.randint(40, 110) * 10,
                "observed_on": day(),
            }
            made.append((MARKET_EVENTS, event("MarketPriceObserved", payload, "market-price-chili")))
    return made


async def run(infrastructure, prefix: str, stream: list[tuple[str, bytes]], restart_after: tuple[int, ...] = ()):
    """The matching service on schema <prefix>matching: publish the inputs, clearing its books (a restart) after
    the given numbers of inputs. Returns the product's stream: (type, id, payload) per event, and the restores."""
    runtime = matching.runtime
    runtime.schema = f"{prefix}matching"
    matching.books.clear()
    await runtime.open(with_relay=False)
    try:
        async with TestKafkaBroker(runtime.broker) as broker:
            for number, (topic, value) in enumerate(stream, start=1):
                await broker.publish(value, topic, key=b"chili")
                if number in restart_after:
                    matching.books.clear()
        events = await runtime.store.read_stream("market-chili")
        return [(e.event_type, str(e.event_id), e.payload) for e in events]
    finally:
        matching.books.clear()
        await runtime.close()
        runtime.schema = runtime.name
        runtime.pool = runtime.store = None


@pytest.fixture
async def owner(infrastructure):
    conn = await asyncpg.connect(infrastructure.dsn)
    prefixes: list[str] = []
    yield conn, prefixes
    for prefix in prefixes:
        await conn.execute(f'DROP SCHEMA IF EXISTS "{prefix}matching" CASCADE')
    await conn.close()


async def test_a_restarted_matching_service_resumes_from_its_snapshot_and_decides_exactly_the_same(
    infrastructure, owner, monkeypatch, unique
):
    conn, prefixes = owner
    stream = inputs(60)
    with_snapshots, without = f"s{unique}_", f"n{unique}_"
    prefixes += [with_snapshots, without]

    restores: list[int | None] = []
    latest = snapshots.latest

    async def watched(*args):
        found = await latest(*args)
        restores.append(None if found is None else found.journal_seq)
        return found

    monkeypatch.setattr(snapshots, "latest", watched)
    monkeypatch.setattr(snapshots, "SNAPSHOT_EVERY", 0)
    reference = await run(infrastructure, without, stream)
    assert restores == [None]  # no snapshot, the journal from its start
    assert await conn.fetchval(f'SELECT count(*) FROM "{without}matching".snapshots') == 0

    restores.clear()
    monkeypatch.setattr(snapshots, "SNAPSHOT_EVERY", EVERY)
    restarted = await run(infrastructure, with_snapshots, stream, restart_after=(30, 45))
    journaled = sum(1 for kind, _, _ in reference if kind == "InputJournaled")
    assert journaled == len(stream)
    assert restarted == reference, "every journal entry, fill and offer event identical, ids included"
    # Two restarts: after 30 inputs the latest snapshot was taken after entry 28; after 45, after entry 42.
    assert restores == [None, 28, 42]
    rows = await conn.fetch(
        f'SELECT product, journal_seq, stream_version FROM "{with_snapshots}matching".snapshots ORDER BY journal_seq'
    )
    assert [row["journal_seq"] for row in rows] == list(range(EVERY, journaled + 1, EVERY))
    assert any(kind == "FillMade" for kind, _, _ in reference)

    result = await audit(
        infrastructure.bootstrap, infrastructure.auditor_dsn, reconcile_kafka=False, schema_prefix=with_snapshots
    )
    assert [f for f in result.findings if f.check in ("snapshot", "re_execution", "hash_chain")] == []

    # A snapshot overwritten with an earlier one's state and digest is found, by product and journal_seq.
    await conn.execute(
        f'UPDATE "{with_snapshots}matching".snapshots AS s SET state = e.state, digest = e.digest '
        f'FROM "{with_snapshots}matching".snapshots AS e WHERE s.journal_seq = 35 AND e.journal_seq = 28'
    )
    result = await audit(
        infrastructure.bootstrap, infrastructure.auditor_dsn, reconcile_kafka=False, schema_prefix=with_snapshots
    )
    [finding] = [f for f in result.findings if f.check == "snapshot"]
    assert "product chili, journal_seq 35" in finding.where and "disagrees with the re-executed book" in finding.message
    assert "journal_seq (stored 28, re-executed 35)" in finding.message
