"""The batch-shaped unit of work: a service handles a whole Kafka batch in one PostgreSQL
transaction with a fixed number of round trips, however many messages it holds.

1. one query finds which message ids the inbox already holds;
2. the service loads, in bulk, what its decisions need (`Service.load`: a few queries for the
   whole batch, stream heads among them) into an in-memory view;
3. each message is decided on its own by a pure handler (`Service.handlers`, a map from input
   type to function) against the view; its events, outbox rows, inbox mark and projection rows
   are staged; a domain rejection discards only that message's stage and dead-letters it;
4. the batch is written: inbox marks, events and outbox rows in ONE statement (the database
   verifies every version and hash link computed here), projection rows with one statement per
   table; then one commit.

A database error (SQLSTATE class 22: data the database cannot store) is isolated by bisecting
the batch: each half is handled again in a transaction of its own, down to the one message
that causes it, which is dead-lettered with the database's reason. A conflict with another
writer (ConcurrencyError) retries the whole batch from step 1.

Without PostgreSQL, `MemoryUnitOfWork` keeps the whole state as its view and `decide_one` runs
step 3 on it with the same handlers (farmlink simulate: farmlink/offline.py).
"""

from __future__ import annotations

import hashlib
import logging
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

import asyncpg
from tenacity import AsyncRetrying, retry_if_exception_type, stop_after_attempt, wait_exponential

from contracts.inputs import SequenceMarker
from contracts.topics import DEAD_LETTER, SEQUENCE_HEADER, SEQUENCE_MARKERS
from events import metrics
from events.consumer import Decoded, Delivery, Rejection, dead_letter_headers, describe, shorten, DEAD_LETTER_MAX_BYTES
from events.hashchain import GENESIS
from events.store import (
    ConcurrencyError,
    EventStore,
    NewEvent,
    OutboxRow,
    Router,
    StoredEvent,
    chain_envelopes,
    event_outbox_rows,
    stream_heads,
    write_batch,
)

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Table:
    """A projection table a service writes: its key columns and every column with its PostgreSQL type,
    in table order. Rows are written once per batch, in their final state (`upsert_sql`)."""

    name: str
    key: tuple[str, ...]
    columns: tuple[tuple[str, str], ...]

    @property
    def column_names(self) -> tuple[str, ...]:
        return tuple(name for name, _ in self.columns)

    def upsert_sql(self, schema: str) -> str:
        names = ", ".join(self.column_names)
        arrays = ", ".join(f"${i}::{kind}[]" for i, (_, kind) in enumerate(self.columns, start=1))
        rest = [name for name in self.column_names if name not in self.key]
        conflict = f"DO UPDATE SET {', '.join(f'{n} = EXCLUDED.{n}' for n in rest)}" if rest else "DO NOTHING"
        return (
            f'INSERT INTO "{schema}".{self.name} ({names}) SELECT * FROM unnest({arrays}) '
            f"ON CONFLICT ({', '.join(self.key)}) {conflict}"
        )

    def insert_sql(self, schema: str) -> str:
        names = ", ".join(self.column_names)
        arrays = ", ".join(f"${i}::{kind}[]" for i, (_, kind) in enumerate(self.columns, start=1))
        return f'INSERT INTO "{schema}".{self.name} ({names}) SELECT * FROM unnest({arrays}) ON CONFLICT DO NOTHING'

    def patch_sql(self, schema: str, names: Sequence[str]) -> str:
        """UPDATE some columns of existing rows, keyed by the table's key, from arrays (keys first)."""
        kinds = dict(self.columns)
        fields = [*self.key, *names]
        arrays = ", ".join(f"${i}::{kinds[name]}[]" for i, name in enumerate(fields, start=1))
        sets = ", ".join(f"{n} = u.{n}" for n in names)
        match = " AND ".join(f"t.{k} = u.{k}" for k in self.key)
        return f'UPDATE "{schema}".{self.name} AS t SET {sets} FROM unnest({arrays}) AS u({", ".join(fields)}) WHERE {match}'

    def add_sql(self, schema: str, counters: Sequence[str]) -> str:
        """Add to counters (insert the row when it is new): for sums many batches touch at once."""
        names = ", ".join(self.column_names)
        arrays = ", ".join(f"${i}::{kind}[]" for i, (_, kind) in enumerate(self.columns, start=1))
        sets = ", ".join(f"{c} = {self.name}.{c} + EXCLUDED.{c}" for c in counters)
        return (
            f'INSERT INTO "{schema}".{self.name} ({names}) SELECT * FROM unnest({arrays}) '
            f"ON CONFLICT ({', '.join(self.key)}) DO UPDATE SET {sets}"
        )


