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

The work is pipelined in three steps that overlap (`_Pipeline`): reading and building the
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
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import aiokafka.producer.sender
import asyncpg
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.partitioner import DefaultPartitioner

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

BUILT_AHEAD = 1  # batches read and built while the current one is in its Kafka transaction
MAX_UNDELETED = 3  # committed batches whose delete has not committed yet, at most (each checkpoint names them)
RECHECK_FIRST_S = 0.005  # first pause before looking again at rows that wait behind an older open transaction
IDLE_PROBE_S = 30.0  # a quiet relay checks that its PostgreSQL connections still answer this often
QUERY_TIMEOUT_S = 60.0
BUILD_SLICE = 100  # rows built between two turns of the event loop (the transaction in flight goes on)
# The transaction coordinator answers AddPartitionsToTxn with CONCURRENT_TRANSACTIONS while it
# still writes the previous transaction's markers (a few ms), which back-to-back transactions hit
# often; aiokafka then pauses 20 ms (its module constant BACKOFF_OVERRIDE, no producer option),
# as long as a whole transaction of ours. Measured here, transactions of 1,000 prebuilt messages
# went from 53-74k to 88-130k messages/s with 2 ms. Only transactional producers read it.
CONCURRENT_TRANSACTIONS_BACKOFF_S = 0.002
NO_UPPER_BOUND = 2**63 - 1


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


def _select_sql(schema: str, *, continuing: bool, excluding: bool) -> str:
    """Committed rows (of transactions older than every one in flight) after an id ($1), lowest
    first, at most $2, with the snapshot's xmin.

    `continuing` (reading on above the last id of the previous read, whose xmin is $3): no row
    at all when a row at or below $1 that no read took has become eligible since ($3 <= its
    transaction id < xmin now), so that the caller reads again from the lowest id instead of
    overtaking it. `excluding` leaves out the rows that batches still in the pipeline took
    (ranges lo < id <= hi with transaction id below that read's xmin, in three arrays)."""
    xmin = "(SELECT pg_snapshot_xmin(pg_current_snapshot()))"  # once per statement (an InitPlan)
    conditions = ""
    n = 2
    if continuing:
        n += 1
        conditions += f"""
            AND NOT EXISTS (SELECT FROM "{schema}".outbox b WHERE ${n}::xid8 < {xmin}
                            AND b.transaction_id >= ${n}::xid8 AND b.transaction_id < {xmin}
                            AND b.outbox_id + 0 <= $1)"""  # + 0: walk outbox_transaction (004_relay.sql), a narrow range
    if excluding:
        conditions += f"""
            AND NOT EXISTS (SELECT FROM unnest(${n + 1}::bigint[], ${n + 2}::bigint[], ${n + 3}::xid8[]) AS t(lo, hi, xmin)
                            WHERE o.outbox_id > t.lo AND o.outbox_id <= t.hi AND o.transaction_id < t.xmin)"""
    return f"""SELECT o.outbox_id, o.topic, o.key, o.value, o.headers, {xmin} AS xmin FROM "{schema}".outbox o
               WHERE o.transaction_id < {xmin} AND o.outbox_id > $1{conditions}
               ORDER BY o.outbox_id LIMIT $2"""


async def _delete(conn: asyncpg.Connection, schema: str, outbox_ids: list[int]) -> int:
    result = await conn.execute(
        f'DELETE FROM "{schema}".outbox WHERE outbox_id = ANY($1::bigint[])', outbox_ids, timeout=QUERY_TIMEOUT_S
    )
    return int(result.split()[-1])


@dataclass(eq=False)
class _Batch:
    """Rows read in one statement, built into Kafka record batches, published in one transaction.

    Every row with lo < outbox_id <= hi whose transaction_id < xmin (the statement's snapshot)
    is in this batch or in one read before it: while this batch is not deleted, later reads
    leave such rows out (hi is the last id when the read was cut by its limit, else unbounded)."""

    ids: list[int]
    lo: int
    hi: int
    xmin: int
    records: list[tuple[str, int, Any]]  # (topic, partition, aiokafka BatchBuilder), closed
    rows: int = field(init=False)
    ids_json: str = field(init=False)  # "1,2,3": checkpoints join these, off the transaction's path

    def __post_init__(self) -> None:
        self.rows = len(self.ids)
        self.ids_json = ",".join(map(str, self.ids))


