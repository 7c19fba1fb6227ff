"""Turning the matcher's outcomes into events, with ids derived from the journal, never random (matcher/outcomes.py)."""

import uuid
from datetime import datetime
from typing import Any

from contracts.matching import FillMade, InputJournaled, OfferClosed, OfferOpened, OfferShrunk
from contracts.model import Contract
from events import upcasting
from events.store import NewEvent
from matcher.book import Book
from matcher.journal import fact_from
from matcher.facts import Outcome
from matcher.outcomes import derived_id, outcome_record
from matcher.versions import ADOPTION_TYPE, adoption_fact, due_adoption


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


OUTCOME_MODELS: dict[str, type[Contract]] = {
    model.event_type: model for model in (FillMade, OfferOpened, OfferShrunk, OfferClosed)
}
"""The contract model of each kind of outcome record (matcher/outcomes.py)."""


def outcome_event(outcome: Outcome, index: int, at: datetime) -> NewEvent:
    """The event recording one outcome of the matcher: its record (`matcher.outcomes.outcome_record`, the one
    mapping the audit re-executes too) as its contract model. TypeError for anything that is not an outcome."""
    event_type, event_id, payload = outcome_record(outcome, index)
    return NewEvent(OUTCOME_MODELS[event_type].model_validate(payload), event_id=uuid.UUID(event_id), occurred_at=at)
