"""The buyer, matching and settlement services, each on FastStream's in-memory TestKafkaBroker
with its real PostgreSQL schema: handlers decode, load, decide, append."""

import json
import tempfile
import uuid
from pathlib import Path
from datetime import datetime, timezone

import asyncpg
import pytest
from faststream.kafka import TestKafkaBroker

from contracts.topics import BUYER_EVENTS, BUYER_INPUT, COOPERATIVE_EVENTS, DEAD_LETTER, FILLS, OFFERS, RECEIPTS, SETTLEMENT_INPUT
from events.hashchain import canonical_json
from farmlink.producers.keyring import Keyring
from services.buyer import app as buyer
from services.matching import app as matching
from services.settlement import app as settlement
from tests.signed_inputs import signed

pytestmark = pytest.mark.component


def command(kind: str, payload: dict) -> bytes:
    """An input as its producer sends it (cooperative and buyer inputs signed)."""
    return signed(kind, payload)


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


LOT = {
    "lot_id": "fj-chili-1",
    "cooperative_id": "fengjia",
    "county": "Yanhe",
    "township": "Ketian",
    "village": "Fengjia",
    "product": "chili",
    "grade": "A",
    "quantity": "150",
    "available_from": "2020-08-01",
    "expires_on": "2020-08-20",
    "contributions": [
        {"household_id": "h1", "quantity": "100", "registered_poor": True},
        {"household_id": "h2", "quantity": "50", "registered_poor": False},
    ],
}
ORDER = {
    "order_id": "o1",
    "buyer_id": "tongren-mart",
    "product": "chili",
    "min_grade": "B",
    "quantity": "100",
    "limit_price_fen": 500,
    "deliver_from": "2020-07-01",
    "deliver_to": "2020-09-30",
    "regions": [],
}


async def started(module, infrastructure):
    """The service on a schema of its own (test_<service>_<id>), so nothing else running interferes."""
    runtime = module.runtime
    runtime.schema = f"test_{module.SERVICE}_{uuid.uuid4().hex[:8]}"
    await runtime.open(with_relay=False)
    return runtime


async def stopped(runtime) -> None:
    owner = await asyncpg.connect(runtime.config.dsn)  # the service's own role may not drop its schema
    await owner.execute(f'DROP SCHEMA "{runtime.schema}" CASCADE')
    await owner.close()
    await runtime.close()
    runtime.schema = runtime.name
    runtime.pool = runtime.store = None


async def outbox(runtime) -> list[tuple[str, bytes]]:
    rows = await runtime.pool.fetch(f'SELECT topic, value FROM "{runtime.schema}".outbox ORDER BY outbox_id')
    return [(r["topic"], r["value"]) for r in rows]


async def test_an_order_is_placed_and_a_second_cancellation_is_rejected(infrastructure):
    runtime = await started(buyer, infrastructure)
    try:
        async with TestKafkaBroker(runtime.broker) as broker:
            await broker.publish(command("buyer.registered", {"buyer_id": "tongren-mart", "name": "Tongren mart"}), BUYER_INPUT)
            await broker.publish(command("order.placed", ORDER), BUYER_INPUT)
            await broker.publish(command("order.cancelled", {"order_id": "o1", "buyer_id": "tongren-mart"}), BUYER_INPUT)
            await broker.publish(command("order.cancelled", {"order_id": "o1", "buyer_id": "tongren-mart"}), BUYER_INPUT)
        stream = await runtime.store.read_stream("order-o1")
        assert [e.event_type for e in stream] == ["OrderPlaced", "OrderCancelled"]
        assert stream[1].payload["product"] == "chili"
        receipts = [json.loads(v) for t, v in await outbox(runtime) if t == RECEIPTS]
        assert [r["status"] for r in receipts] == ["accepted", "accepted", "accepted", "rejected"]
    finally:
        await stopped(runtime)


