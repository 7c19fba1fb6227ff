"""The PostgreSQL event store: streams with optimistic concurrency, a global log, hash links,
and an outbox written in the same transaction as the events.

Global positions are handed out in commit order: an append takes a transaction-scoped
advisory lock (one per schema) just before it inserts, and holds it until commit, so a
reader that asks for "everything after position P" never misses an event that commits
late (the pitfall in shared/architecture.md). The outbox relay does not depend on that:
it drains a queue.
"""

import base64
import json
import uuid
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

import asyncpg
import orjson

from contracts.envelope import Envelope
from contracts.model import Contract
from contracts.registry import EVENT_TOPIC, event_key
from events.hashchain import GENESIS, BrokenLink, canonical_json, hashed_content, link_hash, verify_chain
from events.migrations import check_schema_name

_COLUMNS = (
    "global_position, event_id, stream_id, stream_version, event_type, schema_version, occurred_at, "
    "producer, correlation_id, causation_id, payload, prev_hash, hash"
)


class ConcurrencyError(Exception):
    """Someone else appended to the stream first: reload and decide again."""

    def __init__(self, stream_id: str, expected_version: int, actual_version: int | None = None):
        self.stream_id = stream_id
        self.expected_version = expected_version
        self.actual_version = actual_version
        actual = "" if actual_version is None else f", but it is at version {actual_version}"
        super().__init__(f"stream {stream_id!r}: expected version {expected_version}{actual}")


@dataclass(frozen=True)
class NewEvent:
    """An event to append: its payload model and, where it must be deterministic, its id and time."""

    payload: Contract
    event_id: uuid.UUID | None = None
    occurred_at: datetime | None = None
    causation_id: str | None = None


@dataclass(frozen=True)
class Route:
    """Where an event is published: topic and key. None from a router: not published."""

    topic: str
    key: str


Router = Callable[[Envelope], Route | None]


def default_router(envelope: Envelope) -> Route | None:
    """Publish each event on its type's topic, keyed by product where there is one."""
    topic = EVENT_TOPIC.get(envelope.event_type)
    if topic is None:
        return None
    return Route(topic, event_key(envelope.event_type, envelope.stream_id, envelope.payload))


def envelope_from_row(row: asyncpg.Record) -> Envelope:
    """Rebuild an envelope from a stored row."""
    return Envelope(
        event_id=row["event_id"],
        event_type=row["event_type"],
        schema_version=row["schema_version"],
        stream_id=row["stream_id"],
        stream_version=row["stream_version"],
        occurred_at=row["occurred_at"],
        producer=row["producer"],
        correlation_id=row["correlation_id"],
        causation_id=row["causation_id"],
        payload=orjson.loads(row["payload"]),
        global_position=row["global_position"],
        prev_hash=row["prev_hash"],
        hash=row["hash"],
    )


def kafka_headers(envelope: Envelope) -> list[tuple[str, bytes]]:
    """Headers that let a consumer route and deduplicate without parsing the body."""
    return [
        ("event_id", str(envelope.event_id).encode()),
        ("event_type", envelope.event_type.encode()),
        ("schema_version", str(envelope.schema_version).encode()),
        ("correlation_id", envelope.correlation_id.encode()),
    ]


def envelope_bytes(envelope: Envelope) -> bytes:
    """The published form of an event: its envelope as canonical JSON."""
    return canonical_json(envelope.model_dump(mode="json")).encode("utf-8")


