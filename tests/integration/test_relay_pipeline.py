"""The pipelined relay (events/relay.py): deletes that lag behind commits, rows read while
earlier batches are still in flight, rows waiting behind an older open transaction, no reads
while idle, a lost connection, and many writers committing out of id order."""

import asyncio
import random
from collections import defaultdict

import pytest

from events import relay_pipeline
from events.relay import OutboxRelay, last_checkpoint, publish_pending, recover, transactional_producer
from tests.kafka_helpers import login, read_topic

pytestmark = pytest.mark.integration


async def _enqueue(store, topic: str, values: list[bytes], key: str = "k") -> None:
    async with store.transaction() as uow:
        for value in values:
            await uow.enqueue(topic, key, value)


async def _outbox_rows(store) -> int:
    return await store.pool.fetchval(f'SELECT count(*) FROM "{store.schema}".outbox')


async def _until(condition, timeout: float = 20.0, every: float = 0.05) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not await condition():
        assert loop.time() < deadline, "timed out waiting"
        await asyncio.sleep(every)


async def _outbox_empty(store, timeout: float = 20.0) -> None:
    async def empty() -> bool:
        return await _outbox_rows(store) == 0

    await _until(empty, timeout)


async def test_a_relay_that_dies_while_deletes_lag_behind_commits_sends_nothing_twice(store, infrastructure, topic, monkeypatch):
    values = [f"v{n}".encode() for n in range(10)]
    await _enqueue(store, topic, values)
    producer = transactional_producer(infrastructure.bootstrap, store.schema, **login())
    await producer.start()
    never = asyncio.Event()

    async def stuck(*_):  # the first DELETE never commits: later transactions commit meanwhile
        await never.wait()

    monkeypatch.setattr(relay_pipeline, "delete_rows", stuck)
    undeleted = 2 * relay_pipeline.MAX_UNDELETED  # batches of 2 rows; the relay stops committing at MAX_UNDELETED
    async with store.pool.acquire() as conn, store.pool.acquire() as delete_conn:
        dying = asyncio.create_task(publish_pending(conn, store.schema, producer, limit=2, delete_conn=delete_conn))

        async def three_transactions_committed() -> bool:
            return len(await last_checkpoint(infrastructure.bootstrap, store.schema, **login())) == undeleted

        await _until(three_transactions_committed, every=0.3)
        dying.cancel()  # the relay dies: three transactions committed, not one of their rows deleted
        with pytest.raises(asyncio.CancelledError):
            await dying
    await producer.stop()
    monkeypatch.undo()
    assert await _outbox_rows(store) == 10

    successor = transactional_producer(infrastructure.bootstrap, store.schema, **login())
    await successor.start()
    try:
        async with store.pool.acquire() as conn:
            # The last checkpoint names the rows of all three transactions, not only the last one's.
            assert await recover(conn, store.schema, infrastructure.bootstrap, **login()) == undeleted
            assert await publish_pending(conn, store.schema, successor, limit=3) == 10 - undeleted
    finally:
        await successor.stop()
    assert await _outbox_rows(store) == 0
    records = await read_topic(infrastructure.bootstrap, topic, expected=11, timeout=3.0)
    assert sorted(r.value for r in records) == sorted(values)


async def test_a_read_leaves_out_rows_in_flight_and_takes_a_row_whose_transaction_ended_late(store, infrastructure, topic):
    insert = f'INSERT INTO "{store.schema}".outbox (topic, key, value) VALUES ($1, $2, $3)'
    producer = transactional_producer(infrastructure.bootstrap, store.schema, **login())
    await producer.start()
    try:
        async with store.pool.acquire() as oldest, store.pool.acquire() as middle, store.pool.acquire() as conn:
            older_tx, middle_tx = oldest.transaction(), middle.transaction()
            await older_tx.start()
            await oldest.fetchval("SELECT pg_current_xact_id()")
            await middle_tx.start()
            await middle.fetchval("SELECT pg_current_xact_id()")  # open, writes nothing: holds xmin back
            await _enqueue(store, topic, [b"late"])  # the lowest id, the newest transaction: not eligible yet
            await oldest.execute(insert, topic, b"k", b"old")
            await older_tx.commit()  # older than the open one: eligible

            pipeline = relay_pipeline.Pipeline(store.schema, producer, conn, conn, limit=10)
            assert await pipeline._rows_waiting()
            rows = await pipeline._read_rows(0)
            assert [r["value"] for r in rows] == [b"old"]
            pipeline._taken.append(await pipeline._build(rows, 0))  # in flight, not deleted

            await middle_tx.commit()
            assert not await pipeline._rows_waiting()
            assert [r["value"] for r in await pipeline._read_rows(0)] == [b"late"]  # "old" is in flight
    finally:
        await producer.stop()


