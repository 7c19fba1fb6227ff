"""The market as it stood at a moment of the log: what was on offer, who could still buy, what was sold.

A moment is a global position of the matching schema. The journal entries up to it (inclusive)
are replayed through a fresh `Book` per product, the same pure path the live service runs, so an
auditor can answer "what could buyers see when this fill was made?". Pure: no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from farmlink.audit.model import AuditLog, Record
from farmlink.audit.replay import UNREADABLE, FILL_MADE, JOURNAL_ENTRY, journal_fact, market_streams
from matcher.book import Book


@dataclass(frozen=True, slots=True)
class RestingOffer:
    """A lot resting on offer and how much of it was left."""

    lot_id: str
    quantity_left: Decimal


@dataclass(frozen=True, slots=True)
class OpenOutletState:
    """An order or commitment that could still take produce; quantity_left None: a commitment without cap."""

    outlet_kind: str
    outlet_id: str
    quantity_left: Decimal | None


@dataclass(frozen=True)
class ProductAsOf:
    """One product's market at the moment: its journal number, offers, open outlets and the fills recorded so far."""

    product: str
    journal_seq: int
    resting_lots: tuple[RestingOffer, ...]
    open_outlets: tuple[OpenOutletState, ...]
    fills: tuple[Record, ...]


@dataclass(frozen=True)
class AsOf:
    """The whole market at matching-schema global position `position` (inclusive), per product."""

    position: int
    products: dict[str, ProductAsOf]


def _product_as_of(product: str, records: list[Record], position: int) -> ProductAsOf | None:
    """Replay the product's journal entries up to `position`; collect its recorded fills up to it."""
    book = Book(product)
    fills: list[Record] = []
    for record in records:
        if record.global_position > position:
            continue  # not `break`: a tampered stream may be out of global order
        if record.event_type == JOURNAL_ENTRY:
            try:
                book.process(journal_fact(record))
            except UNREADABLE:
                continue  # re-execution reports an unreadable entry; the live matcher could not have taken it
        elif record.event_type == FILL_MADE:
            fills.append(record)
    if book.journal_seq == 0 and not fills:
        return None
    return ProductAsOf(
        product=product,
        journal_seq=book.journal_seq,
        resting_lots=tuple(RestingOffer(lot.lot.lot_id, lot.quantity_left) for lot in book.resting_lots()),
        open_outlets=tuple(
            OpenOutletState(
                outlet.outlet_kind,
                outlet.outlet.order_id if outlet.outlet_kind == "order" else outlet.outlet.commitment_id,  # type: ignore[union-attr]
                outlet.quantity_left,
            )
            for outlet in book.open_outlets()
        ),
        fills=tuple(fills),
    )


def market_as_of(log: AuditLog, position: int) -> AsOf:
    """The market as known at matching-schema global position `position`, inclusive.

    Resting lots come in the order an arriving outlet takes them, open outlets in journal order
    (as `Book.resting_lots()` / `open_outlets()` give them), fills in stream order. Products with
    nothing journaled or recorded by then are left out.
    """
    products = {}
    for product, records in market_streams(log).items():
        state = _product_as_of(product, records, position)
        if state is not None:
            products[product] = state
    return AsOf(position, products)