async def test_orders_come_only_from_registered_buyers_signing_with_their_own_key(infrastructure):
    runtime = await started(buyer, infrastructure)
    other = Keyring(Path(tempfile.mkdtemp(prefix="farmlink-other-keys-")))
    try:
        async with TestKafkaBroker(runtime.broker) as broker:
            await broker.publish(command("order.placed", ORDER), BUYER_INPUT)  # tongren-mart has not registered yet
            await broker.publish(command("buyer.registered", {"buyer_id": "tongren-mart", "name": "Tongren mart"}), BUYER_INPUT)
            await broker.publish(command("buyer.registered", {"buyer_id": "zunyi-canteen", "name": "Zunyi canteen"}), BUYER_INPUT)
            await broker.publish(signed("order.placed", ORDER, keyring=other), BUYER_INPUT)
            await broker.publish(command("order.placed", ORDER), BUYER_INPUT)
            await broker.publish(command("order.cancelled", {"order_id": "o1", "buyer_id": "zunyi-canteen"}), BUYER_INPUT)
        receipts = [json.loads(v) for t, v in await outbox(runtime) if t == RECEIPTS]
        assert [(r["status"], r["reason"]) for r in receipts] == [
            ("rejected", "payload.buyer_id: unknown buyer tongren-mart; a buyer registers (buyer.registered) before it orders"),
            ("accepted", None),
            ("accepted", None),
            ("rejected", "signature: does not verify with the key registered for buyer tongren-mart"),
            ("accepted", None),
            ("rejected", "payload.buyer_id: order o1 belongs to buyer tongren-mart, not zunyi-canteen"),
        ]
        assert [topic for topic, _ in await outbox(runtime)].count(DEAD_LETTER) == 3
        assert [e.event_type for e in await runtime.store.read_stream("order-o1")] == ["OrderPlaced"]
    finally:
        await stopped(runtime)


async def test_the_matcher_journals_inputs_and_records_a_fill_and_the_rest_on_offer(infrastructure):
    runtime = await started(matching, infrastructure)
    matching.books.clear()
    try:
        async with TestKafkaBroker(runtime.broker) as broker:
            await broker.publish(event("OrderPlaced", ORDER, "order-o1"), BUYER_EVENTS, key=b"chili")
            await broker.publish(event("HarvestRecorded", LOT, "lot-fj-chili-1"), COOPERATIVE_EVENTS, key=b"chili")
            await broker.publish(b"{not an envelope", COOPERATIVE_EVENTS, key=b"chili")
        stream = await runtime.store.read_stream("market-chili")
        assert [e.event_type for e in stream] == ["InputJournaled", "InputJournaled", "FillMade", "OfferOpened"]
        fill = stream[2].payload
        assert (fill["quantity"], fill["unit_price_fen"], fill["revenue_fen"]) == ("100", 500, 50000)
        assert fill["household_income_fen"] == {"h1": 33333, "h2": 16667}
        offer = await runtime.pool.fetchrow(
            f"SELECT quantity_left, open FROM \"{runtime.schema}\".offers WHERE lot_id = 'fj-chili-1'"
        )
        assert (offer["quantity_left"], offer["open"]) == (50, True)
        topics = [t for t, _ in await outbox(runtime)]
        assert FILLS in topics and OFFERS in topics and topics[-1] == DEAD_LETTER
    finally:
        await stopped(runtime)


async def test_a_payment_is_split_to_households_and_an_overpayment_is_rejected(infrastructure):
    runtime = await started(settlement, infrastructure)
    fill = {
        "fill_id": str(uuid.uuid4()),
        "product": "chili",
        "position": 1,
        "journal_seq": 2,
        "lot_id": "fj-chili-1",
        "cooperative_id": "fengjia",
        "grade": "A",
        "outlet_kind": "order",
        "outlet_id": "o1",
        "buyer_id": "tongren-mart",
        "quantity": "100",
        "unit_price_fen": 500,
        "price_basis": "order_limit",
        "revenue_fen": 50000,
        "household_income_fen": {"h1": 33333, "h2": 16667},
    }
    try:
        async with TestKafkaBroker(runtime.broker) as broker:
            await broker.publish(event("HarvestRecorded", LOT, "lot-fj-chili-1"), COOPERATIVE_EVENTS, key=b"chili")
            await broker.publish(event("FillMade", fill, "market-chili"), FILLS, key=b"chili")
            await broker.publish(
                command("settlement_desk.registered", {"desk_id": "main", "name": "county desk"}), SETTLEMENT_INPUT
            )
            await broker.publish(
                command("payment.made", {"lot_id": "fj-chili-1", "outlet_id": "o1", "amount_fen": 30000}), SETTLEMENT_INPUT
            )
            await broker.publish(
                command("payment.made", {"lot_id": "fj-chili-1", "outlet_id": "o1", "amount_fen": 20001}), SETTLEMENT_INPUT
            )
        incomes = {
            r["household_id"]: r["paid_fen"] for r in await runtime.pool.fetch(f'SELECT * FROM "{runtime.schema}".incomes')
        }
        assert incomes == {"h1": 20000, "h2": 10000}
        receipts = [json.loads(v) for t, v in await outbox(runtime) if t == RECEIPTS]
        assert [r["status"] for r in receipts] == ["fill_recorded", "accepted", "accepted", "rejected"]  # the desk, two payments
        assert "over the fill's revenue" in receipts[-1]["reason"]
    finally:
        await stopped(runtime)
