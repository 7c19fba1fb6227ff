"""Exactly-once effects over at-least-once delivery, and the dead-letter path.

Every consumer handles a message in one PostgreSQL transaction: it marks the message in
its inbox, applies its effects (events, projections, receipts in the outbox), and only
then lets FastStream commit the offset. A redelivered message finds its inbox mark and
has no second effect. A message that cannot be decoded, or that the service rejects, is
dead-lettered (original bytes, key and headers, plus the reason) through the same
outbox, so the consumer keeps going and nothing is lost.

A message id is a promise about content: the inbox keeps a digest of each input, so an
identical re-send is a no-op, while a different message under a used id is dead-lettered
("message_id ... was already used for a different message"), never silently dropped.
"""

import hashlib
import json
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

import asyncpg
from tenacity import AsyncRetrying, retry_if_exception_type, stop_after_attempt, wait_exponential

from contracts.inputs import Receipt
from contracts.topics import DEAD_LETTER, RECEIPTS
from events.store import ConcurrencyError, EventStore, UnitOfWork

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
    headers: Sequence[tuple[str, bytes]]

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


def dead_letter_headers(delivery: Delivery, consumer: str, reason: str) -> list[tuple[str, bytes]]:
    """The original headers plus where the message came from and why it was dead-lettered."""
    return [
        *delivery.headers,
        ("dlq.reason", reason.encode("utf-8")),
        ("dlq.consumer", consumer.encode()),
        ("dlq.topic", delivery.topic.encode()),
        ("dlq.partition", str(delivery.partition).encode()),
        ("dlq.offset", str(delivery.offset).encode()),
    ]


async def dead_letter(uow: UnitOfWork, delivery: Delivery, consumer: str, reason: str) -> None:
    """Queue the original message (key, bytes, headers) for the dead-letter topic with the reason."""
    headers = dead_letter_headers(delivery, consumer, shorten(reason))
    value = delivery.value
    room = DEAD_LETTER_MAX_BYTES - len(delivery.key or b"") - sum(len(n.encode()) + len(v or b"") + 8 for n, v in headers) - 200
    if len(value) > room:
        headers += [
            ("dlq.truncated", b"true"),
            ("dlq.original-bytes", str(len(value)).encode()),
            ("dlq.original-sha256", hashlib.sha256(value).hexdigest().encode()),
        ]
        value = value[: max(room, 0)]
    await uow.enqueue(DEAD_LETTER, delivery.key, value, headers)


def shorten(reason: str, limit: int = MAX_REASON_CHARS) -> str:
    """A reason of at most `limit` characters, saying how much was left out."""
    if len(reason) <= limit:
        return reason
    tail = f" ... ({len(reason) - limit} more characters)"
    return reason[: limit - len(tail)] + tail


async def send_receipt(uow: UnitOfWork, receipt: Receipt) -> None:
    """Queue a receipt so the producer learns what became of its input."""
    await uow.enqueue(RECEIPTS, receipt.correlation_id, json.dumps(receipt.model_dump(mode="json")).encode())


Handler = Callable[[UnitOfWork, Decoded[T]], Awaitable[None]]
Decoder = Callable[[Delivery], Decoded[T]]
Rejected = Callable[[UnitOfWork, Decoded[T] | None, str], Awaitable[None]]


async def consume(
    store: EventStore,
    consumer: str,
    delivery: Delivery,
    decode: Decoder,
    handle: Handler,
    on_rejected: Rejected | None = None,
    attempts: int = 5,
) -> None:
    """Handle one delivery exactly once, or dead-letter it (a batch of one; see consume_batch).

    Any error other than a rejection propagates, so the offset is not committed and the message comes again.
    """
    await consume_batch(store, consumer, [delivery], decode, handle, on_rejected, attempts)


