"""The outbox relay publishes each row exactly once for read_committed readers, even when it
dies between Kafka's commit and the outbox delete, or in the middle of a Kafka transaction."""

import asyncio

import pytest

from events import relay_pipeline
from events.relay import OutboxRelay, last_checkpoint, publish_pending, recover, transactional_producer
from tests.kafka_helpers import login, read_topic


async def _enqueue(store, topic: str, values: list[bytes]) -> None:
    async with store.transaction() as uow:
        for value in values:
            await uow.enqueue(topic, "k", value)


async def _outbox_rows(store) -> int:
    return await store.pool.fetchval(f'SELECT count(*) FROM "{store.schema}".outbox')


async def test_rows_committed_to_kafka_but_not_deleted_are_not_sent_again(store, infrastructure, topic, monkeypatch):
    await _enqueue(store, topic, [b"one", b"two", b"three"])
    producer = transactional_producer(infrastructure.bootstrap, store.schema, **login())
    await producer.start()

    async def crash(*_):
        raise ConnectionError("relay died after Kafka committed, before deleting")

    monkeypatch.setattr(relay_pipeline, "delete_rows", crash)
    async with store.pool.acquire() as conn:
        with pytest.raises(ConnectionError):
            await publish_pending(conn, store.schema, producer)
    await producer.stop()
    monkeypatch.undo()
    assert await _outbox_rows(store) == 3

    async with store.pool.acquire() as conn:
        successor = transactional_producer(infrastructure.bootstrap, store.schema, **login())
        await successor.start()
        try:
            assert await recover(conn, store.schema, infrastructure.bootstrap, **login()) == 3
            assert await publish_pending(conn, store.schema, successor) == 0
        finally:
            await successor.stop()
    records = await read_topic(infrastructure.bootstrap, topic, expected=4, timeout=3.0)
    assert sorted(r.value for r in records) == [b"one", b"three", b"two"]


async def test_a_relay_killed_mid_transaction_leaves_nothing_readers_see_and_its_rows_are_sent_once(store, infrastructure, topic):
    await _enqueue(store, topic, [b"alpha", b"beta"])
    zombie = transactional_producer(infrastructure.bootstrap, store.schema, **login())
    await zombie.start()
    await zombie.begin_transaction()
    for value in (b"alpha", b"beta"):
        await (await zombie.send(topic, value, key=b"k"))  # on the log, inside an open transaction

    relay_task = OutboxRelay(infrastructure.dsn, store.schema, infrastructure.bootstrap, poll_interval=0.1, kafka=login())
    await relay_task.start()  # its producer fences the zombie, whose transaction is aborted
    try:
        for _ in range(100):
            if await _outbox_rows(store) == 0:
                break
            await asyncio.sleep(0.1)
    finally:
        await relay_task.stop()
        await asyncio.gather(zombie.stop(), return_exceptions=True)
    records = await read_topic(infrastructure.bootstrap, topic, expected=3, timeout=3.0)
    assert sorted(r.value for r in records) == [b"alpha", b"beta"]


async def test_a_schema_without_checkpoints_has_nothing_to_recover(infrastructure, unique):
    assert await last_checkpoint(infrastructure.bootstrap, f"never_relayed_{unique}", **login()) == []
