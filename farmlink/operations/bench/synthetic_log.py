"""The synthetic log's rows: events appended per schema and stream with their hash links, ready for COPY into
`<schema>.events`, or read as the audit reads a log from PostgreSQL."""

import random
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone

from contracts.model import Contract
from events.hashchain import GENESIS, canonical_json, hashed_content, link_hash


@dataclass
class SyntheticLog:
    """Rows per schema, ready for COPY into `<schema>.events`."""

    rows: dict[str, list[tuple]] = field(default_factory=dict)
    heads: dict[tuple[str, str], tuple[int, str]] = field(default_factory=dict)
    clock: int = 0
    inputs: int = 0
    fills: int = 0
    last_at: datetime | None = None

    @property
    def count(self) -> int:
        return sum(len(rows) for rows in self.rows.values())

    def append(
        self,
        schema: str,
        stream_id: str,
        model: Contract,
        *,
        event_id: uuid.UUID | None = None,
        correlation_id: str = "synthetic",
        causation_id: str | None = None,
        at: datetime | None = None,
    ) -> str:
        """Append one event to a stream with its hash link; returns its id. `at` defaults to the next tick."""
        version, prev = self.heads.get((schema, stream_id), (0, GENESIS))
        self.clock += 1
        at = at or datetime(2020, 3, 1, tzinfo=timezone.utc) + timedelta(seconds=self.clock)
        self.last_at = at
        event_id = event_id or uuid.UUID(int=random.getrandbits(128), version=4)
        payload = model.model_dump(mode="json")
        fields = dict(
            event_id=event_id,
            event_type=model.event_type,
            schema_version=model.schema_version,  # type: ignore[attr-defined]
            stream_id=stream_id,
            stream_version=version + 1,
            occurred_at=at,
            producer=f"service:{schema}",
            correlation_id=correlation_id,
            causation_id=causation_id,
            payload=payload,
        )
        digest = link_hash(prev, hashed_content(**fields))
        self.heads[(schema, stream_id)] = (version + 1, digest)
        self.rows.setdefault(schema, []).append(
            (
                event_id,
                stream_id,
                version + 1,
                fields["event_type"],
                fields["schema_version"],
                at,
                fields["producer"],
                correlation_id,
                causation_id,
                canonical_json(payload),
                prev,
                digest,
            )
        )
        return str(event_id)

    def audit_log(self):
        """The log as the audit reads it from PostgreSQL (global positions 1, 2, ... per schema), without a database."""
        import orjson

        from farmlink.audit.model import AuditLog, Record

        log = AuditLog(source="postgres")
        for schema, rows in self.rows.items():
            log.by_schema[schema] = [
                Record(
                    schema,
                    position,
                    str(event_id),
                    event_type,
                    schema_version,
                    stream_id,
                    version,
                    at,
                    producer,
                    correlation_id,
                    causation_id,
                    orjson.loads(payload),
                    prev,
                    digest,
                )
                for position, (
                    event_id,
                    stream_id,
                    version,
                    event_type,
                    schema_version,
                    at,
                    producer,
                    correlation_id,
                    causation_id,
                    payload,
                    prev,
                    digest,
                ) in enumerate(rows, start=1)
            ]
        return log
