"""The relay's pipeline (events/relay.py tells the whole design): reading and building the next batch, the Kafka
transaction of the current one and deleting the rows of committed ones, overlapping; and the statements it reads and
deletes with."""

import asyncio
import contextlib
import json
import logging
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import asyncpg
from aiokafka import AIOKafkaProducer
from aiokafka.partitioner import DefaultPartitioner

from contracts.topics import RELAY_CHECKPOINTS
from events.outbox import kafka_headers_of

log = logging.getLogger(__name__)

BATCH_SIZE = 1000
BUILT_AHEAD = 1  # batches read and built while the current one is in its Kafka transaction
MAX_UNDELETED = 3  # committed batches whose delete has not committed yet, at most (each checkpoint names them)
RECHECK_FIRST_S = 0.005  # first pause before looking again at rows that wait behind an older open transaction
IDLE_PROBE_S = 30.0  # a quiet relay checks that its PostgreSQL connections still answer this often
QUERY_TIMEOUT_S = 60.0
BUILD_SLICE = 100  # rows built between two turns of the event loop (the transaction in flight goes on)
NO_UPPER_BOUND = 2**63 - 1


def select_sql(schema: str, *, continuing: bool, excluding: bool) -> str:
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


async def delete_rows(conn: asyncpg.Connection, schema: str, outbox_ids: list[int]) -> int:
    result = await conn.execute(
        f'DELETE FROM "{schema}".outbox WHERE outbox_id = ANY($1::bigint[])', outbox_ids, timeout=QUERY_TIMEOUT_S
    )
    return int(result.split()[-1])


@dataclass(eq=False)
class Batch:
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


class Pipeline:
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
            (continuing, excluding): select_sql(schema, continuing=continuing, excluding=excluding)
            for continuing in (False, True)
            for excluding in (False, True)
        }
        self._last_xmin = 0  # the xmin of the read that set the last id read from
        self._built: asyncio.Queue[Batch | None] = asyncio.Queue(maxsize=BUILT_AHEAD)
        self._taken: list[Batch] = []  # read and not yet deleted: later reads leave their rows out
        self._undeleted: list[Batch] = []  # committed to Kafka, delete not committed yet
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
        """The lowest-id eligible rows no batch in the pipeline took (see `Batch`). Reading on above
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

    async def _build(self, rows: list[asyncpg.Record], start: int) -> Batch:
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
        return Batch(ids, start, hi, rows[0]["xmin"], records)

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
                await delete_rows(self.delete_conn, self.schema, [i for batch in batches for i in batch.ids])
            for batch in batches:
                self._undeleted.remove(batch)
                self._taken.remove(batch)
            self._deleted.set()
