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

import asyncio
import base64
import json
import logging
import uuid
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Protocol

import asyncpg
import orjson

from contracts.envelope import Envelope
from contracts.model import Contract
from contracts.registry import EVENT_TOPIC, event_key
from events.hashchain import GENESIS, BrokenLink, canonical_bytes, canonical_json, hashed_content, link_hash, verify_chain
from events.migrations import check_schema_name

log = logging.getLogger(__name__)

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


class Routable(Protocol):
    """What a router reads of an event: an envelope, or the write path's StoredEvent."""

    @property
    def event_type(self) -> str: ...

    @property
    def stream_id(self) -> str: ...

    @property
    def payload(self) -> dict[str, Any]: ...


Router = Callable[[Routable], Route | None]


def default_router(envelope: Routable) -> Route | None:
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


def kafka_headers(envelope: "Envelope | StoredEvent") -> list[tuple[str, bytes | None]]:
    """Headers that let a consumer route and deduplicate without parsing the body."""
    return [
        ("event_id", str(envelope.event_id).encode()),
        ("event_type", envelope.event_type.encode()),
        ("schema_version", str(envelope.schema_version).encode()),
        ("correlation_id", envelope.correlation_id.encode()),
    ]


def envelope_bytes(envelope: "Envelope | StoredEvent") -> bytes:
    """The published form of an event: its envelope as canonical JSON."""
    if isinstance(envelope, StoredEvent):
        return canonical_bytes(envelope.wire())
    return canonical_json(envelope.model_dump(mode="json")).encode("utf-8")


def _wire_time(moment: datetime) -> str:
    """A time as the envelope model writes it (pydantic's JSON form: ISO 8601, UTC as Z)."""
    text = moment.isoformat()
    return text[:-6] + "Z" if text.endswith("+00:00") else text


@dataclass(slots=True)
class StoredEvent:
    """An event as the write path builds it: the envelope's fields, without the model's validation
    cost (`envelope()` gives the model). Its published bytes equal the model's
    (tests/unit/test_stored_event.py)."""

    event_id: uuid.UUID
    event_type: str
    schema_version: int
    stream_id: str
    stream_version: int
    occurred_at: datetime
    producer: str
    correlation_id: str
    causation_id: str | None
    payload: dict[str, Any]
    global_position: int | None
    prev_hash: str | None
    hash: str | None

    def wire(self) -> dict[str, Any]:
        """The envelope as JSON data, exactly as `Envelope.model_dump(mode="json")` gives it."""
        return {
            "event_id": str(self.event_id),
            "event_type": self.event_type,
            "schema_version": self.schema_version,
            "stream_id": self.stream_id,
            "stream_version": self.stream_version,
            "occurred_at": _wire_time(self.occurred_at),
            "producer": self.producer,
            "correlation_id": self.correlation_id,
            "causation_id": self.causation_id,
            "payload": self.payload,
            "global_position": self.global_position,
            "prev_hash": self.prev_hash,
            "hash": self.hash,
        }

    def envelope(self) -> Envelope:
        return Envelope.model_validate(self.wire())


def chain_envelopes(
    stream_id: str,
    events: Sequence[NewEvent],
    head: tuple[int, str],
    *,
    producer: str,
    correlation_id: str,
    causation_id: str | None,
    now: datetime,
) -> list[StoredEvent]:
    """The envelopes of new events after a stream's head (version, hash): versions and hash links
    computed here, in Python; the insert has the database verify them (`write_batch`)."""
    version, prev_hash = head
    envelopes = []
    for offset, new in enumerate(events, start=1):
        model = new.payload
        fields: dict[str, Any] = dict(
            event_id=new.event_id or uuid.uuid4(),
            event_type=model.event_type,  # type: ignore[attr-defined]
            schema_version=model.schema_version,  # type: ignore[attr-defined]
            stream_id=stream_id,
            stream_version=version + offset,
            occurred_at=new.occurred_at or now,
            producer=producer,
            correlation_id=correlation_id,
            causation_id=new.causation_id or causation_id,
            payload=model.model_dump(mode="json"),
        )
        digest = link_hash(prev_hash, hashed_content(**fields))
        envelopes.append(StoredEvent(**fields, global_position=None, prev_hash=prev_hash, hash=digest))
        prev_hash = digest
    return envelopes