@dataclass
class _Stage:
    """What one message did, kept apart until it is known to be accepted."""

    view: dict[tuple[str, Any], Any] = field(default_factory=dict)
    heads: dict[str, tuple[int, str]] = field(default_factory=dict)
    envelopes: list[StoredEvent] = field(default_factory=list)
    messages: list[tuple[str, bytes | None, bytes, Sequence[tuple[str, bytes | None]]]] = field(default_factory=list)
    rows: list[tuple[Table, Any, dict[str, Any]]] = field(default_factory=list)
    inserts: list[tuple[Table, Any, dict[str, Any]]] = field(default_factory=list)
    patches: list[tuple[Table, Any, dict[str, Any]]] = field(default_factory=list)
    additions: list[tuple[Table, tuple[Any, ...], dict[str, Any]]] = field(default_factory=list)
    inbox: list[tuple[str, str, str | None]] = field(default_factory=list)
    carry: list[tuple[str, bytes]] = field(default_factory=list)


_MISSING = object()


class BatchUnitOfWork:
    """One batch's view and staged writes. Handlers read the view (`get`, `stream_version`) and
    stage effects (`append`, `put`, `add`, `enqueue`); nothing touches the database until `write`."""

    def __init__(self, schema: str, producer: str, router: Router, now: datetime | None = None):
        self.schema = schema
        self.producer = producer
        self.router = router
        self.now = now or datetime.now(timezone.utc)
        self.view: dict[tuple[str, Any], Any] = {}
        self.heads: dict[str, tuple[int, str]] = {}
        self.seen: dict[tuple[str, str], str | None] = {}  # (consumer, message id) -> digest, inbox and this batch
        self.envelopes: list[StoredEvent] = []
        self.messages: list[tuple[str, bytes | None, bytes, Sequence[tuple[str, bytes | None]]]] = []
        self.rows: dict[str, tuple[Table, dict[Any, dict[str, Any]]]] = {}
        self.inserts: dict[str, tuple[Table, dict[Any, dict[str, Any]]]] = {}
        self.patches: dict[str, tuple[Table, dict[Any, dict[str, Any]]]] = {}
        self.additions: dict[str, tuple[Table, tuple[str, ...], dict[tuple[Any, ...], dict[str, Any]]]] = {}
        self.inbox: list[tuple[str, str, str | None]] = []
        self.carried: dict[Any, list[tuple[str, bytes]]] = {}  # event id -> headers its input's record passes on
        self.outcomes: Counter[tuple[str, str, str]] = Counter()  # (consumer, type, accepted|rejected) -> messages
        self._stage = _Stage()

    # -- the view --------------------------------------------------------------------------
    def load(self, name: str, rows: Mapping[Any, Any]) -> None:
        """Put what a bulk query found into the view, under `name` (a table or any lookup the service defines)."""
        for key, value in rows.items():
            self.view[(name, key)] = value

    def absent(self, name: str, keys: Iterable[Any]) -> None:
        """Record that the bulk query found nothing for these keys (so `get` answers None, not KeyError)."""
        for key in keys:
            self.view.setdefault((name, key), None)

    def get(self, name: str, key: Any, default: Any = None) -> Any:
        """The current value under (name, key): this message's own changes first, then the batch's, then what was loaded."""
        value = self._stage.view.get((name, key), _MISSING)
        if value is _MISSING:
            value = self.view.get((name, key), default)
        return value

    def set(self, name: str, key: Any, value: Any) -> None:
        """Change the view only (a lookup later messages of the batch must see); nothing is written."""
        self._stage.view[(name, key)] = value

    def stream_version(self, stream_id: str) -> int:
        """Events in the stream, counting this batch's (0: it does not exist). Its head must have been loaded."""
        return self._head(stream_id)[0]

    def _head(self, stream_id: str) -> tuple[int, str]:
        head = self._stage.heads.get(stream_id) or self.heads.get(stream_id)
        if head is None:
            raise KeyError(f"stream {stream_id!r}: its head was not loaded for this batch (Service.load)")
        return head

    async def load_heads(self, conn: asyncpg.Connection, stream_ids: Iterable[str]) -> None:
        """Load the heads of the streams the batch may append to, in one query."""
        wanted = [s for s in dict.fromkeys(stream_ids) if s not in self.heads]
        found = await stream_heads(conn, self.schema, wanted)
        for stream_id in wanted:
            self.heads[stream_id] = found.get(stream_id, (0, GENESIS))

    # -- staging -----------------------------------------------------------------------------
    @property
    def appended(self) -> list[StoredEvent]:
        """The events the current message appended so far."""
        return self._stage.envelopes

    def append(
        self,
        stream_id: str,
        events: Sequence[NewEvent],
        expected_version: int | None,
        *,
        correlation_id: str,
        causation_id: str | None = None,
    ) -> list[StoredEvent]:
        """Stage events on a stream at `expected_version` (None: any). Raises ConcurrencyError when
        the stream is elsewhere: the batch is decided again from a fresh load."""
        if not events:
            return []
        head = self._head(stream_id)
        if expected_version is not None and expected_version != head[0]:
            raise ConcurrencyError(stream_id, expected_version, head[0])
        envelopes = chain_envelopes(
            stream_id,
            events,
            head,
            producer=self.producer,
            correlation_id=correlation_id,
            causation_id=causation_id,
            now=self.now,
        )
        self._stage.heads[stream_id] = (envelopes[-1].stream_version, envelopes[-1].hash or "")
        self._stage.envelopes += envelopes
        return envelopes

    def put(self, table: Table, row: Mapping[str, Any], view: bool = True) -> None:
        """Stage a projection row in its final state (written once per batch); `get(table.name, key)` sees it."""
        key = tuple(row[k] for k in table.key)
        key = key[0] if len(key) == 1 else key
        self._stage.rows.append((table, key, dict(row)))
        if view:
            self._stage.view[(table.name, key)] = dict(row)

    def insert(self, table: Table, row: Mapping[str, Any]) -> None:
        """Stage a projection row that is written only if its key is new (ON CONFLICT DO NOTHING)."""
        self._stage.inserts.append((table, self._key(table, row), dict(row)))

    def patch(self, table: Table, key: Any, changes: Mapping[str, Any]) -> None:
        """Stage new values for some columns of a row (a row this batch put is changed in place)."""
        self._stage.patches.append((table, key, dict(changes)))

    @staticmethod
    def _key(table: Table, row: Mapping[str, Any]) -> Any:
        key = tuple(row[k] for k in table.key)
        return key[0] if len(key) == 1 else key

    def add(self, table: Table, row: Mapping[str, Any]) -> None:
        """Stage an addition to a counter row (columns not in the key are added, see Table.add_sql)."""
        key = tuple(row[k] for k in table.key)
        self._stage.additions.append((table, key, dict(row)))

    def enqueue(
        self, topic: str, key: str | bytes | None, value: bytes, headers: Sequence[tuple[str, bytes | None]] = ()
    ) -> None:
        """Stage a message that is not a stored event (a receipt, a dead letter) for the relay."""
        key_bytes = key.encode() if isinstance(key, str) else key
        self._stage.messages.append((topic, key_bytes, value, list(headers)))

    def carry(self, headers: Sequence[tuple[str, bytes]]) -> None:
        """Headers of the current message's record that its events take along (the sequence stamp)."""
        self._stage.carry = list(headers)

    def mark(self, consumer: str, message_id: str, digest: str | None) -> None:
        self._stage.inbox.append((consumer, message_id, digest))

    def seen_digest(self, consumer: str, message_id: str) -> tuple[bool, str | None]:
        """Whether the inbox (or this batch) already holds the message id, and the digest kept with it."""
        for c, m, d in self._stage.inbox:
            if c == consumer and m == message_id:
                return True, d
        key = (consumer, message_id)
        return (key in self.seen), self.seen.get(key)

    def keep(self) -> None:
        """The current message is accepted (or dead-lettered): its stage joins the batch."""
        stage, self._stage = self._stage, _Stage()
        self.view.update(stage.view)
        self.heads.update(stage.heads)
        self.envelopes += stage.envelopes
        if stage.carry:
            for envelope in stage.envelopes:
                self.carried[envelope.event_id] = stage.carry
        self.messages += stage.messages
        for table, key, row in stage.rows:
            self.rows.setdefault(table.name, (table, {}))[1][key] = row
        for table, key, row in stage.inserts:
            self.inserts.setdefault(table.name, (table, {}))[1].setdefault(key, row)
        for table, key, changes in stage.patches:
            staged = self.rows.get(table.name, (table, {}))[1].get(key)
            if staged is not None:
                staged.update(changes)
                continue
            slot = self.patches.setdefault(table.name, (table, {}))[1]
            slot[key] = {**slot.get(key, {}), **changes}
        for table, key, row in stage.additions:
            counters = tuple(c for c in table.column_names if c not in table.key)
            slot = self.additions.setdefault(table.name, (table, counters, {}))[2]
            if key in slot:
                for c in counters:
                    slot[key][c] = slot[key][c] + row[c]
            else:
                slot[key] = dict(row)
        for consumer, message_id, digest in stage.inbox:
            self.seen[(consumer, message_id)] = digest
        self.inbox += stage.inbox

    def drop(self) -> None:
        """The current message is refused: forget everything it staged."""
        self._stage = _Stage()

    # -- writing -----------------------------------------------------------------------------
    async def write(self, conn: asyncpg.Connection) -> None:
        """Everything the batch kept: one statement for inbox, events and outbox, one per projection table."""
        outbox: list[OutboxRow] = event_outbox_rows(self.envelopes, self.router)
        if self.carried:
            outbox = [(t, k, v, [*h, *self.carried.get(e, ())], e) for t, k, v, h, e in outbox]
        outbox += [(topic, key, value, headers, None) for topic, key, value, headers in self.messages]
        await write_batch(conn, self.schema, inbox=self.inbox, envelopes=self.envelopes, outbox=outbox)
        for table, rows in self.rows.values():
            columns = [[row[name] for row in rows.values()] for name in table.column_names]
            await conn.execute(table.upsert_sql(self.schema), *columns)
        for table, rows in self.inserts.values():
            columns = [[row[name] for row in rows.values()] for name in table.column_names]
            await conn.execute(table.insert_sql(self.schema), *columns)
        for table, patched in self.patches.values():
            groups: dict[tuple[str, ...], list[Any]] = {}
            for key, changes in patched.items():
                groups.setdefault(tuple(sorted(changes)), []).append(key)
            for names, keys in groups.items():
                key_columns = [[k if len(table.key) == 1 else k[i] for k in keys] for i in range(len(table.key))]
                values = [[patched[k][name] for k in keys] for name in names]
                await conn.execute(table.patch_sql(self.schema, names), *key_columns, *values)
        for table, counters, rows in self.additions.values():
            columns = [[row[name] for row in rows.values()] for name in table.column_names]
            await conn.execute(table.add_sql(self.schema, counters), *columns)


