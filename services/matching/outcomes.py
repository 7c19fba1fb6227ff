"""Turning the matcher's outcomes into events, with ids derived from the journal, never random."""

import uuid
from datetime import datetime
from typing import Any

from contracts.matching import FillMade, InputJournaled, OfferClosed, OfferOpened, OfferShrunk
from contracts.model import Contract
from events import upcasting
from events.store import NewEvent
from matcher.book import Book
from matcher.facts import Fill, OfferClosed as Closed, OfferOpened as Opened, OfferShrunk as Shrunk
from matcher.journal import fact_from
from matcher.versions import ADOPTION_TYPE, adoption_fact, due_adoption

FARMLINK_NAMESPACE = uuid.UUID("6f1d3c52-8f0e-4f38-9a57-1e3b2a7c9d10")


def derived_id(*parts: object) -> uuid.UUID:
    """A stable id from the parts that make a thing unique (uuid5)."""
    return uuid.uuid5(FARMLINK_NAMESPACE, "/".join(str(part) for part in parts))


def fill_id(fill: Fill) -> uuid.UUID:
    """A fill is named by its lot, its outlet and its place in the product's output order."""
    return derived_id("fill", fill.product, fill.lot_id, fill.outlet_kind, fill.outlet_id, fill.position)


def journal_entry(
    product: str,
    seq: int,
    source_event_id: str,
    source_type: str,
    version: int,
    fact: dict[str, Any],
    at: datetime,
    rules_version: int = 1,
) -> NewEvent:
    """The journal entry of one input, decided under `rules_version`."""
    entry = InputJournaled(
        product=product,
        journal_seq=seq,
        source_event_id=source_event_id,
        source_event_type=source_type,
        source_schema_version=version,
        fact=fact,
        rules_version=rules_version,
    )
    return NewEvent(entry, event_id=derived_id("journal", product, seq), occurred_at=at)


def adoption_entry(book: Book, at: datetime) -> NewEvent | None:
    """If a newer rules version's day has come for an input recorded at `at`, the journal entry adopting it
    (already folded into the book); None if none is due (matcher/versions.py)."""
    version = due_adoption(book.rules_version, at.date())
    if version is None:
        return None
    fact = adoption_fact(book.product, version)
    book.process(fact_from(ADOPTION_TYPE, fact))
    source_id = str(derived_id("rules", book.product, version))
    return journal_entry(book.product, book.journal_seq, source_id, ADOPTION_TYPE, 1, fact, at, rules_version=version)


@upcasting.register("InputJournaled", 1)
def _journaled_under_version_1(payload: dict[str, Any]) -> dict[str, Any]:
    """InputJournaled v1 -> v2: entries written before rules versions were decided under version 1."""
    return {**payload, "rules_version": 1}


def outcome_event(outcome: object, index: int, at: datetime) -> NewEvent:
    """The event recording one outcome of the matcher."""
    model: Contract
    if isinstance(outcome, Fill):
        model = FillMade(
            fill_id=str(fill_id(outcome)),
            product=outcome.product,
            position=outcome.position,
            journal_seq=outcome.journal_seq,
            lot_id=outcome.lot_id,
            cooperative_id=outcome.cooperative_id,
            grade=outcome.grade,
            outlet_kind=outcome.outlet_kind,
            outlet_id=outcome.outlet_id,
            buyer_id=outcome.buyer_id,
            quantity=outcome.quantity,
            unit_price_fen=outcome.unit_price_fen,
            price_basis=outcome.price_basis,
            revenue_fen=outcome.revenue_fen,
            household_income_fen=dict(outcome.household_income_fen),
            floor_price_fen=outcome.floor_price_fen,
            market_price_fen=outcome.market_price_fen,
            price_as_of=outcome.price_as_of,
        )
        return NewEvent(model, event_id=fill_id(outcome), occurred_at=at)
    if isinstance(outcome, Opened):
        model = OfferOpened(
            lot_id=outcome.lot_id,
            product=outcome.product,
            grade=outcome.grade,
            cooperative_id=outcome.cooperative_id,
            county=outcome.county,
            township=outcome.township,
            quantity_left=outcome.quantity_left,
            available_from=outcome.available_from,
            expires_on=outcome.expires_on,
            journal_seq=outcome.journal_seq,
        )
    elif isinstance(outcome, Shrunk):
        model = OfferShrunk(
            lot_id=outcome.lot_id, product=outcome.product, quantity_left=outcome.quantity_left, journal_seq=outcome.journal_seq
        )
    elif isinstance(outcome, Closed):
        model = OfferClosed(lot_id=outcome.lot_id, product=outcome.product, journal_seq=outcome.journal_seq)
    else:
        raise TypeError(f"unknown outcome {outcome!r}")
    return NewEvent(model, event_id=derived_id("offer", outcome.product, outcome.journal_seq, index), occurred_at=at)
