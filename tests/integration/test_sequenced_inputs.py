"""A run's sequenced inputs reach the matcher's journal in seq order, whatever order the event
topics deliver them in; a refused input leaves a marker so the run goes on; a gap that outlives
its timeout is passed rather than holding the product forever (events/sequence.py)."""

import dataclasses
import uuid
from pathlib import Path

import pytest

from contracts.topics import SEQUENCE_HEADER, SEQUENCE_MARKERS
from events.consumer import Delivery
from events.migrations import migrate
from events.sequence import Sequencer
from events.store import EventStore, kafka_headers_of
from events.handling import consume_batch
from services.buyer import app as buyer
from services.cooperative import app as cooperative
from services.matching import app as matching
from tests.signed_inputs import signed

pytestmark = pytest.mark.integration

RUN = "publish-test"


@pytest.fixture
async def stores(pool):
    made = {}
    for name in ("buyer", "cooperative", "matching"):
        schema = f"seq_{name}_{uuid.uuid4().hex[:8]}"
        await migrate(pool, schema, [(f"services/{name}", Path(f"services/{name}/sql"))])
        made[name] = EventStore(pool, schema, producer=f"service:{name}")
    matching.books.clear()
    yield made
    matching.books.clear()
    for store in made.values():
        await pool.execute(f'DROP SCHEMA "{store.schema}" CASCADE')


def stamped(value: bytes, seq: int | None, offset: int) -> Delivery:
    headers = [(SEQUENCE_HEADER, f"{RUN}/chili/{seq}".encode())] if seq else []
    return Delivery("input", 0, offset, RUN.encode(), value, headers)


def order(n: int, buyer_id: str = "b1") -> bytes:
    return signed(
        "order.placed",
        {
            "order_id": f"o{n}",
            "buyer_id": buyer_id,
            "product": "chili",
            "min_grade": "C",
            "quantity": "1",
            "limit_price_fen": 500,
            "deliver_from": "2020-01-01",
            "deliver_to": "2020-12-31",
            "regions": [],
        },
    )


async def published(pool, store: EventStore, topics: tuple[str, ...]) -> list[Delivery]:
    rows = await pool.fetch(
        f'SELECT outbox_id, topic, key, value, headers::text AS headers FROM "{store.schema}".outbox '
        f"WHERE topic = ANY($1::text[]) ORDER BY outbox_id",
        list(topics),
    )
    return [Delivery(r["topic"], 0, r["outbox_id"], r["key"], r["value"], kafka_headers_of(r["headers"])) for r in rows]


async def journal(pool, store: EventStore) -> list[str]:
    rows = await pool.fetch(f"""SELECT payload->'fact'->>'lot_id' AS lot, payload->'fact'->>'order_id' AS ord
                                FROM "{store.schema}".events WHERE event_type = 'InputJournaled' ORDER BY global_position""")
    return [r["lot"] or r["ord"] for r in rows]


async def run_inputs(pool, stores) -> list[Delivery]:
    """A harvest (seq 1), an order of an unknown buyer (seq 2, refused), two orders (seq 3, 4), as services handle them."""
    await consume_batch(
        stores["buyer"], buyer.CONSUMER, [stamped(signed("buyer.registered", {"buyer_id": "b1", "name": "b"}), None, 0)]
    )
    await consume_batch(
        stores["cooperative"],
        cooperative.CONSUMER,
        [
            stamped(
                signed(
                    "cooperative.registered",
                    {
                        "cooperative_id": "c1",
                        "name": "c",
                        "county": "Yanhe",
                        "township": "Ketian",
                        "village": "Fengjia",
                        "households": [{"household_id": "h1", "registered_poor": True}],
                    },
                ),
                None,
                0,
            ),
            stamped(
                signed(
                    "harvest.recorded",
                    {
                        "lot_id": "lot1",
                        "cooperative_id": "c1",
                        "product": "chili",
                        "grade": "A",
                        "quantity": "10",
                        "available_from": "2020-01-01",
                        "expires_on": "2020-12-31",
                        "contributions": [{"household_id": "h1", "quantity": "10"}],
                    },
                ),
                1,
                1,
            ),
        ],
    )
    await consume_batch(
        stores["buyer"],
        buyer.CONSUMER,
        [stamped(order(2, buyer_id="nobody"), 2, 1), stamped(order(3), 3, 2), stamped(order(4), 4, 3)],
    )
    harvest = [
        d for d in await published(pool, stores["cooperative"], ("farmlink.cooperative.events",)) if b"HarvestRecorded" in d.value
    ]
    buyers = await published(pool, stores["buyer"], ("farmlink.buyer.events", SEQUENCE_MARKERS))
    orders = sorted(
        (d for d in buyers if b"OrderPlaced" in d.value or d.topic == SEQUENCE_MARKERS),
        key=lambda d: dict(d.headers)[SEQUENCE_HEADER],
    )
    assert len(harvest) == 1 and len(orders) == 3 and orders[0].topic == SEQUENCE_MARKERS  # seq 2 was refused: a marker
    return [*harvest, *orders]


async def test_inputs_arriving_backwards_across_batches_are_journaled_in_seq_order(pool, stores):
    harvest, marker, order3, order4 = await run_inputs(pool, stores)
    await consume_batch(stores["matching"], matching.CONSUMER, [order4])
    await consume_batch(stores["matching"], matching.CONSUMER, [order3, marker])
    assert await journal(pool, stores["matching"]) == []  # waiting for seq 1: parked, offsets free to commit
    parked = await pool.fetchval(f'SELECT count(*) FROM "{stores["matching"].schema}".sequence_pending WHERE NOT released')
    assert parked == 3
    matching.books.clear()  # as after a restart: the parked inputs are in PostgreSQL, not in memory
    await consume_batch(stores["matching"], matching.CONSUMER, [harvest])
    assert await journal(pool, stores["matching"]) == ["lot1", "o3", "o4"]


async def test_a_repeated_delivery_of_a_journaled_input_has_no_second_effect(pool, stores):
    harvest, marker, order3, order4 = await run_inputs(pool, stores)
    await consume_batch(stores["matching"], matching.CONSUMER, [harvest, marker, order3, order4])
    await consume_batch(stores["matching"], matching.CONSUMER, [dataclasses.replace(order3, offset=99), order4])
    assert await journal(pool, stores["matching"]) == ["lot1", "o3", "o4"]


async def test_a_gap_that_outlives_its_timeout_is_passed_and_the_late_input_still_journaled(pool, stores):
    harvest, marker, order3, order4 = await run_inputs(pool, stores)
    impatient = dataclasses.replace(matching.CONSUMER, arrange=Sequencer(gap_timeout_s=0.0).arrange)
    await consume_batch(stores["matching"], impatient, [order4, order3])  # seq 1 and 2 never came (yet)
    await consume_batch(stores["matching"], impatient, [])  # the sweeper's call: the gap is older than 0 s
    assert await journal(pool, stores["matching"]) == ["o3", "o4"]
    await consume_batch(stores["matching"], impatient, [harvest, marker])
    assert await journal(pool, stores["matching"]) == ["o3", "o4", "lot1"]  # late, out of order, but not lost