@dataclass
class UnitOfWork:
    """One PostgreSQL transaction in a service schema: appends, outbox rows, inbox marks, projections."""

    conn: asyncpg.Connection
    schema: str
    producer: str
    router: Router
    appended: list[Envelope] = field(default_factory=list)
    _locked: bool = False

    async def append(
        self,
        stream_id: str,
        events: Sequence[NewEvent],
        expected_version: int | None,
        *,
        correlation_id: str,
        causation_id: str | None = None,
    ) -> list[Envelope]:
        """Append events to a stream at `expected_version` (events already in it; None: any).

        Raises ConcurrencyError when the stream has moved on.
        """
        if not events:
            return []
        last = await self.conn.fetchrow(
            "SELECT stream_version, hash FROM events WHERE stream_id = $1 ORDER BY stream_version DESC LIMIT 1",
            stream_id,
        )
        version, prev_hash = (last["stream_version"], last["hash"]) if last else (0, GENESIS)
        if expected_version is not None and expected_version != version:
            raise ConcurrencyError(stream_id, expected_version, version)
        envelopes = []
        now = datetime.now(timezone.utc)
        for offset, new in enumerate(events, start=1):
            model = new.payload
            payload = model.model_dump(mode="json")
            fields: dict[str, Any] = dict(
                event_id=new.event_id or uuid.uuid4(),
                event_type=model.event_type,  # type: ignore[attr-defined]
                schema_version=model.schema_version,  # type: ignore[attr-defined]
                stream_id=stream_id,
                stream_version=version + offset,
                occurred_at=new.occurred_at or now,
                producer=self.producer,
                correlation_id=correlation_id,
                causation_id=new.causation_id or causation_id,
                payload=payload,
            )
            digest = link_hash(prev_hash, hashed_content(**fields))
            envelopes.append(Envelope(**fields, prev_hash=prev_hash, hash=digest))
            prev_hash = digest
        await self._lock_positions()
        try:
            positions = await self.conn.fetch(
                f"""INSERT INTO events ({_COLUMNS.removeprefix('global_position, ')})
                SELECT * FROM unnest($1::uuid[], $2::text[], $3::int[], $4::text[], $5::int[], $6::timestamptz[],
                                     $7::text[], $8::text[], $9::text[], $10::jsonb[], $11::text[], $12::text[])
                RETURNING global_position""",
                [e.event_id for e in envelopes],
                [e.stream_id for e in envelopes],
                [e.stream_version for e in envelopes],
                [e.event_type for e in envelopes],
                [e.schema_version for e in envelopes],
                [e.occurred_at for e in envelopes],
                [e.producer for e in envelopes],
                [e.correlation_id for e in envelopes],
                [e.causation_id for e in envelopes],
                [canonical_json(e.payload) for e in envelopes],
                [e.prev_hash for e in envelopes],
                [e.hash for e in envelopes],
            )
        except asyncpg.UniqueViolationError as error:
            if "event_id" in (error.constraint_name or ""):
                raise
            raise ConcurrencyError(stream_id, version) from error
        stored = [e.model_copy(update={"global_position": row["global_position"]}) for e, row in zip(envelopes, positions)]
        await self._enqueue_events(stored)
        self.appended += stored
        return stored

    def savepoint_rolled_back(self) -> None:
        """A savepoint was rolled back: a position lock taken inside it went with it, take it again when needed."""
        self._locked = False

    async def _lock_positions(self) -> None:
        if not self._locked:
            await self.conn.execute("SELECT pg_advisory_xact_lock(hashtext('farmlink.append.' || $1))", self.schema)
            self._locked = True

    async def _enqueue_events(self, envelopes: Sequence[Envelope]) -> None:
        rows = []
        for envelope in envelopes:
            route = self.router(envelope)
            if route is not None:
                rows.append((route.topic, route.key.encode(), envelope_bytes(envelope), kafka_headers(envelope), envelope.event_id))
        await self._insert_outbox(rows)

    async def enqueue(
        self, topic: str, key: str | bytes | None, value: bytes, headers: Sequence[tuple[str, bytes | None]] = ()
    ) -> None:
        """Queue a message that is not a stored event (a receipt, a dead letter) for the relay."""
        key_bytes = key.encode() if isinstance(key, str) else key
        await self._insert_outbox([(topic, key_bytes, value, list(headers), None)])

    async def _insert_outbox(self, rows: Sequence[tuple[str, bytes | None, bytes, list[tuple[str, bytes]], Any]]) -> None:
        """All rows in one statement, which also wakes the relay (NOTIFY is delivered at commit)."""
        if not rows:
            return
        await self.conn.execute(
            """WITH queued AS (
                   INSERT INTO outbox (topic, key, value, headers, event_id)
                   SELECT * FROM unnest($1::text[], $2::bytea[], $3::bytea[], $4::jsonb[], $5::uuid[])
                   RETURNING 1)
               SELECT pg_notify($6, '') FROM (SELECT count(*) FROM queued) AS done""",
            [t for t, _, _, _, _ in rows],
            [k for _, k, _, _, _ in rows],
            [v for _, _, v, _, _ in rows],
            [outbox_headers(hs) for _, _, _, hs, _ in rows],
            [e for _, _, _, _, e in rows],
            outbox_channel(self.schema),
        )

    async def first_time(self, consumer: str, message_id: str, digest: str | None = None) -> bool:
        """Record in the inbox that `consumer` processed `message_id` (with its content's digest); False when it already had."""
        row = await self.conn.fetchrow(
            "INSERT INTO inbox (consumer, message_id, digest) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING RETURNING 1",
            consumer,
            message_id,
            digest,
        )
        return row is not None

    async def inbox_digest(self, consumer: str, message_id: str) -> str | None:
        """The digest recorded with a processed message id (None when unknown)."""
        return await self.conn.fetchval("SELECT digest FROM inbox WHERE consumer = $1 AND message_id = $2", consumer, message_id)