OutboxRow = tuple[str, bytes | None, "bytes | tuple[bytes, bytes]", Sequence[tuple[str, bytes | None]], Any]
"""(topic, key, value, headers, event_id or None) of one message for the relay; the value of a new
event is the pair of bytes around its position (`event_outbox_rows`)."""


async def stream_heads(conn: asyncpg.Connection, schema: str, stream_ids: Sequence[str]) -> dict[str, tuple[int, str]]:
    """The (version, hash) of the last event of each stream that exists, in one query."""
    if not stream_ids:
        return {}
    # One backward index probe per stream (UNIQUE (stream_id, stream_version)), however long the stream.
    rows = await conn.fetch(
        f"""SELECT s.stream_id, e.stream_version, e.hash FROM unnest($1::text[]) AS s(stream_id)
            CROSS JOIN LATERAL (SELECT stream_version, hash FROM "{schema}".events
                                WHERE stream_id = s.stream_id ORDER BY stream_version DESC LIMIT 1) AS e""",
        list(stream_ids),
    )
    return {row["stream_id"]: (row["stream_version"], row["hash"]) for row in rows}


_POSITION_SENTINEL = 9_007_199_254_740_881  # stands for the position while the envelope is serialised


def event_outbox_rows(envelopes: Sequence[StoredEvent], router: Router) -> list[OutboxRow]:
    """The outbox rows of new events (each on its route; an event without one is not published).

    An event's position is handed out by the statement that stores it, so its published bytes
    are kept as the canonical JSON before and after the position (`value` is the pair), and the
    statement puts the two halves around the number (`write_batch`)."""
    rows: list[OutboxRow] = []
    for envelope in envelopes:
        route = router(envelope)
        if route is None:
            continue
        wire = envelope.wire()
        wire["global_position"] = _POSITION_SENTINEL
        whole = canonical_bytes(wire)
        prefix, _, suffix = whole.partition(str(_POSITION_SENTINEL).encode())
        if str(_POSITION_SENTINEL).encode() in suffix or b'"global_position":' + str(_POSITION_SENTINEL).encode() not in whole:
            raise ValueError(f"event {envelope.event_id}: its payload holds the position placeholder")
        rows.append((route.topic, route.key.encode(), (prefix, suffix), kafka_headers(envelope), envelope.event_id))
    return rows


