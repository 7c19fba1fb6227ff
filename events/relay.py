"""The outbox relay: publishes what services committed, in commit-safe order, to Kafka.

It drains the outbox as a queue (rows are deleted once Kafka acknowledged them), so an
event whose transaction commits after a later-numbered one is still published: nothing
is skipped. It only takes rows of transactions older than every transaction still in
flight (`pg_snapshot_xmin`), so rows leave in the order their transactions became
visible. Publishing is batched through an idempotent producer (acks=all); a crash between
publishing and deleting republishes, and consumers deduplicate by event id (inbox).
One relay per schema is active at a time (a session advisory lock).
"""

import asyncio
import contextlib
import json
import logging

import asyncpg
from aiokafka import AIOKafkaProducer

from events.store import outbox_channel

log = logging.getLogger(__name__)

BATCH_SIZE = 1000


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


async def _committed_rows(conn: asyncpg.Connection, schema: str, after: int, limit: int) -> list[asyncpg.Record]:
    """Outbox rows of transactions older than every transaction still in flight, after `after`."""
    return await conn.fetch(
        f"""SELECT outbox_id, topic, key, value, headers FROM "{schema}".outbox
            WHERE transaction_id < pg_snapshot_xmin(pg_current_snapshot()) AND outbox_id > $1
            ORDER BY outbox_id LIMIT $2""",
        after,
        limit,
    )


async def _send(producer: AIOKafkaProducer, rows: list[asyncpg.Record]) -> asyncio.Future:
    deliveries = []
    for row in rows:
        headers = [(name, value.encode("latin-1")) for name, value in json.loads(row["headers"])]
        deliveries.append(await producer.send(row["topic"], row["value"], key=row["key"], headers=headers))
    return asyncio.gather(*deliveries)


async def _delete(conn: asyncpg.Connection, schema: str, rows: list[asyncpg.Record]) -> None:
    await conn.execute(f'DELETE FROM "{schema}".outbox WHERE outbox_id = ANY($1::bigint[])', [r["outbox_id"] for r in rows])


async def publish_pending(conn: asyncpg.Connection, schema: str, producer: AIOKafkaProducer, limit: int = BATCH_SIZE) -> int:
    """Publish everything committed so far and delete it once Kafka acknowledged it; returns how many.

    Batches are pipelined: the next batch is read and sent while the previous one's
    acknowledgements are awaited, then the previous one is deleted. Each call starts from the
    lowest id again, so a row whose transaction committed late is taken by the next call.
    """
    published = 0
    after = 0
    in_flight: tuple[list[asyncpg.Record], asyncio.Future] | None = None
    while True:
        rows = await _committed_rows(conn, schema, after, limit)
        acknowledged = await _send(producer, rows) if rows else None
        if in_flight is not None:
            sent_rows, acks = in_flight
            await acks
            await _delete(conn, schema, sent_rows)
            published += len(sent_rows)
        if not rows:
            return published
        in_flight = (rows, acknowledged)
        after = rows[-1]["outbox_id"]


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
        self.published = 0

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name=f"outbox-relay-{self.schema}")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _run(self) -> None:
        while True:
            try:
                await self._lead()
            except asyncio.CancelledError:
                raise
            except Exception:  # the database or broker went away: start over after a pause
                log.exception("outbox relay for %s failed; retrying", self.schema)
                await asyncio.sleep(1.0)

    async def _lead(self) -> None:
        conn = await asyncpg.connect(self.dsn)
        producer = idempotent_producer(self.bootstrap, **self.kafka)
        try:
            while not await conn.fetchval("SELECT pg_try_advisory_lock(hashtext('farmlink.relay.' || $1))", self.schema):
                await asyncio.sleep(self.poll_interval)
            await conn.add_listener(outbox_channel(self.schema), lambda *_: self._wake.set())
            await producer.start()
            while True:
                self._wake.clear()
                count = await publish_pending(conn, self.schema, producer)
                self.published += count
                if count:
                    continue
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), self.poll_interval)
        finally:
            with contextlib.suppress(Exception):
                await producer.stop()
            with contextlib.suppress(Exception):
                await conn.close()
