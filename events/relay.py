"""The outbox relay: publishes what services committed, in commit-safe order, to Kafka,
exactly once for read_committed consumers.

It drains the outbox as a queue (rows are deleted once Kafka committed them), so an event
whose transaction commits after a later-numbered one is still published: nothing is
skipped. It only takes rows of transactions older than every transaction still in flight
(`pg_snapshot_xmin`), so rows leave in the order their transactions became visible.

Each batch is one Kafka transaction (transactional id `farmlink.relay.<schema>`) holding
the rows and a checkpoint naming their outbox ids (topic farmlink.relay.checkpoints, keyed
by schema). A relay killed before the commit leaves an aborted transaction, which
read_committed consumers never see, and the rows are sent again. A relay killed after the
commit but before deleting the rows leaves a checkpoint: the next relay (starting the
producer fences the old one) reads the schema's last checkpoint and deletes those rows
instead of sending them twice. One relay per schema is active at a time (a session
advisory lock).
"""

import asyncio
import contextlib
import json
import logging

import asyncpg
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from contracts.topics import RELAY_CHECKPOINTS
from events.access import relay_transactional_id
from events.store import kafka_headers_of, outbox_channel

log = logging.getLogger(__name__)

BATCH_SIZE = 1000
CHECKPOINT_WINDOW = 2000  # checkpoints read per step when looking back for a schema's last one
READ_COMMITTED = "read_committed"
# A relay that dies mid-transaction holds back read_committed readers of the partitions it wrote
# until the next relay of its schema fences it or this timeout aborts it.
TRANSACTION_TIMEOUT_MS = 10_000
STABLE_TIMEOUT_S = 60.0


def idempotent_producer(bootstrap: str, **overrides) -> AIOKafkaProducer:
    """A producer that neither loses nor duplicates on retry: idempotence on, acks=all."""
    options = dict(
        bootstrap_servers=bootstrap,
        enable_idempotence=True,
        acks="all",
        linger_ms=2,
        max_batch_size=256 * 1024,
        request_timeout_ms=30000,
    )
    options.update(overrides)
    return AIOKafkaProducer(**options)


def transactional_producer(bootstrap: str, schema: str, **overrides) -> AIOKafkaProducer:
    """The relay's producer: idempotent, acks=all, and transactional with the id `farmlink.relay.<schema>`,
    so a new relay of the schema fences an old one and aborts what it left open."""
    options = {"transactional_id": relay_transactional_id(schema), "transaction_timeout_ms": TRANSACTION_TIMEOUT_MS} | overrides
    return idempotent_producer(bootstrap, **options)


async def _committed_rows(conn: asyncpg.Connection, schema: str, after: int, limit: int) -> list[asyncpg.Record]:
    """Outbox rows of transactions older than every transaction still in flight, after `after`."""
    return await conn.fetch(
        f"""SELECT outbox_id, topic, key, value, headers FROM "{schema}".outbox
            WHERE transaction_id < pg_snapshot_xmin(pg_current_snapshot()) AND outbox_id > $1
            ORDER BY outbox_id LIMIT $2""",
        after,
        limit,
    )


async def _delete(conn: asyncpg.Connection, schema: str, outbox_ids: list[int]) -> int:
    result = await conn.execute(f'DELETE FROM "{schema}".outbox WHERE outbox_id = ANY($1::bigint[])', outbox_ids)
    return int(result.split()[-1])


async def publish_pending(conn: asyncpg.Connection, schema: str, producer: AIOKafkaProducer, limit: int = BATCH_SIZE) -> int:
    """Publish everything committed so far, one Kafka transaction per batch with its checkpoint, and
    delete each batch once Kafka committed it; returns how many rows. Each call starts from the
    lowest id again, so a row whose transaction committed late is taken by the next call."""
    published = 0
    after = 0
    while True:
        rows = await _committed_rows(conn, schema, after, limit)
        if not rows:
            return published
        outbox_ids = [row["outbox_id"] for row in rows]
        async with producer.transaction():
            for row in rows:
                await producer.send(row["topic"], row["value"], key=row["key"], headers=kafka_headers_of(row["headers"]))
            await producer.send(RELAY_CHECKPOINTS, json.dumps({"schema": schema, "outbox_ids": outbox_ids}).encode(),
                                key=schema.encode())
        await _delete(conn, schema, outbox_ids)
        published += len(rows)
        after = outbox_ids[-1]


