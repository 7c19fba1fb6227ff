"""The outbox relay: publishes what services committed, in commit-safe order, to Kafka,
exactly once for read_committed consumers.

It drains the outbox as a queue (rows are deleted once Kafka committed them), so an event
whose transaction commits after a later-numbered one is still published: nothing is
skipped. It only takes rows of transactions older than every transaction still in flight
(`pg_snapshot_xmin`), so rows leave in the order their transactions became visible.

Each batch is one Kafka transaction (transactional id `farmlink.relay.<schema>`) holding
the rows and a checkpoint (topic farmlink.relay.checkpoints, keyed by schema) naming every
outbox id that a committed transaction of this relay has published and whose delete is not
yet known to have committed: the batch's own ids and those of earlier batches still being
deleted. A relay killed before a commit leaves an aborted transaction, which read_committed
consumers never see, and the rows are sent again. A relay killed after a commit leaves a
checkpoint: the next relay (starting the producer fences the old one) reads the schema's
last checkpoint and deletes those rows instead of sending them twice. One relay per schema
is active at a time (a session advisory lock).

The work is pipelined in three steps that overlap (`Pipeline`): reading and building the
next batch (PostgreSQL, then the Kafka record batches, partitioned here), the Kafka
transaction of the current one (one at a time: one transactional producer), and deleting
the rows of committed ones (a second PostgreSQL connection). Recovery stays exact although
deletes lag behind commits: transactions of one producer commit one after another, and the
checkpoint of transaction N is written after N-1 committed, naming N's ids and every id of
an earlier committed transaction whose DELETE had not committed yet. So after a crash every
row that is on Kafka but still in the outbox is named by the last committed checkpoint, and
every id that checkpoint names is on Kafka (deleting an id twice deletes nothing). A batch
read while earlier ones are still in the pipeline leaves their rows out: each batch records
the id range its read covered and the snapshot's xmin, and every row in that range below
that xmin was taken by it.

The relay sleeps until NOTIFY wakes it; it looks again on its own only while committed rows
wait behind an older transaction that is still open (no NOTIFY comes when that one ends),
with a growing pause, and checks its connections after a long quiet spell.
"""

import asyncio
import contextlib
import json
import logging
import sys
import time
from typing import Any

import aiokafka.producer.sender
import asyncpg
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from contracts.topics import RELAY_CHECKPOINTS
from events.access import relay_transactional_id
from events.outbox import outbox_channel
from events.relay_pipeline import BATCH_SIZE, Pipeline, delete_rows

__all__ = [
    "BATCH_SIZE",
    "OutboxRelay",
    "idempotent_producer",
    "last_checkpoint",
    "publish_pending",
    "recover",
    "transactional_producer",
]

log = logging.getLogger(__name__)

CHECKPOINT_WINDOW = 2000  # checkpoints read per step when looking back for a schema's last one
READ_COMMITTED = "read_committed"
# A relay that dies mid-transaction holds back read_committed readers of the partitions it wrote
# until the next relay of its schema fences it or this timeout aborts it.
TRANSACTION_TIMEOUT_MS = 10_000
STABLE_TIMEOUT_S = 60.0

# The transaction coordinator answers AddPartitionsToTxn with CONCURRENT_TRANSACTIONS while it
# still writes the previous transaction's markers (a few ms), which back-to-back transactions hit
# often; aiokafka then pauses 20 ms (its module constant BACKOFF_OVERRIDE, no producer option),
# as long as a whole transaction of ours. Measured here, transactions of 1,000 prebuilt messages
# went from 53-74k to 88-130k messages/s with 2 ms. Only transactional producers read it.
CONCURRENT_TRANSACTIONS_BACKOFF_S = 0.002


def idempotent_producer(bootstrap: str, **overrides: Any) -> AIOKafkaProducer:
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


def transactional_producer(bootstrap: str, schema: str, **overrides: Any) -> AIOKafkaProducer:
    """The relay's producer: idempotent, acks=all, and transactional with the id `farmlink.relay.<schema>`,
    so a new relay of the schema fences an old one and aborts what it left open."""
    options = {"transactional_id": relay_transactional_id(schema), "transaction_timeout_ms": TRANSACTION_TIMEOUT_MS} | overrides
    if getattr(aiokafka.producer.sender, "BACKOFF_OVERRIDE", None) is not None:
        aiokafka.producer.sender.BACKOFF_OVERRIDE = CONCURRENT_TRANSACTIONS_BACKOFF_S
    return idempotent_producer(bootstrap, **options)


async def publish_pending(
    conn: asyncpg.Connection,
    schema: str,
    producer: AIOKafkaProducer,
    limit: int = BATCH_SIZE,
    *,
    delete_conn: asyncpg.Connection | None = None,
) -> int:
    """Publish everything committed so far, one Kafka transaction per batch with its checkpoint, and
    delete each batch once Kafka committed it; returns how many rows. Reading the next batch and
    deleting committed ones overlap the current transaction (on `delete_conn` when given, else
    taking turns on `conn`). Rows leave lowest id first among those eligible: a row whose transaction
    ended late goes out before any row above it read later."""
    return await Pipeline(schema, producer, conn, delete_conn or conn, limit).run()