class MemoryUnitOfWork(BatchUnitOfWork):
    """A unit of work that is never written: its view is the whole state, kept from message to
    message. `farmlink simulate` runs the services' own handlers on it (`decide_one`)."""

    def _head(self, stream_id: str) -> tuple[int, str]:
        return self._stage.heads.get(stream_id) or self.heads.get(stream_id) or (0, GENESIS)


Handler = Callable[[BatchUnitOfWork, Decoded[Any]], None]
Loader = Callable[[asyncpg.Connection, BatchUnitOfWork, Sequence[Decoded[Any]]], Awaitable[None]]
Rejected = Callable[[BatchUnitOfWork, Decoded[Any] | None, str], None]


Arranger = Callable[[asyncpg.Connection, BatchUnitOfWork, list[Any], Callable[[Delivery], Any]], Awaitable[list[Any]]]


async def _no_load(conn: asyncpg.Connection, uow: BatchUnitOfWork, items: Sequence[Decoded[Any]]) -> None:
    return None


@dataclass(frozen=True)
class Consumer:
    """How one subscriber of a service handles its batches."""

    name: str  # the inbox's consumer name
    decode: Callable[[Delivery], Decoded[Any]]
    handle: Handler
    load: Loader = _no_load
    on_rejected: Rejected | None = None
    on_abort: Callable[[], None] | None = None  # a batch was not committed: drop in-memory state built from it
    arrange: Arranger | None = None  # the order to handle a batch's items in (events/sequence.py), parking some
    skip_markers: bool = False  # an input service: a refused sequenced input leaves a marker for the matcher