async def last_checkpoint(bootstrap: str, schema: str, **client_options) -> list[int]:
    """The outbox ids of the schema's last committed relay transaction (empty when there is none),
    looking back from the end of the checkpoint topic one window at a time.

    Call it after starting the schema's transactional producer (which ends the schema's own open
    transaction). It first waits until every transaction begun before it has ended (the last stable
    offset reaches the high watermark seen at the start), so no committed checkpoint is missed."""
    tp = TopicPartition(RELAY_CHECKPOINTS, 0)
    probe = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False, **client_options)
    await probe.start()
    try:
        high_watermark = (await probe.end_offsets([tp]))[tp]
    finally:
        await probe.stop()
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False, isolation_level=READ_COMMITTED,
                                **client_options)
    await consumer.start()
    try:
        consumer.assign([tp])
        start = (await consumer.beginning_offsets([tp]))[tp]
        deadline = asyncio.get_running_loop().time() + STABLE_TIMEOUT_S
        while (end := (await consumer.end_offsets([tp]))[tp]) < high_watermark:
            if asyncio.get_running_loop().time() > deadline:
                raise TimeoutError(f"{RELAY_CHECKPOINTS}: a transaction stayed open for {STABLE_TIMEOUT_S:.0f} s")
            await asyncio.sleep(0.1)
        key = schema.encode()
        upper = end
        while upper > start:
            lower = max(start, upper - CHECKPOINT_WINDOW)
            consumer.seek(tp, lower)
            found: list[int] | None = None
            while await consumer.position(tp) < upper:
                batch = await consumer.getmany(tp, timeout_ms=1000)
                for record in batch.get(tp, []):
                    if record.offset < upper and record.key == key:
                        found = json.loads(record.value)["outbox_ids"]
            if found is not None:
                return found
            upper = lower
        return []
    finally:
        await consumer.stop()


async def recover(conn: asyncpg.Connection, schema: str, bootstrap: str, **client_options) -> int:
    """Delete the rows the schema's last relay transaction committed to Kafka but did not delete; returns how many."""
    return await _delete(conn, schema, await last_checkpoint(bootstrap, schema, **client_options))


class OutboxRelay:
    """Runs until stopped: wakes on NOTIFY (or every `poll_interval` s) and drains the outbox."""

    def __init__(self, dsn: str, schema: str, bootstrap: str, poll_interval: float = 0.5, kafka: dict | None = None):
        self.dsn = dsn
        self.schema = schema
        self.bootstrap = bootstrap
        self.kafka = kafka or {}  # security options: events.settings.kafka_options(config, principal)
        self.poll_interval = poll_interval
        self._wake = asyncio.Event()
        self._task: asyncio.Task | None = None
        self._stopping = False
        self.published = 0

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name=f"outbox-relay-{self.schema}")

    async def stop(self, drain_timeout: float = 3.0) -> None:
        """Finish what was committed so far (up to `drain_timeout` s), then stop.

        On a graceful shutdown (SIGTERM) the consumers have finished their last batch, so
        draining first publishes its receipts and events now and deletes them, instead of
        leaving a batch that was sent but not yet deleted to be sent again after a restart.
        Whatever is left after the timeout stays in the outbox and goes out on the next start."""
        if self._task is None:
            return
        self._stopping = True
        self._wake.set()
        with contextlib.suppress(asyncio.TimeoutError, asyncio.CancelledError, Exception):
            await asyncio.wait_for(asyncio.shield(self._task), drain_timeout)
        if not self._task.done():
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _run(self) -> None:
        while not self._stopping:
            try:
                await self._lead()
            except asyncio.CancelledError:
                raise
            except Exception:  # the database or broker went away: start over after a pause
                if self._stopping:
                    return
                log.exception("outbox relay for %s failed; retrying", self.schema)
                await asyncio.sleep(1.0)

    async def _lead(self) -> None:
        conn = await asyncpg.connect(self.dsn)
        producer = transactional_producer(self.bootstrap, self.schema, **self.kafka)
        try:
            while not await conn.fetchval("SELECT pg_try_advisory_lock(hashtext('farmlink.relay.' || $1))", self.schema):
                await asyncio.sleep(self.poll_interval)
            await conn.add_listener(outbox_channel(self.schema), lambda *_: self._wake.set())
            await producer.start()  # fences a previous relay of this schema: its open transaction is aborted
            if recovered := await recover(conn, self.schema, self.bootstrap, **self.kafka):
                log.info("relay for %s: %d rows were already on Kafka (last checkpoint); deleted", self.schema, recovered)
            while True:
                self._wake.clear()
                count = await publish_pending(conn, self.schema, producer)
                self.published += count
                if count:
                    continue
                if self._stopping:  # drained: everything committed so far is out
                    return
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), self.poll_interval)
        finally:
            with contextlib.suppress(Exception):
                await producer.stop()
            with contextlib.suppress(Exception):
                await conn.close()
