"""The PostgreSQL event store: streams with optimistic concurrency, a global log, hash links,
and an outbox written in the same transaction as the events.

Appends hold no lock across their commit, so concurrent writers of a schema share fsyncs
(group commit). Global positions come from a sequence; a position taken later may commit
earlier, so readers walk the log in commit order, (transaction id, position) below the oldest
transaction still open, and never miss an event that commits late (the pitfall in
shared/architecture.md; `_pages`). Versions and hash links are computed in Python and
verified by the database in the statement that writes them (`write_batch`). The outbox
relay does not depend on positions: it drains a queue.
"""

import json
from collections import OrderedDict
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import asyncpg
import orjson

from contracts.envelope import Envelope
from events.hashchain import BrokenLink, verify_chain
from events.migrations import check_schema_name
from events.outbox import (
    Doorbell,
    OutboxRow,
    event_outbox_rows,
    kafka_headers_of,
    outbox_channel,
    outbox_headers,
)
from events.stored import (
    EVENT_COLUMNS,
    ConcurrencyError,
    NewEvent,
    Route,
    Routable,
    Router,
    StoredEvent,
    chain_envelopes,
    default_router,
    envelope_bytes,
    envelope_from_row,
    kafka_headers,
)
from events.write import append_events, stream_heads, write_batch

__all__ = [
    "ConcurrencyError",
    "Doorbell",
    "EventStore",
    "NewEvent",
    "OutboxRow",
    "Route",
    "Routable",
    "Router",
    "StoredEvent",
    "UnitOfWork",
    "append_events",
    "chain_envelopes",
    "create_pool",
    "default_router",
    "envelope_bytes",
    "envelope_from_row",
    "event_outbox_rows",
    "kafka_headers",
    "kafka_headers_of",
    "outbox_channel",
    "outbox_headers",
    "stream_heads",
    "verify_chains",
    "write_batch",
]


@dataclass
class UnitOfWork:
    """One PostgreSQL transaction in a service schema, statement by statement: appends, outbox
    rows, inbox marks. (Services handle batches with `events.unit.BatchUnitOfWork`, which writes
    each table once per batch; this one serves single appends, tools and tests.)"""

    conn: asyncpg.Connection
    schema: str
    producer: str
    router: Router
    appended: list[StoredEvent] = field(default_factory=list)

    async def append(
        self,
        stream_id: str,
        events: Sequence[NewEvent],
        expected_version: int | None,
        *,
        correlation_id: str,
        causation_id: str | None = None,
    ) -> list[StoredEvent]:
        """Append events to a stream at `expected_version` (events already in it; None: any).

        Raises ConcurrencyError when the stream has moved on.
        """
        if not events:
            return []
        stored = await append_events(
            self.conn,
            self.schema,
            self.producer,
            self.router,
            stream_id,
            events,
            expected_version,
            correlation_id=correlation_id,
            causation_id=causation_id,
        )
        self.appended += stored
        return stored

    async def enqueue(
        self, topic: str, key: str | bytes | None, value: bytes, headers: Sequence[tuple[str, bytes | None]] = ()
    ) -> None:
        """Queue a message that is not a stored event (a receipt, a dead letter) for the relay."""
        key_bytes = key.encode() if isinstance(key, str) else key
        await write_batch(self.conn, self.schema, outbox=[(topic, key_bytes, value, list(headers), None)])

    async def first_time(self, consumer: str, message_id: str, digest: str | None = None) -> bool:
        """Record in the inbox that `consumer` processed `message_id` (with its content's digest); False when it already had."""
        row = await self.conn.fetchrow(
            f'INSERT INTO "{self.schema}".inbox (consumer, message_id, digest) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING RETURNING 1',
            consumer,
            message_id,
            digest,
        )
        return row is not None


async def _pages(
    conn: asyncpg.Connection,
    schema: str,
    columns: str,
    from_position: int,
    batch_size: int,
    event_types: Sequence[str] | None = None,
) -> AsyncIterator[asyncpg.Record]:
    """Rows of a schema's events after a position in commit order, a page at a time.

    Commit order is (transaction id, position): appends hold no lock across their commit, so a
    later position may commit first; a reader takes only transactions older than every one still
    in flight (`pg_snapshot_xmin`), in transaction-id order, and so never skips an event that
    commits late. Within one writer this is position order. `from_position` names an event: the
    pages continue after it."""
    q = f'"{schema}"'
    start = (0, 0)
    if from_position:
        xid = await conn.fetchval(
            f"SELECT transaction_id::text::bigint FROM {q}.events WHERE global_position = $1", from_position
        )
        start = (xid if xid is not None else 0, from_position)
    types = "AND event_type = ANY($4::text[])" if event_types is not None else ""
    statement = await conn.prepare(
        f"""SELECT {columns}, transaction_id::text::bigint AS _xid FROM {q}.events
            WHERE (transaction_id, global_position) > ($1::text::xid8, $2::bigint)
              AND transaction_id < pg_snapshot_xmin(pg_current_snapshot()) {types}
            ORDER BY transaction_id, global_position LIMIT $3"""
    )
    xid, position = start
    while True:
        args = (str(xid), position, batch_size) + ((list(event_types),) if event_types is not None else ())
        rows = await statement.fetch(*args)
        for row in rows:
            yield row
        if len(rows) < batch_size:
            return
        xid, position = rows[-1]["_xid"], rows[-1]["global_position"]