def _write_statement(schema: str) -> str:
    q = f'"{schema}"'
    columns = _COLUMNS.removeprefix("global_position, ")
    return f"""
    WITH marked AS (
        INSERT INTO {q}.inbox (consumer, message_id, digest)
        SELECT * FROM unnest($1::text[], $2::text[], $3::text[])
        RETURNING 1),
    new AS (
        SELECT * FROM unnest($4::uuid[], $5::text[], $6::int[], $7::text[], $8::int[], $9::timestamptz[],
                             $10::text[], $11::text[], $12::text[], $13::jsonb[], $14::text[], $15::text[])
            WITH ORDINALITY AS n(event_id, stream_id, stream_version, event_type, schema_version, occurred_at,
                                 producer, correlation_id, causation_id, payload, prev_hash, hash, ord)),
    linked AS (
        SELECT stream_id, stream_version, prev_hash,
               lag(hash) OVER w AS batch_hash, lag(stream_version) OVER w AS batch_version
        FROM new WINDOW w AS (PARTITION BY stream_id ORDER BY stream_version)),
    broken AS (
        SELECT 1 FROM linked n
        WHERE (n.batch_version IS NOT NULL AND (n.batch_version <> n.stream_version - 1 OR n.prev_hash <> n.batch_hash))
           OR (n.batch_version IS NULL AND n.prev_hash IS DISTINCT FROM (CASE WHEN n.stream_version = 1 THEN '{GENESIS}' ELSE
               (SELECT e.hash FROM {q}.events e WHERE e.stream_id = n.stream_id AND e.stream_version = n.stream_version - 1) END))
        LIMIT 1),
    stored AS (
        INSERT INTO {q}.events ({columns})
        SELECT {columns} FROM new WHERE NOT EXISTS (SELECT 1 FROM broken) ORDER BY ord
        RETURNING event_id, global_position),
    published AS (
        SELECT o.ord, o.topic, o.key, o.prefix || convert_to(s.global_position::text, 'UTF8') || o.suffix AS value,
               o.headers, o.event_id
        FROM unnest($16::text[], $17::bytea[], $18::bytea[], $19::bytea[], $20::jsonb[], $21::uuid[])
             WITH ORDINALITY AS o(topic, key, prefix, suffix, headers, event_id, ord)
        JOIN stored s ON s.event_id = o.event_id),
    queued AS (
        INSERT INTO {q}.outbox (topic, key, value, headers, event_id)
        SELECT topic, key, value, headers, event_id FROM (
            SELECT ord, topic, key, value, headers, event_id FROM published
            UNION ALL
            SELECT cardinality($21::uuid[]) + m.ord, m.topic, m.key, m.value, m.headers, NULL::uuid
            FROM unnest($22::text[], $23::bytea[], $24::bytea[], $25::jsonb[]) WITH ORDINALITY AS m(topic, key, value, headers, ord)
        ) AS rows
        WHERE (SELECT count(*) FROM stored) = cardinality($4::uuid[])
        ORDER BY ord
        RETURNING 1)
    SELECT (SELECT count(*) FROM marked) AS marked,
           (SELECT array_agg(event_id) FROM stored) AS event_ids, (SELECT array_agg(global_position) FROM stored) AS positions,
           (SELECT count(*) FROM queued) AS queued"""


async def write_batch(
    conn: asyncpg.Connection,
    schema: str,
    *,
    inbox: Sequence[tuple[str, str, str | None]] = (),
    envelopes: Sequence[StoredEvent] = (),
    outbox: Sequence[OutboxRow] = (),
) -> list[StoredEvent]:
    """Inbox marks, events and outbox rows in ONE statement, which also hands out the events'
    positions (and puts them into their published bytes). Returns the events with their positions.
    It does not NOTIFY: a NOTIFY takes a database-wide lock through its transaction's commit and
    so would serialise every writer's commit; the caller rings the relay's doorbell after the
    commit instead (`Doorbell`).

    The database verifies what Python computed: every event's version follows its stream's head
    (UNIQUE (stream_id, stream_version)) and its prev_hash is the hash of the event before it
    (or GENESIS); if any link does not hold, nothing of the statement is written and
    ConcurrencyError is raised. A message id already in the inbox raises ConcurrencyError too
    (another instance handled it first): reload and decide again. `outbox` rows of events come
    from `event_outbox_rows`; other rows (receipts, dead letters) carry their whole value."""
    if not (inbox or envelopes or outbox):
        return []
    e = envelopes
    of_events = [r for r in outbox if isinstance(r[2], tuple)]
    plain = [r for r in outbox if not isinstance(r[2], tuple)]
    try:
        row = await conn.fetchrow(
            _write_statement(schema),
            [c for c, _, _ in inbox],
            [m for _, m, _ in inbox],
            [d for _, _, d in inbox],
            [x.event_id for x in e],
            [x.stream_id for x in e],
            [x.stream_version for x in e],
            [x.event_type for x in e],
            [x.schema_version for x in e],
            [x.occurred_at for x in e],
            [x.producer for x in e],
            [x.correlation_id for x in e],
            [x.causation_id for x in e],
            [canonical_json(x.payload) for x in e],
            [x.prev_hash for x in e],
            [x.hash for x in e],
            [r[0] for r in of_events],
            [r[1] for r in of_events],
            [r[2][0] for r in of_events],
            [r[2][1] for r in of_events],
            [outbox_headers(r[3]) for r in of_events],
            [r[4] for r in of_events],
            [r[0] for r in plain],
            [r[1] for r in plain],
            [r[2] for r in plain],
            [outbox_headers(r[3]) for r in plain],
        )
    except asyncpg.UniqueViolationError as error:
        constraint = error.constraint_name or ""
        if "event_id" in constraint:
            raise
        first = e[0] if e else None
        raise ConcurrencyError(first.stream_id if first else f"inbox of {schema}", -1) from error
    stored = len(row["event_ids"] or ())
    if stored != len(e):
        raise ConcurrencyError(e[0].stream_id, e[0].stream_version - 1)
    positions = dict(zip(row["event_ids"] or (), row["positions"] or ()))
    for x in e:  # new records, made for this write
        x.global_position = positions[x.event_id]
    return list(e)


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


