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

Without PostgreSQL, `MemoryUnitOfWork` keeps the whole state as its view and `events.handling.decide_one` runs
step 3 on it with the same handlers (farmlink simulate: farmlink/producers/offline.py). Steps 1-4 for a whole Kafka batch,
with retries and bisection, are `events.handling.consume_batch`.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

import asyncpg

from events.hashchain import GENESIS
from events.store import (
    ConcurrencyError,
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