class _Pipeline:
    """Reads, publishes and deletes outbox rows with the three steps overlapping.

    - read: the next rows (lowest ids first, below xmin, none a batch in the pipeline took) are
      read and built into Kafka record batches while the current transaction is in flight;
    - transact: one Kafka transaction at a time (one transactional producer): the record
      batches, then the checkpoint naming this batch's ids and those of every committed batch
      whose delete has not committed yet; the produce acknowledgements are awaited before the
      commit (a failed record batch aborts the transaction);
    - delete: the rows of committed batches, on a second connection, several batches per DELETE.

    With `follow`, reading waits for NOTIFY when caught up and ends only once `stopping()` and
    everything committed is out; otherwise it ends when it is caught up.
    """

    def __init__(
        self,
        schema: str,
        producer: AIOKafkaProducer,
        read_conn: asyncpg.Connection,
        delete_conn: asyncpg.Connection,
        limit: int = BATCH_SIZE,
        *,
        follow: bool = False,
        wake: asyncio.Event | None = None,
        stopping: Callable[[], bool] = lambda: False,
        recheck_cap: float = 0.5,
        on_published: Callable[[int], None] = lambda n: None,
    ):
        self.schema = schema
        self.producer = producer
        self.read_conn = read_conn
        self.delete_conn = delete_conn
        # One connection for both (publish_pending with one connection): its statements take turns.
        self._shared = asyncio.Lock() if read_conn is delete_conn else None
        self.limit = limit
        self.follow = follow
        self.wake = wake or asyncio.Event()
        self.stopping = stopping
        self.recheck_cap = recheck_cap
        self.on_published = on_published
        self.published = 0
        self.lost: BaseException | None = None
        self._selects = {
            (continuing, excluding): _select_sql(schema, continuing=continuing, excluding=excluding)
            for continuing in (False, True)
            for excluding in (False, True)
        }
        self._last_xmin = 0  # the xmin of the read that set the last id read from
        self._built: asyncio.Queue[_Batch | None] = asyncio.Queue(maxsize=BUILT_AHEAD)
        self._taken: list[_Batch] = []  # read and not yet deleted: later reads leave their rows out
        self._undeleted: list[_Batch] = []  # committed to Kafka, delete not committed yet
        self._committed = asyncio.Event()  # the deleter has work, or the transactions are over
        self._deleted = asyncio.Event()  # a delete committed
        self._transactions_over = False
        self._partitioner = DefaultPartitioner()
        self._partitions: dict[str, list[int]] = {}
        self._partition_of: dict[tuple[str, bytes], int] = {}
        self._key = schema.encode()
        self._schema_json = json.dumps(schema)

    async def run(self) -> int:
        """Publish until done (see the class); returns how many rows. The first failure of any step
        stops the others and is raised as it is."""
        tasks = [
            asyncio.create_task(step(), name=f"relay-{self.schema}-{step.__name__.strip('_')}")
            for step in (self._read, self._transact, self._delete_committed)
        ]
        try:
            pending = set(tasks)
            while pending:
                done, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_EXCEPTION)
                for task in done:
                    if task.exception() is not None:
                        raise task.exception()  # type: ignore[misc]
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        return self.published

    def connection_lost(self, error: BaseException) -> None:
        self.lost = error
        self.wake.set()

    @contextlib.asynccontextmanager
    async def _turn(self) -> AsyncIterator[None]:
        if self._shared is None:
            yield
        else:
            async with self._shared:
                yield

    # read ---------------------------------------------------------------------------------

    async def _read(self) -> None:
        start = 0
        armed, waiting, pause = False, False, RECHECK_FIRST_S
        while True:
            if self.lost is not None:
                raise ConnectionError(f"relay {self.schema}: PostgreSQL connection lost") from self.lost
            if self.follow and start == 0 and not armed:
                # Clear the wake-up, then look for rows waiting behind an open transaction, then
                # read: a row the read below cannot take yet was either already committed (so it
                # is counted here) or commits later (and its NOTIFY sets the wake-up again).
                self.wake.clear()
                waiting = await self._rows_waiting()
                armed = True
            rows = await self._read_rows(start)
            if rows:
                batch = await self._build(rows, start)
                self._taken.append(batch)
                await self._built.put(batch)
                pause = RECHECK_FIRST_S
                # A full batch: read on above it. Else look again from the lowest id (rows whose
                # transaction ended late), leaving out what the pipeline holds.
                start = batch.hi if len(rows) == self.limit else 0
                self._last_xmin = batch.xmin
                continue
            if start:  # nothing above, or a row below became eligible: from the lowest id again
                start = 0
                continue
            if not self.follow or self.stopping():
                break
            if waiting:  # committed rows wait behind an older open transaction: no NOTIFY comes when it ends
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(self.wake.wait(), pause)
                pause = min(pause * 2, self.recheck_cap)
            else:
                await self._sleep_until_woken()
            armed = False
        await self._built.put(None)

    async def _sleep_until_woken(self) -> None:
        while True:
            try:
                await asyncio.wait_for(self.wake.wait(), IDLE_PROBE_S)
                return
            except asyncio.TimeoutError:  # a long quiet spell: make sure NOTIFY can still reach us
                async with self._turn():  # (a dead delete connection fails its next DELETE)
                    await self.read_conn.fetchval("SELECT 1", timeout=QUERY_TIMEOUT_S)

    async def _rows_waiting(self) -> bool:
        async with self._turn():
            return bool(
                await self.read_conn.fetchval(  # a range of transaction ids: outbox_transaction (004_relay.sql)
                    f"""SELECT EXISTS (SELECT FROM "{self.schema}".outbox
                                   WHERE transaction_id >= (SELECT pg_snapshot_xmin(pg_current_snapshot()))
                                     AND transaction_id < (SELECT pg_snapshot_xmax(pg_current_snapshot())))""",
                    timeout=QUERY_TIMEOUT_S,
                )
            )

    async def _read_rows(self, start: int) -> list[asyncpg.Record]:
        """The lowest-id eligible rows no batch in the pipeline took (see `_Batch`). Reading on above
        `start` > 0 returns nothing when a row below became eligible since the previous read: every
        row at or below `start` that no read took had a transaction id at or above that read's xmin."""
        taken = [batch for batch in self._taken if batch.hi > start]
        args: list[Any] = [start, self.limit]
        if start:
            args.append(self._last_xmin)
        if taken:
            args += [[b.lo for b in taken], [b.hi for b in taken], [b.xmin for b in taken]]
        async with self._turn():
            rows: list[asyncpg.Record] = await self.read_conn.fetch(
                self._selects[(bool(start), bool(taken))], *args, timeout=QUERY_TIMEOUT_S
            )
            return rows

    async def _build(self, rows: list[asyncpg.Record], start: int) -> _Batch:
        """Kafka record batches for the rows, per topic and partition, in outbox id order (the
        producer's partitioner: murmur2 of the key, as `send` does)."""
        producer = self.producer
        for topic, known in list(self._partitions.items()):  # a topic that gained partitions: keys move
            if sorted(await producer.partitions_for(topic)) != known:
                await self._partition(topic, None)
        open_builders: dict[tuple[str, int], Any] = {}
        records = []
        ids = []
        partition_of = self._partition_of
        for n, (outbox_id, topic, key, value, headers, _) in enumerate(rows, 1):
            if n % BUILD_SLICE == 0:  # let the transaction in flight go on between slices
                await asyncio.sleep(0)
            ids.append(outbox_id)
            partition = partition_of.get((topic, key)) if key is not None else None
            if partition is None:
                partition = await self._partition(topic, key)
            builder = open_builders.get((topic, partition))
            kafka_headers = [] if headers == "[]" else kafka_headers_of(headers)
            if builder is None or builder.append(timestamp=None, key=key, value=value, headers=kafka_headers) is None:
                builder = producer.create_batch()
                builder.append(timestamp=None, key=key, value=value, headers=kafka_headers)  # an empty batch takes any record
                open_builders[(topic, partition)] = builder
                records.append((topic, partition, builder))
        for _, _, builder in records:
            builder.close()
        hi = ids[-1] if len(rows) == self.limit else NO_UPPER_BOUND
        return _Batch(ids, start, hi, rows[0]["xmin"], records)

    async def _partition(self, topic: str, key: bytes | None) -> int:
        partitions = sorted(await self.producer.partitions_for(topic))
        if partitions != self._partitions.get(topic):
            self._partitions[topic] = partitions
            for stale in [k for k in self._partition_of if k[0] == topic]:
                del self._partition_of[stale]
        partition: int = self._partitioner(key, partitions, partitions)
        if key is not None:
            if len(self._partition_of) > 100_000:
                self._partition_of.clear()
            self._partition_of[(topic, key)] = partition
        return partition

    # transact -----------------------------------------------------------------------------

    async def _transact(self) -> None:
        producer = self.producer
        checkpoint_partition = await self._partition(RELAY_CHECKPOINTS, self._key)
        try:
            while (batch := await self._built.get()) is not None:
                while len(self._undeleted) >= MAX_UNDELETED:
                    self._deleted.clear()
                    await self._deleted.wait()
                await producer.begin_transaction()
                try:
                    deliveries = [
                        await producer.send_batch(builder, topic, partition=partition)
                        for topic, partition, builder in batch.records
                    ]
                    # Every id published by a committed transaction and not yet deleted (deletes run
                    # concurrently; one that commits after this is read only makes the list longer).
                    outbox_ids = ",".join(b.ids_json for b in (*self._undeleted, batch))
                    checkpoint = producer.create_batch()
                    checkpoint.append(
                        timestamp=None,
                        key=self._key,
                        headers=[],
                        value=f'{{"schema": {self._schema_json}, "outbox_ids": [{outbox_ids}]}}'.encode(),
                    )
                    checkpoint.close()
                    deliveries.append(await producer.send_batch(checkpoint, RELAY_CHECKPOINTS, partition=checkpoint_partition))
                    await asyncio.gather(*deliveries)
                except Exception:
                    await self._abort()
                    raise
                await producer.commit_transaction()
                self._undeleted.append(batch)
                self._committed.set()
                self.published += batch.rows
                self.on_published(batch.rows)
        finally:
            self._transactions_over = True
            self._committed.set()

    async def _abort(self) -> None:
        """Abort the open transaction if the producer still can (else the next relay's fencing or the
        transaction timeout does)."""
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.producer.abort_transaction(), 5.0)

    # delete -------------------------------------------------------------------------------

    async def _delete_committed(self) -> None:
        while True:
            if not self._undeleted:
                if self._transactions_over:
                    return
                self._committed.clear()
                await self._committed.wait()
                continue
            batches = list(self._undeleted)
            async with self._turn():
                await _delete(self.delete_conn, self.schema, [i for batch in batches for i in batch.ids])
            for batch in batches:
                self._undeleted.remove(batch)
                self._taken.remove(batch)
            self._deleted.set()


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
    return await _Pipeline(schema, producer, conn, delete_conn or conn, limit).run()


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
    return await _delete(conn, schema, await last_checkpoint(bootstrap, schema, **client_options))


class OutboxRelay:
    """Runs until stopped: wakes on NOTIFY and drains the outbox (pipelined, see `_Pipeline`).

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
            pipeline = _Pipeline(
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