class ReusedMessageId(Rejection):
    """A message id already used for a message of different content."""


@dataclass
class _Item:
    delivery: Delivery
    decoded: Decoded[Any] | None
    problem: str | None = None


def dead_letter(uow: BatchUnitOfWork, delivery: Delivery, consumer: str, reason: str) -> None:
    """Stage the original message (key, bytes, headers) for the dead-letter topic with the reason."""
    headers = dead_letter_headers(delivery, consumer, shorten(reason))
    value = delivery.value
    room = DEAD_LETTER_MAX_BYTES - len(delivery.key or b"") - sum(len(n.encode()) + len(v or b"") + 8 for n, v in headers) - 200
    if len(value) > room:
        headers += [
            ("dlq.truncated", b"true"),
            ("dlq.original-bytes", str(len(value)).encode()),
            ("dlq.original-sha256", hashlib.sha256(value).hexdigest().encode()),
        ]
        value = value[: max(room, 0)]
    uow.enqueue(DEAD_LETTER, delivery.key, value, headers)


def decide_batch(uow: BatchUnitOfWork, consumer: Consumer, items: Sequence[_Item]) -> None:
    """Step 3 for every message, in order: each on its own, exactly once, or dead-lettered."""
    for item in items:
        reused = False
        problem = item.problem
        if problem is None:
            problem, reused = _decide_one(uow, consumer, item)
        if problem is not None:
            _dead_letter_once(uow, consumer, item, problem, by_delivery=reused)