async def test_reading_on_gives_way_when_a_row_below_has_become_eligible(store, infrastructure, topic):
    insert = f'INSERT INTO "{store.schema}".outbox (topic, key, value) VALUES ($1, $2, $3)'
    producer = transactional_producer(infrastructure.bootstrap, store.schema, **login())
    await producer.start()
    try:
        async with store.pool.acquire() as early, store.pool.acquire() as holder, store.pool.acquire() as conn:
            early_tx, hold_tx = early.transaction(), holder.transaction()
            await early_tx.start()
            await early.fetchval("SELECT pg_current_xact_id()")
            await hold_tx.start()
            await holder.fetchval("SELECT pg_current_xact_id()")  # open, writes nothing: holds xmin back
            await _enqueue(store, topic, [b"late"], key="a")  # the lowest id, a newer transaction: waits
            for value in (b"e1", b"e2", b"e3"):
                await early.execute(insert, topic, b"b", value)
            await early_tx.commit()  # older than the open one: eligible

            pipeline = relay_pipeline.Pipeline(store.schema, producer, conn, conn, limit=2)
            rows = await pipeline._read_rows(0)
            assert [r["value"] for r in rows] == [b"e1", b"e2"]
            batch = await pipeline._build(rows, 0)
            pipeline._taken.append(batch)
            pipeline._last_xmin = batch.xmin
            await hold_tx.commit()  # "late" is eligible now, below the last id read
            assert await pipeline._read_rows(batch.hi) == []  # reading on would overtake it
            assert [r["value"] for r in await pipeline._read_rows(0)] == [b"late", b"e3"]
    finally:
        await producer.stop()


async def test_a_row_waiting_behind_an_older_open_transaction_goes_out_without_another_notify(store, infrastructure, topic):
    publisher = OutboxRelay(infrastructure.dsn, store.schema, infrastructure.bootstrap, kafka=login())
    await publisher.start()
    try:
        await _enqueue(store, topic, [b"first"])
        await _outbox_empty(store)
        async with store.pool.acquire() as older:
            open_tx = older.transaction()
            await open_tx.start()
            await older.fetchval("SELECT pg_current_xact_id()")  # writes no outbox row: it will not NOTIFY
            await _enqueue(store, topic, [b"behind"])  # NOTIFY now, but not below xmin yet
            await asyncio.sleep(1.0)
            assert await _outbox_rows(store) == 1
            await open_tx.commit()
        await _outbox_empty(store, timeout=3.0)  # re-checked with a pause of at most poll_interval (0.5 s)
    finally:
        await publisher.stop()
    records = await read_topic(infrastructure.bootstrap, topic, expected=3, timeout=3.0)
    assert sorted(r.value for r in records) == [b"behind", b"first"]


async def test_an_idle_relay_reads_nothing_until_a_notify_wakes_it(store, infrastructure, topic, monkeypatch):
    reads: list[str] = []
    read_rows, rows_waiting = relay_pipeline.Pipeline._read_rows, relay_pipeline.Pipeline._rows_waiting

    async def counted_read(self, start):
        reads.append("read")
        return await read_rows(self, start)

    async def counted_check(self):
        reads.append("check")
        return await rows_waiting(self)

    monkeypatch.setattr(relay_pipeline.Pipeline, "_read_rows", counted_read)
    monkeypatch.setattr(relay_pipeline.Pipeline, "_rows_waiting", counted_check)
    publisher = OutboxRelay(infrastructure.dsn, store.schema, infrastructure.bootstrap, poll_interval=0.05, kafka=login())
    await publisher.start()
    try:
        await _enqueue(store, topic, [b"one"])
        await _outbox_empty(store)
        await asyncio.sleep(0.3)
        before = len(reads)
        await asyncio.sleep(2.0)
        assert len(reads) == before  # no polling while nothing waits
        await _enqueue(store, topic, [b"two"])
        await _outbox_empty(store, timeout=5.0)
        assert len(reads) > before
    finally:
        await publisher.stop()
    assert publisher.published == 2


