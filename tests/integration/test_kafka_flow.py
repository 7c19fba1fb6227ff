"""Events travelling for real: store -> outbox -> relay -> Kafka -> a FastStream subscriber,
and a consumer group that resumes where it left off."""

import asyncio
from datetime import date

import pytest
from faststream.kafka import KafkaBroker
from faststream.middlewares import AckPolicy

from contracts.market import MarketPriceObserved
from events.relay import OutboxRelay, idempotent_producer
from events.runtime import raw_body
from events.store import EventStore, NewEvent, Route
from tests.kafka_helpers import broker_login, login

pytestmark = pytest.mark.integration


async def until(condition, timeout: float = 30.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not condition():
        assert loop.time() < deadline, "timed out waiting"
        await asyncio.sleep(0.05)


async def test_an_event_goes_from_the_store_through_the_outbox_and_kafka_to_a_faststream_subscriber(store, infrastructure, topic):
    routed = EventStore(
        store.pool, store.schema, producer="test", router=lambda envelope: Route(topic, envelope.payload["product"])
    )
    received: list[dict] = []
    broker = KafkaBroker(infrastructure.bootstrap, security=broker_login())

    @broker.subscriber(topic, group_id=f"{topic}.reader", auto_offset_reset="earliest", ack_policy=AckPolicy.NACK_ON_ERROR)
    async def on_event(body: dict) -> None:
        received.append(body)

    relay = OutboxRelay(infrastructure.dsn, store.schema, infrastructure.bootstrap, poll_interval=0.1, kafka=login())
    async with broker:
        await broker.start()
        await relay.start()
        observed = MarketPriceObserved(
            product="oil_tea_fruit", grade="A", market="Tongren", price_fen=760, observed_on=date(2020, 10, 1)
        )
        [stored] = await routed.append("market-price-oil_tea_fruit", [NewEvent(observed)], 0, correlation_id="smoke")
        await until(lambda: len(received) == 1)
        for _ in range(100):  # the relay deletes the row once Kafka acknowledged it
            if await store.pool.fetchval(f'SELECT count(*) FROM "{store.schema}".outbox') == 0:
                break
            await asyncio.sleep(0.05)
        await relay.stop()
    event = received[0]
    assert event["event_id"] == str(stored.event_id)
    assert event["event_type"] == "MarketPriceObserved"
    assert event["payload"]["price_fen"] == 760
    assert event["hash"] == stored.hash and event["global_position"] == stored.global_position
    assert await store.pool.fetchval(f'SELECT count(*) FROM "{store.schema}".outbox') == 0


async def test_a_consumer_group_resumes_after_a_restart_without_loss_or_repeats(infrastructure, topic):
    producer = idempotent_producer(infrastructure.bootstrap, **login())
    await producer.start()
    group = f"{topic}.group"
    seen: list[int] = []

    def reader() -> KafkaBroker:
        broker = KafkaBroker(infrastructure.bootstrap, security=broker_login())

        @broker.subscriber(
            topic, group_id=group, auto_offset_reset="earliest", ack_policy=AckPolicy.NACK_ON_ERROR, decoder=raw_body
        )
        async def on_number(body: bytes) -> None:
            seen.append(int(body))

        return broker

    for n in range(20):
        await producer.send_and_wait(topic, str(n).encode(), key=str(n % 3).encode())
    first = reader()
    async with first:
        await first.start()
        await until(lambda: len(seen) == 20)
        await asyncio.sleep(0.5)
    for n in range(20, 45):
        await producer.send_and_wait(topic, str(n).encode(), key=str(n % 3).encode())
    second = reader()
    async with second:
        await second.start()
        await until(lambda: len(seen) == 45)
        await asyncio.sleep(0.5)
    await producer.stop()
    assert sorted(seen) == list(range(45)), "every message exactly once across the restart"