def _decide_one(uow: BatchUnitOfWork, consumer: Consumer, item: _Item) -> tuple[str | None, bool]:
    decoded = item.decoded
    assert decoded is not None
    seen, earlier = uow.seen_digest(consumer.name, decoded.message_id)
    if seen:
        if decoded.digest is not None and earlier is not None and earlier != decoded.digest:
            return (
                f"message_id {decoded.message_id} was already used for a different message "
                f"(sha256 {earlier[:16]}..., this one {decoded.digest[:16]}...); not processed"
            ), True
        return None, False  # done before: no second effect
    try:
        uow.mark(consumer.name, decoded.message_id, decoded.digest)
        stamp = [(n, v) for n, v in item.delivery.headers if n == SEQUENCE_HEADER and v is not None]
        if stamp:
            uow.carry(stamp)
        consumer.handle(uow, decoded)
    except Rejection as refusal:
        uow.drop()
        return str(refusal), False
    except BaseException:
        uow.drop()
        raise
    uow.keep()
    uow.outcomes[(consumer.name, metrics.kind_of(item.delivery, decoded), metrics.ACCEPTED)] += 1
    return None, False


def _dead_letter_once(uow: BatchUnitOfWork, consumer: Consumer, item: _Item, reason: str, by_delivery: bool = False) -> None:
    """Dead-letter a delivery unless done before: keyed by its message id, or by where the record
    sits when it has no usable id (undecodable, or its id was used for other content)."""
    reason = shorten(reason)
    if not isinstance(uow, MemoryUnitOfWork):  # a simulation's refusals are its output, not an operator's warning
        log.warning("%s dead-lettered %s: %s", consumer.name, item.delivery.delivery_id, reason)
    by_delivery = by_delivery or item.decoded is None
    message_id = f"delivery:{item.delivery.delivery_id}" if by_delivery else item.decoded.message_id  # type: ignore[union-attr]
    seen, _ = uow.seen_digest(consumer.name, message_id)
    if seen:
        return
    uow.mark(consumer.name, message_id, None if by_delivery else item.decoded.digest)  # type: ignore[union-attr]
    dead_letter(uow, item.delivery, consumer.name, reason)
    if consumer.skip_markers:
        _skip_marker(uow, item, reason)
    if consumer.on_rejected is not None:
        consumer.on_rejected(uow, item.decoded, reason)
    uow.keep()
    uow.outcomes[(consumer.name, metrics.kind_of(item.delivery, item.decoded), metrics.REJECTED)] += 1


def _skip_marker(uow: BatchUnitOfWork, item: _Item, reason: str) -> None:
    """A sequenced input this service refused: tell the matcher its place is empty (events/sequence.py)."""
    for name, value in item.delivery.headers:
        if name == SEQUENCE_HEADER and value is not None:
            parts = value.decode("utf-8", "replace").split("/")
            if len(parts) == 3:
                marker = SequenceMarker(
                    run=parts[0],
                    product=parts[1],
                    seq=parts[2],
                    reason=reason,
                    message_id=item.decoded.message_id if item.decoded is not None else None,
                )
                uow.enqueue(SEQUENCE_MARKERS, parts[1], marker.model_dump_json().encode(), [(name, value)])
            return


