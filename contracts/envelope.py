"""The event envelope: the metadata every stored and published event carries."""

from datetime import datetime
from typing import Any
from uuid import UUID

from pydantic import Field

from contracts.model import Contract


class Envelope(Contract):
    """One recorded fact: who produced it, where it sits in its stream, and its hash links."""

    event_id: UUID
    event_type: str = Field(description="past-tense fact name, e.g. HarvestRecorded")
    schema_version: int = Field(ge=1)
    stream_id: str
    stream_version: int = Field(ge=1, description="1 for the first event of a stream")
    occurred_at: datetime
    producer: str
    correlation_id: str
    causation_id: str | None = None
    payload: dict[str, Any]
    global_position: int | None = Field(default=None, description="position in its store's log")
    prev_hash: str | None = Field(default=None, description="hash of the previous event in the stream")
    hash: str | None = Field(default=None, description="sha256 over prev_hash and this event's canonical JSON")