async def _pages(
    conn: asyncpg.Connection, select: str, from_position: int, batch_size: int, event_types: tuple = ()
) -> AsyncIterator[asyncpg.Record]:
    """Rows of `select` after a position, in global order, a page at a time (keyset paging)."""
    where = "WHERE global_position > $1" + (" AND event_type = ANY($3::text[])" if event_types else "")
    statement = await conn.prepare(f"{select} {where} ORDER BY global_position LIMIT $2")
    position = from_position
    while True:
        rows = await statement.fetch(position, batch_size, *event_types)
        for row in rows:
            yield row
        if len(rows) < batch_size:
            return
        position = rows[-1][0]


def outbox_headers(headers: Sequence[tuple[str, bytes | None]]) -> str:
    """Kafka headers as the outbox keeps them (jsonb): [name, latin-1 text] pairs; a header
    jsonb cannot hold (a NUL character) as [base64 name, base64 value, "base64"]; a null value stays null."""
    items = []
    for name, value in headers:
        if "\x00" in name or (value is not None and b"\x00" in value):
            encoded = base64.b64encode(value).decode() if value is not None else None
            items.append([base64.b64encode(name.encode("utf-8", "surrogateescape")).decode(), encoded, "base64"])
        else:
            items.append([name, value.decode("latin-1") if value is not None else None])
    return json.dumps(items)


def kafka_headers_of(stored: str) -> list[tuple[str, bytes | None]]:
    """The Kafka headers of an outbox row (see outbox_headers)."""
    headers: list[tuple[str, bytes | None]] = []
    for name, value, *tag in json.loads(stored):
        if tag == ["base64"]:
            headers.append((base64.b64decode(name).decode("utf-8", "surrogateescape"), base64.b64decode(value) if value is not None else None))
        else:
            headers.append((name, value.encode("latin-1") if value is not None else None))
    return headers


def outbox_channel(schema: str) -> str:
    """The LISTEN/NOTIFY channel that wakes a schema's relay."""
    return f"farmlink_outbox_{schema}"


class EventStore:
    """A service's event store in its own PostgreSQL schema."""

    def __init__(self, pool: asyncpg.Pool, schema: str, producer: str, router: Router = default_router):
        self.pool = pool
        self.schema = check_schema_name(schema)
        self.producer = producer
        self.router = router

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[UnitOfWork]:
        """A unit of work: everything in it commits together or not at all."""
        async with self.pool.acquire() as conn, conn.transaction():
            await conn.execute(f'SET LOCAL search_path TO "{self.schema}"')
            yield UnitOfWork(conn, self.schema, self.producer, self.router)

    async def append(
        self,
        stream_id: str,
        events: Sequence[NewEvent],
        expected_version: int | None,
        *,
        correlation_id: str,
        causation_id: str | None = None,
    ) -> list[Envelope]:
        """Append in a transaction of its own (see UnitOfWork.append)."""
        async with self.transaction() as uow:
            return await uow.append(
                stream_id, events, expected_version, correlation_id=correlation_id, causation_id=causation_id
            )

    async def read_stream(self, stream_id: str, from_version: int = 1) -> list[Envelope]:
        """A stream's events in order."""
        rows = await self.pool.fetch(
            f'SELECT {_COLUMNS} FROM "{self.schema}".events WHERE stream_id = $1 AND stream_version >= $2 ORDER BY stream_version',
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
        """Every event after `from_position`, in global order, fetched in batches on one connection."""
        async with self.pool.acquire() as conn:
            async for row in _pages(conn, f'SELECT {_COLUMNS} FROM "{self.schema}".events', from_position, batch_size):
                yield envelope_from_row(row)

    async def read_all_payloads(
        self, from_position: int = 0, batch_size: int = 5000, event_types: Sequence[str] | None = None
    ) -> AsyncIterator[tuple[int, str, dict[str, Any]]]:
        """(global position, event type, payload) of every event after `from_position`: what a projection folds.

        The fast path for replays: three columns, no envelope validation, optionally only some event types.
        """
        query = f'SELECT global_position, event_type, payload::text FROM "{self.schema}".events'
        filters = (list(event_types),) if event_types is not None else ()
        async with self.pool.acquire() as conn:
            async for row in _pages(conn, query, from_position, batch_size, filters):
                yield row[0], row[1], orjson.loads(row[2])

    async def read_chain_rows(self) -> AsyncIterator[tuple[str, list[dict[str, Any]]]]:
        """Every stream's rows as the hash chain check wants them, stream by stream."""
        rows = await self.pool.fetch(
            f'SELECT {_COLUMNS} FROM "{self.schema}".events ORDER BY stream_id, stream_version, global_position'
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