async def test_a_relay_whose_connection_is_terminated_reconnects_and_goes_on(store, infrastructure, topic):
    publisher = OutboxRelay(infrastructure.dsn, store.schema, infrastructure.bootstrap, kafka=login())
    await publisher.start()
    try:
        await _enqueue(store, topic, [b"before"])
        await _outbox_empty(store)
        lock_holder = """SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted AND objsubid = 1
                         AND objid::bigint = hashtext('farmlink.relay.' || $1)::bigint & 4294967295"""
        pid = await store.pool.fetchval(lock_holder, store.schema)
        assert pid is not None
        assert await store.pool.fetchval("SELECT pg_terminate_backend($1)", pid)
        await _enqueue(store, topic, [b"after"])  # its NOTIFY may reach no one: the new session reads from the start
        await _outbox_empty(store, timeout=15.0)
        assert await store.pool.fetchval(lock_holder, store.schema) not in (None, pid)
    finally:
        await publisher.stop()
    records = await read_topic(infrastructure.bootstrap, topic, expected=3, timeout=3.0)
    assert sorted(r.value for r in records) == [b"after", b"before"]


async def test_many_writers_committing_out_of_id_order_each_row_once_and_each_writers_rows_in_order(store, infrastructure, topic):
    writers, transactions, rows_each = 5, 12, 3
    publisher = OutboxRelay(infrastructure.dsn, store.schema, infrastructure.bootstrap, kafka=login(), batch_size=4)
    await publisher.start()
    rng = random.Random(7)

    async def write(w: int) -> None:
        for t in range(transactions):
            async with store.transaction() as uow:
                for r in range(rows_each):  # one statement each: another writer's rows fall in between
                    await uow.enqueue(topic, f"w{w}", f"w{w}-{t:02}-{r}".encode())
                    await asyncio.sleep(rng.random() * 0.01)

    try:
        await asyncio.gather(*(write(w) for w in range(writers)))
        await _outbox_empty(store, timeout=30.0)
    finally:
        await publisher.stop()
    total = writers * transactions * rows_each
    records = await read_topic(infrastructure.bootstrap, topic, expected=total + 1, timeout=5.0)
    assert len(records) == total and len({r.value for r in records}) == total
    by_writer: dict[bytes, list[bytes]] = defaultdict(list)
    for record in sorted(records, key=lambda r: (r.partition, r.offset)):
        by_writer[record.key].append(record.value)
    assert all(values == sorted(values) for values in by_writer.values())
    assert publisher.published == total


async def test_stop_drains_what_is_committed_before_it_returns(store, infrastructure, topic):
    publisher = OutboxRelay(infrastructure.dsn, store.schema, infrastructure.bootstrap, kafka=login(), batch_size=50)
    await publisher.start()
    values = [f"d{n:03}".encode() for n in range(400)]
    for first in range(0, len(values), 100):
        await _enqueue(store, topic, values[first : first + 100])
    await publisher.stop()  # drains for up to 3 s
    assert await _outbox_rows(store) == 0
    records = await read_topic(infrastructure.bootstrap, topic, expected=len(values) + 1, timeout=3.0)
    assert sorted(r.value for r in records) == values


async def test_a_second_relay_of_the_schema_waits_and_takes_over_when_the_first_stops(store, infrastructure, topic):
    first = OutboxRelay(infrastructure.dsn, store.schema, infrastructure.bootstrap, kafka=login())
    second = OutboxRelay(infrastructure.dsn, store.schema, infrastructure.bootstrap, kafka=login())
    await first.start()
    await _enqueue(store, topic, [b"one"])
    await _outbox_empty(store)
    await second.start()  # blocks on the schema's advisory lock
    await _enqueue(store, topic, [b"two"])
    await _outbox_empty(store)
    await first.stop()
    await _enqueue(store, topic, [b"three"])
    await _outbox_empty(store, timeout=20.0)
    await second.stop()
    assert (first.published, second.published) == (2, 1)
    records = await read_topic(infrastructure.bootstrap, topic, expected=4, timeout=3.0)
    assert sorted(r.value for r in records) == [b"one", b"three", b"two"]


async def test_a_relay_that_never_leads_stops_at_once(store, infrastructure):
    leader = OutboxRelay(infrastructure.dsn, store.schema, infrastructure.bootstrap, kafka=login())
    standby = OutboxRelay(infrastructure.dsn, store.schema, infrastructure.bootstrap, kafka=login())
    await leader.start()
    await asyncio.sleep(1.0)
    await standby.start()
    await asyncio.sleep(0.5)
    loop = asyncio.get_running_loop()
    began = loop.time()
    await standby.stop()
    assert loop.time() - began < 1.0
    await leader.stop()
