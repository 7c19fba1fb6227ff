"""Handling a Kafka batch (the steps are in events/unit.py's docstring): decoding each delivery, deciding each
message with the service's handlers on a batch unit of work, dead-lettering what cannot be decided, writing the
batch in one transaction, retrying on a conflict and bisecting the batch on a database error (`consume_batch`);
and deciding one delivery in memory as the service would (`decide_one`, for farmlink simulate)."""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

import asyncpg
from tenacity import AsyncRetrying, retry_if_exception_type, stop_after_attempt, wait_exponential

from contracts.inputs import SequenceMarker
from contracts.topics import DEAD_LETTER, SEQUENCE_HEADER, SEQUENCE_MARKERS
from events import metrics
from events.consumer import Decoded, Delivery, Rejection, dead_letter_headers, describe, shorten, DEAD_LETTER_MAX_BYTES
from events.store import (
    ConcurrencyError,
    EventStore,
    StoredEvent,
)

from events.unit import BatchUnitOfWork, MemoryUnitOfWork

log = logging.getLogger(__name__)


Handler = Callable[[BatchUnitOfWork, Decoded[Any]], None]
Loader = Callable[[asyncpg.Connection, BatchUnitOfWork, Sequence[Decoded[Any]]], Awaitable[None]]
Rejected = Callable[[BatchUnitOfWork, Decoded[Any] | None, str], None]


Arranger = Callable[[asyncpg.Connection, BatchUnitOfWork, list[Any], Callable[[Delivery], Any]], Awaitable[list[Any]]]


async def _no_load(conn: asyncpg.Connection, uow: BatchUnitOfWork, items: Sequence[Decoded[Any]]) -> None:
    return None


@dataclass(frozen=True)
class Consumer:
    """How one subscriber of a service handles its batches."""

    name: str  # the inbox's consumer name
    decode: Callable[[Delivery], Decoded[Any]]
    handle: Handler
    load: Loader = _no_load
    on_rejected: Rejected | None = None
    on_abort: Callable[[], None] | None = None  # a batch was not committed: drop in-memory state built from it
    arrange: Arranger | None = None  # the order to handle a batch's items in (events/sequence.py), parking some
    skip_markers: bool = False  # an input service: a refused sequenced input leaves a marker for the matcher


class ReusedMessageId(Rejection):
    """A message id already used for a message of different content."""


@dataclass
class _Item:
    delivery: Delivery
    decoded: Decoded[Any] | None
    problem: str | None = None


def dead_letter(uow: BatchUnitOfWork, delivery: Delivery, consumer: str, reason: str) -> None:
    """Stage the original message (key, bytes, headers) for the dead-letter topic with the reason."""
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
    uow.enqueue(DEAD_LETTER, delivery.key, value, headers)


def decide_batch(uow: BatchUnitOfWork, consumer: Consumer, items: Sequence[_Item]) -> None:
    """Step 3 for every message, in order: each on its own, exactly once, or dead-lettered."""
    for item in items:
        reused = False
        problem = item.problem
        if problem is None:
            problem, reused = _decide_one(uow, consumer, item)
        if problem is not None:
            _dead_letter_once(uow, consumer, item, problem, by_delivery=reused)


def _decide_one(uow: BatchUnitOfWork, consumer: Consumer, item: _Item) -> tuple[str | None, bool]:
    decoded = item.decoded
    assert decoded is not None
    seen, earlier = uow.seen_digest(consumer.name, decoded.message_id)
    if seen:
        if decoded.digest is not None and earlier is not None and earlier != decoded.digest:
            return (
                f"message_id {decoded.message_id} was already used for a different message "
                f"(sha256 {earlier[:16]}..., this one {decoded.digest[:16]}...); not processed"
            ), True
        return None, False  # done before: no second effect
    try:
        uow.mark(consumer.name, decoded.message_id, decoded.digest)
        stamp = [(n, v) for n, v in item.delivery.headers if n == SEQUENCE_HEADER and v is not None]
        if stamp:
            uow.carry(stamp)
        consumer.handle(uow, decoded)
    except Rejection as refusal:
        uow.drop()
        return str(refusal), False
    except BaseException:
        uow.drop()
        raise
    uow.keep()
    uow.outcomes[(consumer.name, metrics.kind_of(item.delivery, decoded), metrics.ACCEPTED)] += 1
    return None, False


def _dead_letter_once(uow: BatchUnitOfWork, consumer: Consumer, item: _Item, reason: str, by_delivery: bool = False) -> None:
    """Dead-letter a delivery unless done before: keyed by its message id, or by where the record
    sits when it has no usable id (undecodable, or its id was used for other content)."""
    reason = shorten(reason)
    if not isinstance(uow, MemoryUnitOfWork):  # a simulation's refusals are its output, not an operator's warning
        log.warning("%s dead-lettered %s: %s", consumer.name, item.delivery.delivery_id, reason)
    by_delivery = by_delivery or item.decoded is None
    message_id = f"delivery:{item.delivery.delivery_id}" if by_delivery else item.decoded.message_id  # type: ignore[union-attr]
    seen, _ = uow.seen_digest(consumer.name, message_id)
    if seen:
        return
    uow.mark(consumer.name, message_id, None if by_delivery else item.decoded.digest)  # type: ignore[union-attr]
    dead_letter(uow, item.delivery, consumer.name, reason)
    if consumer.skip_markers:
        _skip_marker(uow, item, reason)
    if consumer.on_rejected is not None:
        consumer.on_rejected(uow, item.decoded, reason)
    uow.keep()
    uow.outcomes[(consumer.name, metrics.kind_of(item.delivery, item.decoded), metrics.REJECTED)] += 1


