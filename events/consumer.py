"""Exactly-once effects over at-least-once delivery, and the dead-letter path: the pieces every
consumer shares (deliveries, decoded messages, rejections, receipts, dead-letter headers).

Every consumer handles a Kafka batch in one PostgreSQL transaction (events/unit.py): it marks
each message in its inbox, applies its effects (events, projections, receipts in the outbox),
and only then lets FastStream commit the offsets. A redelivered message finds its inbox mark and
has no second effect. A message that cannot be decoded, or that the service rejects, is
dead-lettered (original bytes, key and headers, plus the reason) through the same
outbox, so the consumer keeps going and nothing is lost.

A message id is a promise about content: the inbox keeps a digest of each input, so an
identical re-send is a no-op, while a different message under a used id is dead-lettered
("message_id ... was already used for a different message"), never silently dropped.
"""

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Generic, Protocol, TypeVar

from contracts.inputs import INPUT_OWNER, InputMessage, Receipt
from contracts.topics import RECEIPTS

log = logging.getLogger(__name__)

T = TypeVar("T")

MAX_REASON_CHARS = 1000
"""A dead-letter reason (and a rejected receipt's) is cut to this length: a payload with
thousands of bad items must not make a reason that cannot travel."""

DEAD_LETTER_MAX_BYTES = 1_000_000
"""Key, value and headers of a dead letter stay below this, under the broker's default limit
(message.max.bytes, 1 MiB) with room to spare; a longer original value is cut, and the dead
letter says so (dlq.truncated, dlq.original-bytes, dlq.original-sha256)."""


class Rejection(Exception):
    """A message the service will not act on; the reason names the field and why."""


@dataclass(frozen=True)
class Delivery:
    """A Kafka record as received: where it came from and its raw parts."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes
    headers: Sequence[tuple[str, bytes | None]]

    @property
    def delivery_id(self) -> str:
        return f"{self.topic}/{self.partition}/{self.offset}"


@dataclass(frozen=True)
class Decoded(Generic[T]):
    """A decoded message with the ids the consumer needs."""

    item: T
    message_id: str
    correlation_id: str
    digest: str | None = None  # of the content, for inputs: a used message id with another digest is refused


def dead_letter_headers(delivery: Delivery, consumer: str, reason: str) -> list[tuple[str, bytes | None]]:
    """The original headers plus where the message came from and why it was dead-lettered."""
    return [
        *delivery.headers,
        ("dlq.reason", reason.encode("utf-8")),
        ("dlq.consumer", consumer.encode()),
        ("dlq.topic", delivery.topic.encode()),
        ("dlq.partition", str(delivery.partition).encode()),
        ("dlq.offset", str(delivery.offset).encode()),
    ]


def shorten(reason: str, limit: int = MAX_REASON_CHARS) -> str:
    """A reason of at most `limit` characters, saying how much was left out."""
    if len(reason) <= limit:
        return reason
    tail = f" ... ({len(reason) - limit} more characters)"
    return reason[: limit - len(tail)] + tail


def describe(error: Exception, prefix: str = "") -> str:
    """A one-line reason naming the field and why (pydantic errors), or the error itself."""
    errors = getattr(error, "errors", None)
    if callable(errors):
        try:
            parts = []
            for item in errors():
                where = prefix + ".".join(str(p) for p in item.get("loc", ())) or "(message)"
                parts.append(f"{where}: {item.get('msg')}")
            return "; ".join(parts)
        except Exception:
            pass
    return f"{type(error).__name__}: {error}"


class Outbox(Protocol):
    """Where receipts are staged: a unit of work (events.unit.BatchUnitOfWork)."""

    appended: list[Any]

    def enqueue(
        self, topic: str, key: str | bytes | None, value: bytes, headers: Sequence[tuple[str, bytes | None]] = ()
    ) -> None: ...


PRODUCER_HEADER = "farmlink.producer"
"""Header of a receipt of an input: the input's producer (`buyer:<buyer_id>`, ...), so the feeds service
copies the receipt onto that party's own topic (services/feeds). A header, not a field: Receipt v1's
published schema is closed."""


def send_receipt(uow: Outbox, receipt: Receipt, producer: str | None = None) -> None:
    """Stage a receipt so the producer learns what became of its input."""
    headers = [(PRODUCER_HEADER, producer.encode())] if producer else []
    uow.enqueue(RECEIPTS, receipt.correlation_id, receipt.model_dump_json().encode(), headers)


def _producer_of(decoded: Decoded[Any]) -> str | None:
    """The producer an input names; None for anything else (an event's receipt)."""
    item = decoded.item
    return item[0].producer if isinstance(item, tuple) and item and isinstance(item[0], InputMessage) else None


def accepted(uow: Outbox, decoded: Decoded[Any], service: str, status: str = "accepted") -> None:
    """Tell the producer its input was taken, with the ids of the events it led to."""
    send_receipt(
        uow,
        Receipt(
            correlation_id=decoded.correlation_id,
            message_id=decoded.message_id,
            service=service,
            status=status,
            event_ids=tuple(str(e.event_id) for e in uow.appended),
        ),
        _producer_of(decoded),
    )


def ids_of(decoded: Decoded[Any]) -> dict[str, str]:
    """The correlation and causation ids of the events an input leads to."""
    return dict(correlation_id=decoded.correlation_id, causation_id=decoded.message_id)


def input_handler(service: str, handlers: dict[type, Callable[..., None]]) -> Callable[[Any, Decoded[Any]], None]:
    """A service's handle for its input messages: the handler its `HANDLERS` map gives the input's
    model (called with the unit of work, the decoded message, the message and the payload), then
    the accepted receipt; an input of another service's type is rejected."""

    def handle(uow: Any, decoded: Decoded[Any]) -> None:
        message, request = decoded.item
        handler = handlers.get(type(request))
        if handler is None or INPUT_OWNER.get(message.type) != service:
            raise Rejection(f"type: {message.type} is not a {service} input")
        handler(uow, decoded, message, request)
        accepted(uow, decoded, service)

    return handle


def rejected_receipt(service: str) -> Callable[[Outbox, "Decoded[Any] | None", str], None]:
    """An on_rejected hook that tells the producer why its input was refused."""

    def send(uow: Outbox, decoded: Decoded[Any] | None, reason: str) -> None:
        if decoded is not None:
            receipt = Receipt(
                correlation_id=decoded.correlation_id,
                message_id=decoded.message_id,
                service=service,
                status="rejected",
                reason=reason,
            )
            send_receipt(uow, receipt, _producer_of(decoded))

    return send
