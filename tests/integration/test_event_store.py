"""The event store, outbox and inbox against the real PostgreSQL (and Kafka for the relay)."""

import asyncio
from datetime import date

import pytest

from contracts.market import MarketPriceObserved
from contracts.topics import DEAD_LETTER
from events.consumer import Decoded, Delivery, Rejection
from events.relay import publish_pending, transactional_producer
from events.store import ConcurrencyError, NewEvent, verify_chains
from events.handling import Consumer, consume_batch
from tests.kafka_helpers import login, read_topic

pytestmark = pytest.mark.integration


def price(fen: int, day: int = 1) -> NewEvent:
    return NewEvent(
        MarketPriceObserved(product="oil_tea_fruit", grade="A", market="Tongren", price_fen=fen, observed_on=date(2020, 10, day))
    )


async def test_appending_at_a_stale_expected_version_raises_a_concurrency_error(store):
    await store.append("prices", [price(800)], 0, correlation_id="c1")
    with pytest.raises(ConcurrencyError) as raised:
        await store.append("prices", [price(810)], 0, correlation_id="c2")
    assert raised.value.actual_version == 1
    assert "expected version 0" in str(raised.value)


async def test_two_writers_racing_for_the_same_version_one_wins_and_one_gets_a_concurrency_error(store):
    results = await asyncio.gather(
        store.append("race", [price(800)], 0, correlation_id="a"),
        store.append("race", [price(900)], 0, correlation_id="b"),
        return_exceptions=True,
    )
    assert sum(isinstance(r, ConcurrencyError) for r in results) == 1
    assert len(await store.read_stream("race")) == 1


async def test_streams_read_back_in_order_and_read_all_walks_the_global_log_in_batches(store):
    await store.append("a", [price(1), price(2)], 0, correlation_id="c")
    await store.append("b", [price(3)], 0, correlation_id="c")
    await store.append("a", [price(4)], 2, correlation_id="c")
    stream = await store.read_stream("a")
    assert [e.payload["price_fen"] for e in stream] == [1, 2, 4]
    assert [e.stream_version for e in stream] == [1, 2, 3]
    everything = [e async for e in store.read_all(batch_size=2)]
    assert [e.payload["price_fen"] for e in everything] == [1, 2, 3, 4]
    positions = [e.global_position for e in everything]
    assert positions == sorted(positions)
    later = [e async for e in store.read_all(from_position=positions[1], batch_size=2)]
    assert [e.payload["price_fen"] for e in later] == [3, 4]
    assert await store.stream_version("a") == 3


async def test_an_append_and_its_outbox_rows_commit_together_or_not_at_all(store, pool):
    with pytest.raises(RuntimeError):
        async with store.transaction() as uow:
            await uow.append("gone", [price(1)], 0, correlation_id="c")
            raise RuntimeError("the handler failed after appending")
    assert await store.stream_version("gone") == 0
    assert await pool.fetchval(f'SELECT count(*) FROM "{store.schema}".outbox') == 0
    await store.append("kept", [price(1)], 0, correlation_id="c")
    assert await pool.fetchval(f'SELECT count(*) FROM "{store.schema}".outbox') == 1


async def test_a_clean_log_passes_the_hash_chain_check(store):
    await store.append("a", [price(1), price(2), price(3)], 0, correlation_id="c")
    assert await verify_chains(store) == []


async def test_an_edited_row_is_caught_by_the_hash_chain_check_at_its_place(store, pool):
    await store.append("a", [price(1), price(2), price(3)], 0, correlation_id="c")
    await store.append("b", [price(9)], 0, correlation_id="c")
    await pool.execute(
        f"""UPDATE "{store.schema}".events SET payload = jsonb_set(payload, '{{price_fen}}', '1')
            WHERE stream_id = 'a' AND stream_version = 2"""
    )
    broken = await verify_chains(store)
    assert [(b.stream_id, b.stream_version) for b in broken] == [("a", 2)]
    assert "edited" in broken[0].reason


async def test_a_deleted_event_is_caught_by_the_hash_chain_check(store, pool):
    await store.append("a", [price(1), price(2), price(3)], 0, correlation_id="c")
    await pool.execute(f"""DELETE FROM "{store.schema}".events WHERE stream_id = 'a' AND stream_version = 2""")
    broken = await verify_chains(store)
    assert [(b.stream_id, b.stream_version) for b in broken] == [("a", 3)]


async def test_two_transactions_committing_out_of_position_order_are_both_relayed(store, infrastructure, topic):
    producer = transactional_producer(infrastructure.bootstrap, store.schema, **login())
    await producer.start()
    first_in = store.transaction()
    early = await first_in.__aenter__()
    await early.enqueue(topic, "k", b"first-numbered, commits last")
    async with store.transaction() as late:
        await late.enqueue(topic, "k", b"second-numbered, commits first")
    async with store.pool.acquire() as conn:
        published_while_open = await publish_pending(conn, store.schema, producer)
        await first_in.__aexit__(None, None, None)
        published_after = 0
        while published_while_open + published_after < 2:
            published_after += await publish_pending(conn, store.schema, producer)
        assert await publish_pending(conn, store.schema, producer) == 0
    await producer.stop()
    records = await read_topic(infrastructure.bootstrap, topic, expected=2)
    assert sorted(r.value for r in records) == [b"first-numbered, commits last", b"second-numbered, commits first"]


def delivery(value: bytes, offset: int = 0) -> Delivery:
    return Delivery(topic="farmlink.test", partition=0, offset=offset, key=b"k", value=value, headers=[("h", b"v")])


async def load_effects(conn, uow, items):
    await uow.load_heads(conn, ["effects"])