def _skip_marker(uow: BatchUnitOfWork, item: _Item, reason: str) -> None:
    """A sequenced input this service refused: tell the matcher its place is empty (events/sequence.py)."""
    for name, value in item.delivery.headers:
        if name == SEQUENCE_HEADER and value is not None:
            parts = value.decode("utf-8", "replace").split("/")
            if len(parts) == 3:
                marker = SequenceMarker(
                    run=parts[0],
                    product=parts[1],
                    seq=parts[2],
                    reason=reason,
                    message_id=item.decoded.message_id if item.decoded is not None else None,
                )
                uow.enqueue(SEQUENCE_MARKERS, parts[1], marker.model_dump_json().encode(), [(name, value)])
            return


def inbox_ids(items: Sequence[_Item]) -> list[str]:
    ids = []
    for item in items:
        if item.decoded is not None:
            ids.append(item.decoded.message_id)
        ids.append(f"delivery:{item.delivery.delivery_id}")
    return ids


async def _inbox(
    conn: asyncpg.Connection, schema: str, consumer: str, message_ids: list[str]
) -> dict[tuple[str, str], str | None]:
    """Which of these message ids the inbox holds, with their digests: one index probe per id, whatever the table's
    statistics say (a plain join was planned as a hash join over the whole inbox while its statistics still
    described it as small: 21 ms a batch at 75,000 rows under the e2e bench; LIMIT 1 keeps the probe a subquery)."""
    rows = await conn.fetch(
        f"""SELECT m.message_id, i.digest FROM unnest($2::text[]) AS m(message_id)
            CROSS JOIN LATERAL (SELECT digest FROM "{schema}".inbox
                                WHERE consumer = $1 AND message_id = m.message_id LIMIT 1) AS i""",
        consumer,
        message_ids,
    )
    return {(consumer, row["message_id"]): row["digest"] for row in rows}


async def _attempt(store: EventStore, consumer: Consumer, items: Sequence[_Item]) -> None:
    """Steps 1-4 in one transaction."""
    async with store.pool.acquire() as conn:
        await conn.execute(f'BEGIN; SET LOCAL search_path TO "{store.schema}"')
        try:
            uow = BatchUnitOfWork(store.schema, store.producer, store.router)
            asked = inbox_ids(items)
            uow.seen = await _inbox(conn, store.schema, consumer.name, asked)
            if consumer.arrange is not None:
                items = await consumer.arrange(conn, uow, list(items), lambda d: _decoded_item(consumer, d))
                known = set(asked)
                extra = [i.decoded.message_id for i in items if i.decoded is not None and i.decoded.message_id not in known]
                if extra:  # parked items the arranger released: were they handled before?
                    uow.seen.update(await _inbox(conn, store.schema, consumer.name, extra))
            await consumer.load(conn, uow, [item.decoded for item in items if item.decoded is not None and item.problem is None])
            decide_batch(uow, consumer, items)
            await uow.write(conn)
        except BaseException:
            if not conn.is_closed():
                try:
                    await conn.execute("ROLLBACK")
                except Exception:
                    pass
            raise
        await conn.execute("COMMIT")
    store.doorbell.ring()
    metrics.committed(store.schema, uow)  # counted once the batch is in (events/metrics.py)


async def _handle(store: EventStore, consumer: Consumer, items: list[_Item], attempts: int) -> None:
    """Handle items, retrying on conflicts; a data error splits the batch until the message behind it is found."""
    retrying = AsyncRetrying(
        retry=retry_if_exception_type(ConcurrencyError),
        stop=stop_after_attempt(attempts),
        wait=wait_exponential(multiplier=0.01, max=0.2),
        reraise=True,
    )
    try:
        async for attempt in retrying:
            with attempt:
                try:
                    await _attempt(store, consumer, items)
                except BaseException:
                    if consumer.on_abort is not None:
                        consumer.on_abort()
                    raise
    except asyncpg.DataError as error:
        live = [item for item in items if item.problem is None]
        if len(live) <= 1:
            for item in live:
                item.problem = f"refused by the database: {describe(error)}"
            log.warning("%s: %s", consumer.name, describe(error))
            if not live:
                raise
            await _handle(store, consumer, items, attempts)
            return
        half = len(items) // 2
        await _handle(store, consumer, items[:half], attempts)
        await _handle(store, consumer, items[half:], attempts)


def decide_one(uow: MemoryUnitOfWork, consumer: "Consumer", delivery: Delivery) -> tuple[list[StoredEvent], bool]:
    """Decide one delivery in memory as the service would: (the events it led to, whether it was accepted)."""
    before, dead = len(uow.envelopes), len(uow.messages)
    decide_batch(uow, consumer, [_decoded_item(consumer, delivery)])
    refused = any(topic == DEAD_LETTER for topic, *_ in uow.messages[dead:])
    return uow.envelopes[before:], not refused


def _decoded_item(consumer: Consumer, delivery: Delivery) -> _Item:
    try:
        return _Item(delivery, consumer.decode(delivery))
    except Exception as error:  # poison: dead-lettered in the same transaction
        return _Item(delivery, None, describe(error))


async def consume_batch(store: EventStore, consumer: Consumer, deliveries: Sequence[Delivery], attempts: int = 5) -> None:
    """Handle a Kafka batch in one transaction (see the module's docstring). Any error other than a
    rejection or a data error propagates, so no offset is committed and the batch comes again."""
    await _handle(store, consumer, [_decoded_item(consumer, d) for d in deliveries], attempts)
