"""The matching service app: journals every input per product, runs the matcher, records outcomes.

One stream per product (`market-<product>`) holds the journal entries and everything the
matcher decided, in order; an append at the expected version guards it, so two instances
can never both write a product. Kafka keys are products and the range assignor gives one
instance the same partitions of every input topic, so a product's inputs meet in one place.
"""

import asyncio
import contextlib
import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import asyncpg
from aiokafka.coordinator.assignors.range import RangePartitionAssignor
from faststream.kafka import KafkaMessage

from contracts.inputs import Receipt
from contracts.matching import FillMade
from contracts.topics import BUYER_EVENTS, COOPERATIVE_EVENTS, MARKET_EVENTS, SEQUENCE_MARKERS
from events.codec import decode_event
from events.consumer import Decoded, Delivery, send_receipt
from events.sequence import Sequencer, stamp_of
from events.runtime import ServiceRuntime, deliveries_of, require_store
from events.unit import BatchUnitOfWork, Table
from events.handling import Consumer, consume_batch
from matcher.book import Book
from matcher.facts import OfferClosed, OfferOpened, OfferShrunk
from matcher.journal import JOURNALED_TYPES, fact_from
from services.matching import snapshots
from services.matching.outcomes import adoption_entry, journal_entry, outcome_event

log = logging.getLogger(__name__)

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
BOOK = "book"  # view: product -> its LiveBook


OFFERS = Table(
    "offers",
    ("lot_id",),
    (
        ("lot_id", "text"),
        ("product", "text"),
        ("grade", "text"),
        ("cooperative_id", "text"),
        ("county", "text"),
        ("township", "text"),
        ("quantity_left", "numeric"),
        ("available_from", "date"),
        ("expires_on", "date"),
        ("open", "boolean"),
        ("opened_by_journal_seq", "integer"),
    ),
)


async def load_book(conn: asyncpg.Connection, product: str) -> LiveBook:
    """The product's book: from memory, or rebuilt from its latest snapshot (if any) and the journal after it."""
    live = books.get(product)
    if live is not None:
        return live
    stream_id = market_stream(product)
    snapshot = await snapshots.latest(conn, product, stream_id)
    book, version = (Book(product), 0) if snapshot is None else (snapshot.book, snapshot.stream_version)
    rows = await conn.fetch(
        "SELECT event_type, CASE WHEN event_type = 'InputJournaled' THEN payload::text END AS payload, stream_version "
        "FROM events WHERE stream_id = $1 AND stream_version > $2 ORDER BY stream_version",
        stream_id,
        version,
    )
    for row in rows:
        if row["event_type"] == "InputJournaled":
            entry = json.loads(row["payload"])
            if entry["journal_seq"] != book.journal_seq + 1:
                raise RuntimeError(
                    f"{stream_id}: journal entry {entry['journal_seq']} at version {row['stream_version']} "
                    f"where {book.journal_seq + 1} was due"
                )
            book.process(fact_from(entry["source_event_type"], entry["fact"]))
    live = LiveBook(book, rows[-1]["stream_version"] if rows else version)
    books[product] = live
    return live


async def load(conn: asyncpg.Connection, uow: BatchUnitOfWork, items: Sequence[Decoded]) -> None:
    """The books of the products the batch names (from memory, or rebuilt) and their streams' heads."""
    products = list(
        dict.fromkeys(
            item.item[1].product for item in items if item.item[0] is not None and item.item[0].event_type in JOURNALED_TYPES
        )
    )
    for product in products:
        uow.load(BOOK, {product: await load_book(conn, product)})
    await uow.load_heads(conn, [market_stream(p) for p in products])