async def last_checkpoint(bootstrap: str, schema: str, **client_options: Any) -> list[int]:
    """The outbox ids named by the schema's last committed relay transaction (empty when there is
    none): every row a committed transaction published and whose delete may not have committed,
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
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, enable_auto_commit=False, isolation_level=READ_COMMITTED, **client_options
    )
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


async def recover(conn: asyncpg.Connection, schema: str, bootstrap: str, **client_options: Any) -> int:
    """Delete the rows the schema's last relay transactions committed to Kafka but did not delete; returns how many."""
    return await delete_rows(conn, schema, await last_checkpoint(bootstrap, schema, **client_options))


class OutboxRelay:
    """Runs until stopped: wakes on NOTIFY and drains the outbox (pipelined, see `Pipeline`).

    It looks again without a NOTIFY only while committed rows wait behind an older transaction
    that is still open: after 5 ms, then twice as long each time, at most `poll_interval` s apart.
    A lost PostgreSQL connection (or one that stops answering the check after 30 quiet seconds)
    makes it start over: reconnect, recover, read from the lowest id."""

    def __init__(
        self,
        dsn: str,
        schema: str,
        bootstrap: str,
        poll_interval: float = 0.5,
        kafka: dict[str, Any] | None = None,
        batch_size: int = BATCH_SIZE,
    ):
        self.dsn = dsn
        self.schema = schema
        self.bootstrap = bootstrap
        self.kafka = kafka or {}  # security options: events.settings.kafka_options(config, principal)
        self.poll_interval = poll_interval
        self.batch_size = batch_size
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._stopping = False
        self._leading = False
        self.published = 0
        self.failure: str | None = None  # the last error that made the relay start over, and when (time.time())
        self.failure_at: float | None = None

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name=f"outbox-relay-{self.schema}")

    async def stop(self, drain_timeout: float = 3.0) -> None:
        """Finish what was committed so far (up to `drain_timeout` s), then stop.

        On a graceful shutdown (SIGTERM) the consumers have finished their last batch, so
        draining first publishes its receipts and events now and deletes them, instead of
        leaving a batch that was sent but not yet deleted to be sent again after a restart.
        Whatever is left after the timeout stays in the outbox and goes out on the next start.
        A relay waiting for another one of its schema to let go has nothing to drain."""
        if self._task is None:
            return
        self._stopping = True
        self._wake.set()
        if self._leading:
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
                self.failure, self.failure_at = _describe(sys.exc_info()[1]), time.time()
                await asyncio.sleep(1.0)

    def wake_if_leading(self) -> bool:
        """Wake this relay when it leads its schema (a writer in this process just committed); False when it does not
        lead, so the writer rings another process's relay by NOTIFY (`events.outbox.Doorbell`)."""
        if self._leading:
            self._wake.set()
            return True
        return False

    def _published(self, rows: int) -> None:
        self.published += rows
        self.failure = self.failure_at = None

    async def _lead(self) -> None:
        conn = await asyncpg.connect(self.dsn)
        delete_conn: asyncpg.Connection | None = None
        producer = transactional_producer(self.bootstrap, self.schema, **self.kafka)
        try:
            # Blocks while another relay of this schema holds it; its session ending lets go.
            await conn.fetchval("SELECT pg_advisory_lock(hashtext('farmlink.relay.' || $1))", self.schema)
            self._leading = True
            delete_conn = await asyncpg.connect(self.dsn)
            pipeline = Pipeline(
                self.schema,
                producer,
                conn,
                delete_conn,
                self.batch_size,
                follow=True,
                wake=self._wake,
                stopping=lambda: self._stopping,
                recheck_cap=self.poll_interval,
                on_published=self._published,
            )
            for each in (conn, delete_conn):
                each.add_termination_listener(lambda _c: pipeline.connection_lost(ConnectionError("terminated")))
            await conn.add_listener(outbox_channel(self.schema), lambda *_: self._wake.set())
            await producer.start()  # fences a previous relay of this schema: its open transaction is aborted
            if recovered := await recover(delete_conn, self.schema, self.bootstrap, **self.kafka):
                log.info("relay for %s: %d rows were already on Kafka (last checkpoint); deleted", self.schema, recovered)
            await pipeline.run()  # returns once stopping and drained
        finally:
            self._leading = False
            with contextlib.suppress(Exception):
                await producer.stop()
            for each in (conn, delete_conn):
                if each is not None:
                    with contextlib.suppress(Exception):
                        await asyncio.wait_for(each.close(), 5.0)
                    each.terminate()


def _describe(error: BaseException | None) -> str:
    """One line for `farmlink status`: the error's type and first line."""
    if error is None:
        return "unknown error"
    text = str(error).strip().splitlines()[0] if str(error).strip() else ""
    return f"{type(error).__name__}: {text}"[:300] if text else type(error).__name__