def inbox_ids(items: Sequence[_Item]) -> list[str]:
    ids = []
    for item in items:
        if item.decoded is not None:
            ids.append(item.decoded.message_id)
        ids.append(f"delivery:{item.delivery.delivery_id}")
    return ids


async def _inbox(
    conn: asyncpg.Connection, schema: str, consumer: str, message_ids: list[str]
) -> dict[tuple[str, str], str | None]:
    """Which of these message ids the inbox holds, with their digests: one index probe per id."""
    rows = await conn.fetch(
        f"""SELECT i.message_id, i.digest FROM unnest($2::text[]) AS m(message_id)
            JOIN "{schema}".inbox i ON i.consumer = $1 AND i.message_id = m.message_id""",
        consumer,
        message_ids,
    )
    return {(consumer, row["message_id"]): row["digest"] for row in rows}


async def _attempt(store: EventStore, consumer: Consumer, items: Sequence[_Item]) -> None:
    """Steps 1-4 in one transaction."""
    async with store.pool.acquire() as conn:
        await conn.execute(f'BEGIN; SET LOCAL search_path TO "{store.schema}"')
        try:
            uow = BatchUnitOfWork(store.schema, store.producer, store.router)
            asked = inbox_ids(items)
            uow.seen = await _inbox(conn, store.schema, consumer.name, asked)
            if consumer.arrange is not None:
                items = await consumer.arrange(conn, uow, list(items), lambda d: _decoded_item(consumer, d))
                known = set(asked)
                extra = [i.decoded.message_id for i in items if i.decoded is not None and i.decoded.message_id not in known]
                if extra:  # parked items the arranger released: were they handled before?
                    uow.seen.update(await _inbox(conn, store.schema, consumer.name, extra))
            await consumer.load(conn, uow, [item.decoded for item in items if item.decoded is not None and item.problem is None])
            decide_batch(uow, consumer, items)
            await uow.write(conn)
        except BaseException:
            if not conn.is_closed():
                try:
                    await conn.execute("ROLLBACK")
                except Exception:
                    pass
            raise
        await conn.execute("COMMIT")
    store.doorbell.ring()
    metrics.committed(store.schema, uow)  # counted once the batch is in (events/metrics.py)


async def _handle(store: EventStore, consumer: Consumer, items: list[_Item], attempts: int) -> None:
    """Handle items, retrying on conflicts; a data error splits the batch until the message behind it is found."""
    retrying = AsyncRetrying(
        retry=retry_if_exception_type(ConcurrencyError),
        stop=stop_after_attempt(attempts),
        wait=wait_exponential(multiplier=0.01, max=0.2),
        reraise=True,
    )
    try:
        async for attempt in retrying:
            with attempt:
                try:
                    await _attempt(store, consumer, items)
                except BaseException:
                    if consumer.on_abort is not None:
                        consumer.on_abort()
                    raise
    except asyncpg.DataError as error:
        live = [item for item in items if item.problem is None]
        if len(live) <= 1:
            for item in live:
                item.problem = f"refused by the database: {describe(error)}"
            log.warning("%s: %s", consumer.name, describe(error))
            if not live:
                raise
            await _handle(store, consumer, items, attempts)
            return
        half = len(items) // 2
        await _handle(store, consumer, items[:half], attempts)
        await _handle(store, consumer, items[half:], attempts)


def decide_one(uow: MemoryUnitOfWork, consumer: "Consumer", delivery: Delivery) -> tuple[list[StoredEvent], bool]:
    """Decide one delivery in memory as the service would: (the events it led to, whether it was accepted)."""
    before, dead = len(uow.envelopes), len(uow.messages)
    decide_batch(uow, consumer, [_decoded_item(consumer, delivery)])
    refused = any(topic == DEAD_LETTER for topic, *_ in uow.messages[dead:])
    return uow.envelopes[before:], not refused


def _decoded_item(consumer: Consumer, delivery: Delivery) -> _Item:
    try:
        return _Item(delivery, consumer.decode(delivery))
    except Exception as error:  # poison: dead-lettered in the same transaction
        return _Item(delivery, None, describe(error))


async def consume_batch(store: EventStore, consumer: Consumer, deliveries: Sequence[Delivery], attempts: int = 5) -> None:
    """Handle a Kafka batch in one transaction (see the module's docstring). Any error other than a
    rejection or a data error propagates, so no offset is committed and the batch comes again."""
    await _handle(store, consumer, [_decoded_item(consumer, d) for d in deliveries], attempts)
