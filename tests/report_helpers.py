"""Logs for the report's tests: the bench's synthetic season, in memory (unit tests) or in PostgreSQL (integration)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from functools import cache
from typing import Any

import asyncpg
import orjson

from events.migrations import migrate
from events.stored import NEW_EVENT_COLUMNS
from farmlink.audit.log import SCHEMAS
from farmlink.audit.model import AuditLog, Finding, Record
from farmlink.operations.bench.synthetic import SyntheticLog, generate


@cache
def synthetic(events: int) -> SyntheticLog:
    return generate(events)


def in_memory(events: int) -> AuditLog:
    """The synthetic log as the audit reads it (positions counted per schema, as each schema's table numbers them)."""
    log = AuditLog(source="postgres")
    for schema, rows in synthetic(events).rows.items():
        log.by_schema[schema] = [
            Record(schema, i + 1, str(r[0]), r[3], r[4], r[1], r[2], r[5], r[6], r[7], r[8], orjson.loads(r[9]), r[10], r[11])
            for i, r in enumerate(rows)
        ]
    return log


@asynccontextmanager
async def season_in_postgres(dsn: str, prefix: str, events: int) -> AsyncIterator[asyncpg.Pool]:
    """The synthetic season of `events` events written into schemas named <prefix><service> (dropped afterwards),
    and a pool on the database to tamper with it."""
    log = synthetic(events)
    pool = await asyncpg.create_pool(dsn, min_size=1, max_size=2)
    try:
        for schema in SCHEMAS:
            await migrate(pool, prefix + schema)
            async with pool.acquire() as conn:
                await conn.copy_records_to_table(
                    "events", schema_name=prefix + schema, records=log.rows.get(schema, []), columns=NEW_EVENT_COLUMNS
                )
        yield pool
    finally:
        for schema in SCHEMAS:
            await pool.execute(f'DROP SCHEMA IF EXISTS "{prefix}{schema}" CASCADE')
        await pool.close()


@dataclass
class Result:
    """An audit result's shape (farmlink.audit.run.AuditResult), for pure tests of the report."""

    log: AuditLog
    findings: list[Finding] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)

    def summary(self) -> dict[str, Any]:
        return {
            "clean": not self.findings,
            "source": self.log.source,
            "events_audited": self.log.count(),
            "journal_inputs": 0,
            "fills": 0,
            "findings": len(self.findings),
            "reconciled_with_kafka": False,
            "state_hash": "0" * 64,
            "seconds": {k: round(v, 3) for k, v in self.timings.items()},
        }


def finding_at_event(log: AuditLog, schema: str, index: int, check: str = "hash_chain") -> Finding:
    record = log.by_schema[schema][index]
    return Finding(
        check=check,
        where=record.place,
        message="stored hash does not match sha256(prev_hash || event)",
        schema=record.schema,
        stream_id=record.stream_id,
        stream_version=record.stream_version,
        global_position=record.global_position,
        event_id=record.event_id,
    )
