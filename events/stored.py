"""What the write path builds: new events, the stored event (the envelope's fields without the model's validation
cost), routes to topics, and the hash-chained envelopes of new events after a stream's head."""

import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

import asyncpg
import orjson

from contracts.envelope import Envelope
from contracts.model import Contract
from contracts.registry import EVENT_TOPIC, event_key
from events.hashchain import canonical_bytes, canonical_json, hashed_content, link_hash

NEW_EVENT_COLUMNS = (
    "event_id",
    "stream_id",
    "stream_version",
    "event_type",
    "schema_version",
    "occurred_at",
    "producer",
    "correlation_id",
    "causation_id",
    "payload",
    "prev_hash",
    "hash",
)
"""The columns a new event is written with (the database hands out global_position); what COPY into events takes."""
EVENT_COLUMNS = ", ".join(("global_position", *NEW_EVENT_COLUMNS))


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
