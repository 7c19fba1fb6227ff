"""The matching service app: journals every input per product, runs the matcher, records outcomes.

One stream per product (`market-<product>`) holds the journal entries and everything the
matcher decided, in order; an append at the expected version guards it, so two instances
can never both write a product. Kafka keys are products and the range assignor gives one
instance the same partitions of every input topic, so a product's inputs meet in one place.
"""

import json
from dataclasses import dataclass
from pathlib import Path

from aiokafka.coordinator.assignors.range import RangePartitionAssignor
from faststream.kafka import KafkaMessage

from contracts.inputs import Receipt
from contracts.matching import FillMade
from contracts.topics import BUYER_EVENTS, COOPERATIVE_EVENTS, MARKET_EVENTS
from events.codec import decode_event
from events.consumer import Decoded, consume_batch, send_receipt
from events.runtime import ServiceRuntime, deliveries_of, require_store
from events.store import UnitOfWork
from matcher.book import Book
from matcher.facts import OfferClosed, OfferOpened, OfferShrunk
from matcher.journal import JOURNALED_TYPES, fact_from
from services.matching.outcomes import journal_entry, outcome_event

SERVICE = "matching"
runtime = ServiceRuntime(SERVICE, Path(__file__).parent / "sql")
app = runtime.app


def market_stream(product: str) -> str:
    return f"market-{product}"


@dataclass
class LiveBook:
    """A product's book in memory and the stream version it reflects."""

    book: Book
    version: int


books: dict[str, LiveBook] = {}


async def load_book(uow: UnitOfWork, product: str) -> LiveBook:
    """The product's book: from memory, or rebuilt by replaying its journal."""
    live = books.get(product)
    if live is not None:
        return live
    rows = await uow.conn.fetch(
        "SELECT event_type, payload::text AS payload, stream_version FROM events WHERE stream_id = $1 ORDER BY stream_version",
        market_stream(product),
    )
    book = Book(product)
    for row in rows:
        if row["event_type"] == "InputJournaled":
            entry = json.loads(row["payload"])
            book.process(fact_from(entry["source_event_type"], entry["fact"]))
    live = LiveBook(book, rows[-1]["stream_version"] if rows else 0)
    books[product] = live
    return live


async def handle(uow: UnitOfWork, decoded: Decoded) -> None:
    """Journal the input, let the matcher decide, record the outcomes, project offers, send a receipt."""
    envelope, payload = decoded.item
    if envelope.event_type not in JOURNALED_TYPES:
        return
    product = payload.product
    live = await load_book(uow, product)
    fact_payload = payload.model_dump(mode="json", exclude={"signed_input"})  # the signature evidence never reaches the matcher
    outcomes = live.book.process(fact_from(envelope.event_type, fact_payload))
    at = envelope.occurred_at
    new_events = [
        journal_entry(product, live.book.journal_seq, str(envelope.event_id), envelope.event_type, envelope.schema_version, fact_payload, at),
        *(outcome_event(outcome, index, at) for index, outcome in enumerate(outcomes)),
    ]
    await uow.append(
        market_stream(product), new_events, live.version, correlation_id=envelope.correlation_id, causation_id=str(envelope.event_id)
    )
    live.version += len(new_events)
    await project_offers(uow, outcomes)
    fills = [e for e in uow.appended if e.event_type == FillMade.event_type]
    await send_receipt(
        uow,
        Receipt(
            correlation_id=envelope.correlation_id,
            message_id=str(envelope.event_id),
            service=SERVICE,
            status="journaled",
            event_ids=tuple(str(e.event_id) for e in uow.appended),
            fill_ids=tuple(str(e.event_id) for e in fills),
        ),
    )


async def project_offers(uow: UnitOfWork, outcomes: list) -> None:
    """Keep the offers table in step: buyers read what is open and how much is left."""
    for outcome in outcomes:
        if isinstance(outcome, OfferOpened):
            await uow.conn.execute(
                """INSERT INTO offers VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, true, $10)""",
                outcome.lot_id, outcome.product, outcome.grade, outcome.cooperative_id, outcome.county,
                outcome.township, outcome.quantity_left, outcome.available_from, outcome.expires_on, outcome.journal_seq,
            )
        elif isinstance(outcome, OfferShrunk):
            await uow.conn.execute("UPDATE offers SET quantity_left = $2 WHERE lot_id = $1", outcome.lot_id, outcome.quantity_left)
        elif isinstance(outcome, OfferClosed):
            await uow.conn.execute("UPDATE offers SET quantity_left = 0, open = false WHERE lot_id = $1", outcome.lot_id)


async def handle_guarded(uow: UnitOfWork, decoded: Decoded) -> None:
    try:
        await handle(uow, decoded)
    except BaseException:
        # The book in memory may be ahead of what will commit: rebuild it from the journal.
        books.clear()
        raise


@runtime.subscriber(
    COOPERATIVE_EVENTS, BUYER_EVENTS, MARKET_EVENTS, partition_assignment_strategy=(RangePartitionAssignor,)
)
async def on_input_event(body: list[bytes], message: KafkaMessage) -> None:
    try:
        await consume_batch(require_store(runtime), SERVICE, deliveries_of(message), decode_event, handle_guarded)
    except BaseException:
        books.clear()
        raise