def handle(uow: BatchUnitOfWork, decoded: Decoded) -> None:
    """Journal the input, let the matcher decide, record the outcomes, project offers, send a receipt."""
    envelope, payload = decoded.item
    if envelope is None or envelope.event_type not in JOURNALED_TYPES:
        return  # a marker: a sequenced input its service refused; its place in the run is passed (events/sequence.py)
    product = payload.product
    live = uow.get(BOOK, product)
    if live is None:  # a unit of work in memory (farmlink simulate): the book starts empty
        live = LiveBook(Book(product), 0)
        uow.load(BOOK, {product: live})
    fact_payload = payload.model_dump(mode="json", exclude={"signed_input"})  # the signature evidence never reaches the matcher
    at = envelope.occurred_at
    adoption = adoption_entry(live.book, at)  # a newer rules version whose day has come is journaled first
    outcomes = live.book.process(fact_from(envelope.event_type, fact_payload))
    new_events = [
        *([] if adoption is None else [adoption]),
        journal_entry(
            product,
            live.book.journal_seq,
            str(envelope.event_id),
            envelope.event_type,
            envelope.schema_version,
            fact_payload,
            at,
            rules_version=live.book.rules_version,
        ),
        *(outcome_event(outcome, index, at) for index, outcome in enumerate(outcomes)),
    ]
    uow.append(
        market_stream(product),
        new_events,
        live.version,
        correlation_id=envelope.correlation_id,
        causation_id=str(envelope.event_id),
    )
    live.version += len(new_events)
    snapshots.maybe_snapshot(uow, live.book, live.version)
    project_offers(uow, outcomes)
    fills = [e for e in uow.appended if e.event_type == FillMade.event_type]
    send_receipt(
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


def project_offers(uow: BatchUnitOfWork, outcomes: list) -> None:
    """Keep the offers table in step: buyers read what is open and how much is left."""
    for outcome in outcomes:
        if isinstance(outcome, OfferOpened):
            uow.put(
                OFFERS,
                {
                    "lot_id": outcome.lot_id,
                    "product": outcome.product,
                    "grade": outcome.grade,
                    "cooperative_id": outcome.cooperative_id,
                    "county": outcome.county,
                    "township": outcome.township,
                    "quantity_left": outcome.quantity_left,
                    "available_from": outcome.available_from,
                    "expires_on": outcome.expires_on,
                    "open": True,
                    "opened_by_journal_seq": outcome.journal_seq,
                },
                view=False,
            )
        elif isinstance(outcome, OfferShrunk):
            uow.patch(OFFERS, outcome.lot_id, {"quantity_left": outcome.quantity_left})
        elif isinstance(outcome, OfferClosed):
            uow.patch(OFFERS, outcome.lot_id, {"quantity_left": 0, "open": False})


def forget_books() -> None:
    """A batch did not commit: the books in memory may be ahead of the journal; rebuild them from it."""
    books.clear()


def decode(delivery: Delivery) -> Decoded:
    """An input event, or a marker from SEQUENCE_MARKERS (item (None, None)) standing for a refused sequenced input."""
    if delivery.topic == SEQUENCE_MARKERS:
        stamp = stamp_of(delivery.headers)
        if stamp is None:
            raise ValueError(f"{SEQUENCE_MARKERS}: a marker without a valid sequence header")
        marker = json.loads(delivery.value)
        return Decoded(
            (None, None),
            message_id=f"marker:{stamp.run}/{stamp.product}/{stamp.seq}",
            correlation_id=str(marker.get("message_id") or stamp.run),
        )
    return decode_event(delivery)


SEQUENCER = Sequencer()
CONSUMER = Consumer(SERVICE, decode, handle, load, on_abort=forget_books, arrange=SEQUENCER.arrange)
batches = asyncio.Lock()  # one batch at a time touches the books: the subscriber's and the gap sweeper's
SWEEP_INTERVAL_S = 10.0


async def sweep_gaps() -> None:
    """Now and then, hand over parked inputs whose gap outlived the timeout, even when no new input comes."""
    while True:
        await asyncio.sleep(SWEEP_INTERVAL_S)
        try:
            async with batches:
                await consume_batch(require_store(runtime), CONSUMER, [])
        except asyncio.CancelledError:
            raise
        except Exception:
            forget_books()
            log.exception("matching: sweeping sequence gaps failed; trying again later")


sweeper: list[asyncio.Task] = []


async def start_sweeper() -> None:
    sweeper.append(asyncio.create_task(sweep_gaps(), name="matching-sequence-sweeper"))


async def stop_sweeper() -> None:
    while sweeper:
        task = sweeper.pop()
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await task


runtime.on_start.append(start_sweeper)
runtime.on_stop.append(stop_sweeper)


@runtime.subscriber(
    COOPERATIVE_EVENTS, BUYER_EVENTS, MARKET_EVENTS, SEQUENCE_MARKERS, partition_assignment_strategy=(RangePartitionAssignor,)
)
async def on_input_event(body: list[bytes], message: KafkaMessage) -> None:
    try:
        async with batches:
            await consume_batch(require_store(runtime), CONSUMER, deliveries_of(message))
    except BaseException:
        forget_books()
        raise