async def consume_batch(
    store: EventStore,
    consumer: str,
    deliveries: Sequence[Delivery],
    decode: Decoder,
    handle: Handler,
    on_rejected: Rejected | None = None,
    attempts: int = 5,
) -> None:
    """Handle a batch of deliveries in ONE transaction (one commit, one offset commit for all),
    each message still exactly once and on its own: a rejected message is rolled back to its
    savepoint and dead-lettered, the others go on. A transient conflict retries the batch."""
    items: list[tuple[Delivery, Decoded | None, str | None]] = []
    for delivery in deliveries:
        try:
            items.append((delivery, decode(delivery), None))
        except Exception as error:  # poison: dead-lettered below, in the same transaction
            items.append((delivery, None, describe(error)))
    retrying = AsyncRetrying(
        retry=retry_if_exception_type(ConcurrencyError),
        stop=stop_after_attempt(attempts),
        wait=wait_exponential(multiplier=0.01, max=0.2),
        reraise=True,
    )
    async for attempt in retrying:
        with attempt:
            async with store.transaction() as uow:
                for delivery, decoded, problem in items:
                    uow.appended = []
                    reused = False
                    if problem is None:
                        problem, reused = await _handle_one(uow, consumer, decoded, handle)
                    if problem is not None:
                        await _dead_letter_once(uow, consumer, delivery, decoded, problem, on_rejected, by_delivery=reused)


class ReusedMessageId(Rejection):
    """A message id already used for a message of different content."""


async def _handle_one(uow: UnitOfWork, consumer: str, decoded: Decoded, handle: Handler) -> tuple[str | None, bool]:
    """Apply one message inside a savepoint: (None, False) when done or already done before,
    else why it was refused and whether that is because its message id was used for other content.

    A data error from PostgreSQL (SQLSTATE class 22: a number out of range, text it cannot
    store) comes from the message's own data and would come again on every redelivery, so it
    is a refusal of this message too, not a reason to stop the consumer."""
    try:
        async with uow.conn.transaction():
            if await uow.first_time(consumer, decoded.message_id, decoded.digest):
                await handle(uow, decoded)
            elif decoded.digest is not None:
                earlier = await uow.inbox_digest(consumer, decoded.message_id)
                if earlier is not None and earlier != decoded.digest:
                    raise ReusedMessageId(
                        f"message_id {decoded.message_id} was already used for a different message "
                        f"(sha256 {earlier[:16]}..., this one {decoded.digest[:16]}...); not processed"
                    )
    except (Rejection, asyncpg.DataError) as refusal:
        uow.appended = []
        uow.savepoint_rolled_back()
        reason = str(refusal) if isinstance(refusal, Rejection) else f"refused by the database: {describe(refusal)}"
        return reason, isinstance(refusal, ReusedMessageId)
    return None, False


async def _dead_letter_once(
    uow: UnitOfWork,
    consumer: str,
    delivery: Delivery,
    decoded: Decoded | None,
    reason: str,
    on_rejected: Rejected | None,
    by_delivery: bool = False,
) -> None:
    """Dead-letter a delivery unless done before: keyed by its message id, or by where the record
    sits when it has no usable id (undecodable, or its id was used for other content)."""
    reason = shorten(reason)
    log.warning("%s dead-lettered %s: %s", consumer, delivery.delivery_id, reason)
    by_delivery = by_delivery or decoded is None
    message_id = f"delivery:{delivery.delivery_id}" if by_delivery else decoded.message_id
    if await uow.first_time(consumer, message_id, None if by_delivery else decoded.digest):
        await dead_letter(uow, delivery, consumer, reason)
        if on_rejected is not None:
            await on_rejected(uow, decoded, reason)


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


async def accepted(uow: UnitOfWork, decoded: Decoded, service: str, status: str = "accepted") -> None:
    """Tell the producer its input was taken, with the ids of the events it led to."""
    await send_receipt(
        uow,
        Receipt(
            correlation_id=decoded.correlation_id,
            message_id=decoded.message_id,
            service=service,
            status=status,
            event_ids=tuple(str(e.event_id) for e in uow.appended),
        ),
    )


def rejected_receipt(service: str) -> Rejected:
    """An on_rejected hook that tells the producer why its input was refused."""

    async def send(uow: UnitOfWork, decoded: Decoded | None, reason: str) -> None:
        if decoded is not None:
            receipt = Receipt(
                correlation_id=decoded.correlation_id,
                message_id=decoded.message_id,
                service=service,
                status="rejected",
                reason=reason,
            )
            await send_receipt(uow, receipt)

    return send