async def append_events(
    conn: asyncpg.Connection,
    schema: str,
    producer: str,
    router: Router,
    stream_id: str,
    events: Sequence[NewEvent],
    expected_version: int | None,
    *,
    correlation_id: str,
    causation_id: str | None = None,
    head: tuple[int, str] | None = None,
) -> list[StoredEvent]:
    """Append to one stream without a lock: one statement for a new stream (expected version 0:
    the database refuses it if the stream exists) or a `head` (version, hash) the caller knows,
    else the head is read first; the statement writes events and outbox rows and verifies
    versions and links, so a wrong head is refused like a stale version."""
    if head is None and expected_version == 0:
        head = (0, GENESIS)
    elif head is None:
        head = (await stream_heads(conn, schema, [stream_id])).get(stream_id, (0, GENESIS))
    if expected_version is not None and expected_version != head[0]:
        raise ConcurrencyError(stream_id, expected_version, head[0])
    envelopes = chain_envelopes(
        stream_id,
        events,
        head,
        producer=producer,
        correlation_id=correlation_id,
        causation_id=causation_id,
        now=datetime.now(timezone.utc),
    )
    try:
        return await write_batch(conn, schema, envelopes=envelopes, outbox=event_outbox_rows(envelopes, router))
    except ConcurrencyError as conflict:  # name where the stream is now
        actual = (await stream_heads(conn, schema, [stream_id])).get(stream_id, (0, GENESIS))[0]
        raise ConcurrencyError(stream_id, head[0] if expected_version is None else expected_version, actual) from conflict


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
    return orjson.dumps(items).decode()


def kafka_headers_of(stored: str) -> list[tuple[str, bytes | None]]:
    """The Kafka headers of an outbox row (see outbox_headers)."""
    headers: list[tuple[str, bytes | None]] = []
    for name, value, *tag in json.loads(stored):
        if tag == ["base64"]:
            headers.append(
                (
                    base64.b64decode(name).decode("utf-8", "surrogateescape"),
                    base64.b64decode(value) if value is not None else None,
                )
            )
        else:
            headers.append((name, value.encode("latin-1") if value is not None else None))
    return headers


def outbox_channel(schema: str) -> str:
    """The LISTEN/NOTIFY channel that wakes a schema's relay."""
    return f"farmlink_outbox_{schema}"


class Doorbell:
    """Wakes a schema's relay after a commit: a NOTIFY on the channel, sent in a transaction of its
    own (so no writer's commit waits on NOTIFY's lock), at most one in flight; rings that come
    meanwhile are folded into one more. A ring lost to a crash costs nothing: a relay drains
    everything when it starts."""

    def __init__(self, pool: asyncpg.Pool, channel: str):
        self.pool = pool
        self.channel = channel
        self._task: asyncio.Task[None] | None = None
        self._again = False

    def ring(self) -> None:
        if self._task is not None and not self._task.done():
            self._again = True
            return
        self._task = asyncio.get_running_loop().create_task(self._notify())

    async def _notify(self) -> None:
        while True:
            self._again = False
            try:
                await self.pool.execute("SELECT pg_notify($1, '')", self.channel)
            except Exception:  # the relay drains on its own start and on its next wake-up
                log.debug("doorbell %s: NOTIFY failed", self.channel, exc_info=True)
            if not self._again:
                return


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
        """Every event after `from_position`, in commit order (see `_pages`), fetched in batches on one connection."""
        async with self.pool.acquire() as conn:
            async for row in _pages(conn, self.schema, _COLUMNS, from_position, batch_size):
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