async def _end_open_transaction(conn: asyncpg.Connection) -> None:
    """What a connection needs before it goes back to the pool: no transaction left open. (asyncpg's
    default reset, a round trip of RESET ALL and friends per use, would undo no state we keep: the
    store sets nothing on a session, only SET LOCAL inside transactions.)"""
    if conn.is_in_transaction():
        await conn.execute("ROLLBACK")


async def create_pool(dsn: str, **options: Any) -> asyncpg.Pool:
    """A connection pool for an event store, without a reset round trip per use."""
    return await asyncpg.create_pool(dsn, reset=_end_open_transaction, **options)


class EventStore:
    """A service's event store in its own PostgreSQL schema."""

    HEADS_KEPT = 10_000

    def __init__(self, pool: asyncpg.Pool, schema: str, producer: str, router: Router = default_router):
        self.pool = pool
        self.schema = check_schema_name(schema)
        self.producer = producer
        self.router = router
        # The heads of streams this store appended to lately: an append at the version it left a
        # stream needs no read first. A stale head (someone else appended) is refused by the
        # database like any stale version, and forgotten.
        self._heads: OrderedDict[str, tuple[int, str]] = OrderedDict()
        self.doorbell = Doorbell(pool, outbox_channel(self.schema))

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[UnitOfWork]:
        """A unit of work: everything in it commits together or not at all."""
        async with self.pool.acquire() as conn:
            async with conn.transaction():
                await conn.execute(f'SET LOCAL search_path TO "{self.schema}"')
                yield UnitOfWork(conn, self.schema, self.producer, self.router)
            self.doorbell.ring()

    async def append(
        self,
        stream_id: str,
        events: Sequence[NewEvent],
        expected_version: int | None,
        *,
        correlation_id: str,
        causation_id: str | None = None,
    ) -> list[StoredEvent]:
        """Append outside any open transaction: the events and their outbox rows are one statement
        (see `append_events`), so they commit together or not at all. One round trip when the
        stream is new (expected version 0) or this store left it at `expected_version`."""
        known = self._heads.get(stream_id)
        head = known if known is not None and known[0] == expected_version else None
        async with self.pool.acquire() as conn:
            try:
                stored = await append_events(
                    conn,
                    self.schema,
                    self.producer,
                    self.router,
                    stream_id,
                    events,
                    expected_version,
                    correlation_id=correlation_id,
                    causation_id=causation_id,
                    head=head,
                )
            except ConcurrencyError:
                self._heads.pop(stream_id, None)
                raise
        self.doorbell.ring()
        if stored:
            self._heads[stream_id] = (stored[-1].stream_version, stored[-1].hash or "")
            self._heads.move_to_end(stream_id)
            if len(self._heads) > self.HEADS_KEPT:
                self._heads.popitem(last=False)
        return stored

    async def read_stream(self, stream_id: str, from_version: int = 1) -> list[Envelope]:
        """A stream's events in order."""
        rows = await self.pool.fetch(
            f'SELECT {EVENT_COLUMNS} FROM "{self.schema}".events WHERE stream_id = $1 AND stream_version >= $2 ORDER BY stream_version',
            stream_id,
            from_version,
        )
        return [envelope_from_row(row) for row in rows]

    async def stream_version(self, stream_id: str) -> int:
        """How many events a stream holds (0: it does not exist)."""
        version = await self.pool.fetchval(
            f'SELECT max(stream_version) FROM "{self.schema}".events WHERE stream_id = $1', stream_id
        )
        return version or 0

    async def read_all(self, from_position: int = 0, batch_size: int = 5000) -> AsyncIterator[Envelope]:
        """Every event after `from_position`, in commit order (see `_pages`), fetched in batches on one connection."""
        async with self.pool.acquire() as conn:
            async for row in _pages(conn, self.schema, EVENT_COLUMNS, from_position, batch_size):
                yield envelope_from_row(row)

    async def read_all_payloads(
        self, from_position: int = 0, batch_size: int = 5000, event_types: Sequence[str] | None = None
    ) -> AsyncIterator[tuple[int, str, dict[str, Any]]]:
        """(global position, event type, payload) of every event after `from_position`: what a projection folds.

        The fast path for replays: three columns, no envelope validation, optionally only some event types.
        """
        async with self.pool.acquire() as conn:
            async for row in _pages(
                conn, self.schema, "global_position, event_type, payload::text", from_position, batch_size, event_types
            ):
                yield row[0], row[1], orjson.loads(row[2])

    async def read_chain_rows(self) -> AsyncIterator[tuple[str, list[dict[str, Any]]]]:
        """Every stream's rows as the hash chain check wants them, stream by stream."""
        rows = await self.pool.fetch(
            f'SELECT {EVENT_COLUMNS} FROM "{self.schema}".events ORDER BY stream_id, stream_version, global_position'
        )
        current: str | None = None
        batch: list[dict[str, Any]] = []
        for row in rows:
            item = dict(row)
            item["payload"] = json.loads(item["payload"])
            if item["stream_id"] != current and batch:
                yield current, batch  # type: ignore[misc]
                batch = []
            current = item["stream_id"]
            batch.append(item)
        if batch:
            yield current, batch  # type: ignore[misc]


async def verify_chains(store: EventStore) -> list[BrokenLink]:
    """The first broken link of every stream whose hash chain does not hold (empty: all hold)."""
    broken = []
    async for stream_id, rows in store.read_chain_rows():
        link = verify_chain(stream_id, rows)
        if link is not None:
            broken.append(link)
    return broken