def append_effect(uow, decoded):
    if decoded.item == 13:
        raise Rejection("payload.price_fen: 13 is unlucky")
    event = price(decoded.item)
    if decoded.item == 666:  # text PostgreSQL's jsonb cannot hold: the database refuses it, not the model
        event = NewEvent(MarketPriceObserved.model_construct(**{**event.payload.__dict__, "market": "bad\x00market"}))
    uow.append("effects", [event], None, correlation_id=decoded.correlation_id)


def by_value(d: Delivery) -> Decoded[int]:
    return Decoded(int(d.value), message_id=f"message-{int(d.value)}", correlation_id="c")


EFFECTS = Consumer("test-consumer", by_value, append_effect, load_effects)


async def test_the_same_message_delivered_twice_has_one_effect(store):
    await consume_batch(store, EFFECTS, [delivery(b"700")])
    await consume_batch(store, EFFECTS, [delivery(b"700", offset=1), delivery(b"700", offset=2)])
    assert len(await store.read_stream("effects")) == 1


async def test_a_batch_appends_every_message_in_order_on_one_stream_with_a_valid_chain(store):
    await consume_batch(store, EFFECTS, [delivery(str(n).encode(), offset=n) for n in range(1, 201)])
    events = await store.read_stream("effects")
    assert [e.payload["price_fen"] for e in events] == [n for n in range(1, 201) if n != 13]
    assert [e.stream_version for e in events] == list(range(1, 200))
    assert await verify_chains(store) == []


async def test_a_rejected_message_is_dead_lettered_while_its_batch_neighbours_commit(store, pool):
    await consume_batch(store, EFFECTS, [delivery(b"12", 0), delivery(b"13", 1), delivery(b"14", 2)])
    assert [e.payload["price_fen"] for e in await store.read_stream("effects")] == [12, 14]
    rows = await pool.fetch(f'SELECT topic, value, headers::text FROM "{store.schema}".outbox WHERE topic = $1', DEAD_LETTER)
    assert [r["value"] for r in rows] == [b"13"] and "unlucky" in rows[0]["headers"]


async def test_a_message_the_database_refuses_is_found_by_bisecting_and_dead_lettered_alone(store, pool):
    values = [1, 2, 3, 666, 5, 6, 7]
    await consume_batch(store, EFFECTS, [delivery(str(v).encode(), offset=i) for i, v in enumerate(values)])
    assert [e.payload["price_fen"] for e in await store.read_stream("effects")] == [1, 2, 3, 5, 6, 7]
    rows = await pool.fetch(f'SELECT value, headers::text FROM "{store.schema}".outbox WHERE topic = $1', DEAD_LETTER)
    assert [r["value"] for r in rows] == [b"666"] and "refused by the database" in rows[0]["headers"]
    assert await verify_chains(store) == []


async def test_a_stream_that_moved_under_a_batch_is_detected_by_the_database_and_the_batch_decided_again(store):
    decided = []

    async def load_then_race(conn, uow, items):
        await uow.load_heads(conn, ["effects"])
        if not decided:  # another writer appends after our load: the batch's versions are stale
            await store.append("effects", [price(1)], None, correlation_id="other")
        decided.append(len(items))

    racing = Consumer("test-consumer", by_value, append_effect, load_then_race)
    await consume_batch(store, racing, [delivery(b"2", 0), delivery(b"3", 1)])
    assert [e.payload["price_fen"] for e in await store.read_stream("effects")] == [1, 2, 3]
    assert decided == [2, 2]
    assert await verify_chains(store) == []


async def test_a_message_that_cannot_be_decoded_is_dead_lettered_with_its_bytes_headers_and_reason(store, pool):
    await consume_batch(store, EFFECTS, [delivery(b"\xff\xfe not a number")])
    row = await pool.fetchrow(f'SELECT topic, key, value, headers::text FROM "{store.schema}".outbox')
    assert row["topic"] == DEAD_LETTER
    assert row["value"] == b"\xff\xfe not a number"
    assert row["key"] == b"k"
    assert '"h", "v"' in row["headers"] and "dlq.reason" in row["headers"] and "ValueError" in row["headers"]


async def test_readers_never_skip_an_event_whose_transaction_commits_after_a_later_one(store):
    slow = store.transaction()
    early = await slow.__aenter__()
    await early.append("slow", [price(1)], 0, correlation_id="c")  # takes its position first
    await store.append("fast", [price(2)], 0, correlation_id="c")  # a later position, committed first
    seen_while_open = [e.stream_id async for e in store.read_all()]
    await slow.__aexit__(None, None, None)
    seen_after = [e.stream_id async for e in store.read_all()]
    assert seen_while_open == []  # nothing past the open transaction: it could still commit
    assert sorted(seen_after) == ["fast", "slow"]


async def test_the_projection_reader_gives_positions_types_and_payloads_and_can_filter_types(store):
    from contracts.buyer import OrderCancelled

    await store.append("a", [price(1), price(2)], 0, correlation_id="c")
    await store.append("o", [NewEvent(OrderCancelled(order_id="o1", buyer_id="b", product="chili"))], 0, correlation_id="c")
    everything = [item async for item in store.read_all_payloads(batch_size=2)]
    assert [(kind, payload.get("price_fen")) for _, kind, payload in everything] == [
        ("MarketPriceObserved", 1),
        ("MarketPriceObserved", 2),
        ("OrderCancelled", None),
    ]
    cancellations = [item async for item in store.read_all_payloads(event_types=["OrderCancelled"])]
    assert [payload["order_id"] for _, _, payload in cancellations] == ["o1"]
