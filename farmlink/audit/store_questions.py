"""What the streamed audit (streamed.py) asks the store: the few questions about the whole log that a pass in
bounded memory cannot answer alone (is an id used twice? which streams hold more than one event?), answered by
PostgreSQL over every schema at once, in the audit's snapshot, so the audit holds only the answers: the ids that
repeat, the source events whose journal count is not one. The checks themselves then run, with the same pure
functions as a log in memory, on the records those ids name (`records_with_ids`, `journal_records`): the findings
are the ones the whole log gives. Also the reads of a few named records: a suspect stream whole, the records at
moved heads, and the hash chains of the whole store as they stream by (`check_stored_chains`, for verify-digest).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import asyncpg

from farmlink.audit.chains import ChainCursor, stream_break
from farmlink.audit.log import COLUMNS, SCHEMAS, record_reader, stream_rows
from farmlink.audit.model import AuditLog, Finding, Record
from farmlink.audit.signatures import SCHEMAS as SIGNED_SCHEMAS, SIGNED_EVENTS
from matcher.journal import JOURNALED_TYPES
from matcher.versions import ADOPTION_TYPE

SOURCE_SCHEMAS = ("cooperative", "buyer", "market")
"""Where the events the matcher journals are recorded (views.check_journal_complete)."""

ROUND_EVALUATED = "SupervisionRoundEvaluated"


@dataclass
class Answers:
    schemas: list[str]
    """The schemas that have an events table."""
    products: list[tuple[str, int]] = field(default_factory=list)
    """Each product with a matching stream, and how many events it holds, by product."""
    repeated_event_ids: list[str] = field(default_factory=list)
    repeated_message_ids: set[str] = field(default_factory=set)
    journal_suspects: list[str] = field(default_factory=list)
    """Source event ids journaled other than once, and journaled ids with no source event."""
    multi_event_streams: dict[str, set[str]] = field(default_factory=dict)
    """Per schema, the streams (other than the products') that hold more than one event: only those need a head
    kept while the log streams by (chains.ChainCursor)."""
    supervised: bool = False
    """The pairing schema records evaluated supervision rounds (their check needs the facts they saw)."""


def _events(prefix: str, schema: str) -> str:
    return f'"{prefix}{schema}".events'


async def products_of(conn: asyncpg.Connection, prefix: str, schemas: list[str]) -> list[tuple[str, int]]:
    """Each product with a matching stream, and how many events it holds, by product: asked first, so the workers
    can start on them while the other questions are answered."""
    if "matching" not in schemas:
        return []
    rows = await conn.fetch(
        f"SELECT stream_id, count(*) FROM {_events(prefix, 'matching')} WHERE stream_id LIKE 'market-%' "
        "GROUP BY stream_id ORDER BY stream_id"
    )
    return [(row[0].removeprefix("market-"), row[1]) for row in rows]


async def ask_for_the_pass(conn: asyncpg.Connection, prefix: str, answers: Answers) -> None:
    """What the pass needs before it starts: the repeated message ids, the multi-event streams, the supervision rounds."""
    schemas = answers.schemas
    signed = [s for s in SIGNED_SCHEMAS if s in schemas]
    if signed:
        messages = " UNION ALL ".join(
            f"SELECT payload->'signed_input'->>'message_id' AS id FROM {_events(prefix, s)} WHERE event_type = ANY($1::text[])"
            for s in signed
        )
        rows = await conn.fetch(
            f"SELECT id FROM ({messages}) m WHERE id IS NOT NULL GROUP BY id HAVING count(*) > 1", sorted(SIGNED_EVENTS)
        )
        answers.repeated_message_ids = {row[0] for row in rows}
    for schema in schemas:
        others = "WHERE stream_id NOT LIKE 'market-%'" if schema == "matching" else ""
        rows = await conn.fetch(
            f"SELECT stream_id FROM {_events(prefix, schema)} {others} GROUP BY stream_id HAVING count(*) > 1"
        )
        answers.multi_event_streams[schema] = {row[0] for row in rows}
    if "pairing" in schemas:
        answers.supervised = await conn.fetchval(
            f"SELECT EXISTS (SELECT 1 FROM {_events(prefix, 'pairing')} WHERE event_type = $1)", ROUND_EVALUATED
        )


async def ask_for_the_findings(conn: asyncpg.Connection, prefix: str, answers: Answers) -> None:
    """What only the findings need (asked while the workers verify the last signatures): the repeated event ids, the
    source events journaled other than once."""
    every = " UNION ALL ".join(f"SELECT event_id FROM {_events(prefix, s)}" for s in answers.schemas)
    if every:
        rows = await conn.fetch(f"SELECT event_id::text FROM ({every}) e GROUP BY event_id HAVING count(*) > 1")
        answers.repeated_event_ids = [row[0] for row in rows]
    answers.journal_suspects = await _journal_suspects(conn, prefix, answers.schemas)


async def _journal_suspects(conn: asyncpg.Connection, prefix: str, schemas: list[str]) -> list[str]:
    sources = [s for s in SOURCE_SCHEMAS if s in schemas]
    parts = [
        f"SELECT event_id::text AS id, 1 AS s, 0 AS j FROM {_events(prefix, s)} WHERE event_type = ANY($1::text[])"
        for s in sources
    ]
    args: list[object] = [sorted(JOURNALED_TYPES)] if sources else []
    if "matching" in schemas:
        args.append(ADOPTION_TYPE)
        parts.append(
            f"SELECT payload->>'source_event_id' AS id, 0 AS s, 1 AS j FROM {_events(prefix, 'matching')} "
            f"WHERE event_type = 'InputJournaled' AND (payload->>'source_event_type') IS DISTINCT FROM ${len(args)}::text"
        )
    if not parts:
        return []
    query = f"SELECT id FROM ({' UNION ALL '.join(parts)}) x GROUP BY id HAVING sum(s) = 0 OR sum(j) <> 1"
    return [row[0] for row in await conn.fetch(query, *args) if row[0] is not None]


async def _fetch(conn: asyncpg.Connection, prefix: str, schema: str, where: str, *args) -> list[Record]:
    of = record_reader(schema)
    rows = await conn.fetch(f"SELECT {COLUMNS} FROM {_events(prefix, schema)} WHERE {where} ORDER BY global_position", *args)
    return [of(row) for row in rows]


async def records_with_ids(conn: asyncpg.Connection, prefix: str, schemas: list[str], ids: list[str]) -> AuditLog:
    """Every event whose id is one of `ids`, in every schema: what check_unique_event_ids needs of the log."""
    log = AuditLog(source="postgres")
    for schema in schemas:
        if ids and (records := await _fetch(conn, prefix, schema, "event_id::text = ANY($1::text[])", ids)):
            log.by_schema[schema] = records
    return log


async def journal_records(conn: asyncpg.Connection, prefix: str, schemas: list[str], ids: list[str]) -> AuditLog:
    """The source events and journal entries of `ids`: what views.check_journal_complete needs of the log for them."""
    log = AuditLog(source="postgres")
    if not ids:
        return log
    for schema in SOURCE_SCHEMAS:
        if schema in schemas:
            where = "event_type = ANY($1::text[]) AND event_id::text = ANY($2::text[])"
            log.by_schema[schema] = await _fetch(conn, prefix, schema, where, sorted(JOURNALED_TYPES), ids)
    if "matching" in schemas:
        where = "event_type = 'InputJournaled' AND payload->>'source_event_id' = ANY($1::text[])"
        log.by_schema["matching"] = await _fetch(conn, prefix, "matching", where, ids)
    return log


async def records_at(conn: asyncpg.Connection, prefix: str, places: list[tuple[str, str, int]]) -> list[Record]:
    """The records at (schema, stream_id, stream_version) places."""
    found: list[Record] = []
    for schema, stream_id, version in places:
        found += await _fetch(conn, prefix, schema, "stream_id = $1 AND stream_version = $2", stream_id, version)
    return found


async def stream_records(conn: asyncpg.Connection, prefix: str, schema: str, stream_id: str) -> list[Record]:
    """One stream's records in stream order (a suspect stream, read again whole to locate its break)."""
    of = record_reader(schema)
    rows = await conn.fetch(
        f"SELECT {COLUMNS} FROM {_events(prefix, schema)} WHERE stream_id = $1 ORDER BY stream_version, global_position",
        stream_id,
    )
    return [of(row) for row in rows]


async def check_stored_chains(dsn: str, prefix: str = "") -> list[Finding]:
    """`check_hash_chains` of the log in the store, read as it streams by: a head held only for the streams that
    hold more than one event, a stream in doubt read again whole and located by `stream_break`."""
    conn = await asyncpg.connect(dsn)
    try:
        found: list[tuple[tuple[str, int], Finding]] = []
        for schema in sorted(SCHEMAS):
            if not await conn.fetchval("SELECT to_regclass($1) IS NOT NULL", f"{prefix}{schema}.events"):
                continue
            rows = await conn.fetch(f'SELECT stream_id FROM "{prefix}{schema}".events GROUP BY stream_id HAVING count(*) > 1')
            cursor = ChainCursor({row[0] for row in rows})
            async with conn.transaction(isolation="repeatable_read", readonly=True):
                async for batch in stream_rows(conn, schema, prefix):
                    cursor.feed(batch)
            found += await located_breaks(conn, prefix, schema, cursor.suspects)
        return [finding for _, finding in sorted(found, key=lambda item: item[0])]
    finally:
        await conn.close()


async def located_breaks(
    conn: asyncpg.Connection, prefix: str, schema: str, suspects: set[str]
) -> list[tuple[tuple[str, int], Finding]]:
    """Each suspect stream (chains.ChainCursor) read again whole and its first broken link located, with the place
    its finding takes among a schema's (the stream's first global position, as `check_hash_chains` orders them)."""
    found = []
    for stream_id in sorted(suspects):
        records = await stream_records(conn, prefix, schema, stream_id)
        finding = stream_break(stream_id, records)
        if finding is not None:
            found.append(((schema, min(r.global_position for r in records)), finding))
    return found
