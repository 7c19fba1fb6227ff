"""Logs for the report's tests: the bench's synthetic season, in memory (unit tests) or in PostgreSQL (integration)."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cache
from typing import Any

import orjson

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
