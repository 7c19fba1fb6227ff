"""The write path's statements: stream heads in one query, and inbox marks, events and outbox rows written and
verified in ONE statement (`write_batch`); `append_events` appends to one stream without a lock."""

from collections.abc import Sequence
from datetime import datetime, timezone
from typing import Any

import asyncpg

from events.hashchain import GENESIS, canonical_json
from events.outbox import OutboxRow, event_outbox_rows, outbox_headers
from events.stored import NEW_EVENT_COLUMNS, ConcurrencyError, NewEvent, Router, StoredEvent, chain_envelopes


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


def _write_statement(schema: str) -> str:
    q = f'"{schema}"'
    columns = ", ".join(NEW_EVENT_COLUMNS)
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
    try:
        row = await conn.fetchrow(_write_statement(schema), *_arrays(inbox, envelopes, outbox))
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


def _arrays(
    inbox: Sequence[tuple[str, str, str | None]], e: Sequence[StoredEvent], outbox: Sequence[OutboxRow]
) -> list[list[Any]]:
    """The statement's 24 array parameters: inbox marks, events, outbox rows of events (the bytes around their
    position) and other outbox rows (receipts, dead letters: their whole value)."""
    of_events = [r for r in outbox if isinstance(r[2], tuple)]
    plain = [r for r in outbox if not isinstance(r[2], tuple)]
    return [
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
    ]


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
