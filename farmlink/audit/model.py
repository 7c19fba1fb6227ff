"""The audit's view of the log: light records (a million of them must fit and be quick), and findings."""

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from contracts.audit import FINDING_CODES


@dataclass(frozen=True, slots=True)
class Record:
    """One stored event as the auditor reads it, from PostgreSQL or from a Kafka topic."""

    schema: str  # the service's schema: cooperative, buyer, market, matching, settlement
    global_position: int
    event_id: str
    event_type: str
    schema_version: int
    stream_id: str
    stream_version: int
    occurred_at: datetime
    producer: str
    correlation_id: str
    causation_id: str | None
    payload: dict[str, Any]
    prev_hash: str
    hash: str

    @property
    def place(self) -> str:
        """Where the event sits: schema, stream and version, global position, event id."""
        return f"{self.schema}/{self.stream_id}@{self.stream_version} (position {self.global_position}, event {self.event_id})"


@dataclass
class AuditLog:
    """Every schema's events in global-position order, as read from one source."""

    source: str  # "postgres" or "kafka"
    by_schema: dict[str, list[Record]] = field(default_factory=dict)

    def records(self):
        """All records, schema by schema, each schema in global order."""
        for schema in sorted(self.by_schema):
            yield from self.by_schema[schema]

    def count(self) -> int:
        return sum(len(records) for records in self.by_schema.values())


@dataclass(frozen=True)
class Finding:
    """Something the audit found wrong, and exactly where."""

    check: str  # hash_chain | duplicate_event | signature | re_execution | invariant | snapshot | reconciliation | checkpoint | digest
    where: str
    message: str
    schema: str | None = None
    stream_id: str | None = None
    stream_version: int | None = None
    global_position: int | None = None
    event_id: str | None = None

    @property
    def code(self) -> str:
        """The stable code of the check that found it (contracts/audit.py)."""
        return FINDING_CODES[self.check]

    def as_dict(self) -> dict[str, Any]:
        return {"code": self.code, **{k: v for k, v in self.__dict__.items() if v is not None}}

    def __str__(self) -> str:
        return f"[{self.check}] {self.where}: {self.message}"


def finding_at(check: str, record: Record, message: str) -> Finding:
    """A finding located at a record."""
    return Finding(
        check=check,
        where=record.place,
        message=message,
        schema=record.schema,
        stream_id=record.stream_id,
        stream_version=record.stream_version,
        global_position=record.global_position,
        event_id=record.event_id,
    )
