"""Events the matching service records: its input journal, fills and offers."""

from datetime import date
from decimal import Decimal
from typing import Any, ClassVar

from pydantic import Field

from contracts.catalogue import Product
from contracts.model import Contract
from contracts.types import Grade, Identifier, IsoDate, Name, OutletKind, PriceBasis


class InputJournaled(Contract):
    """An input fact took its place in a product's journal, decided under a rules version.

    The matcher's ordered input. v2 added `rules_version`; a v1 entry reads as version 1 (the upcaster is
    in services/matching/outcomes.py). A rules adoption is an entry of its own, with source_event_type
    `RulesAdopted` (matcher/versions.py)."""

    event_type: ClassVar[str] = "InputJournaled"
    schema_version: ClassVar[int] = 2

    product: Product
    journal_seq: int = Field(ge=1)
    source_event_id: str
    source_event_type: str
    source_schema_version: int
    fact: dict[str, Any] = Field(description="the source event's payload, as the matcher read it")
    rules_version: int = Field(ge=1, description="the matching rules version the entry was decided under")


class FillMade(Contract):
    """A quantity of a lot went to an order or a commitment at a unit price, per matching-rules.md."""

    event_type: ClassVar[str] = "FillMade"
    schema_version: ClassVar[int] = 1

    fill_id: str
    product: Product
    position: int = Field(ge=1, description="position in the product's output order of fills")
    journal_seq: int = Field(ge=1, description="the journal input that caused this fill")
    lot_id: Identifier
    cooperative_id: Identifier
    grade: Grade
    outlet_kind: OutletKind
    outlet_id: Identifier
    buyer_id: Identifier
    quantity: Decimal
    unit_price_fen: int
    price_basis: PriceBasis
    revenue_fen: int
    household_income_fen: dict[str, int]
    floor_price_fen: int | None = None
    market_price_fen: int | None = None
    price_as_of: date | None = None


class OfferOpened(Contract):
    """What is left of a lot rests on offer for buyers to see."""

    event_type: ClassVar[str] = "OfferOpened"
    schema_version: ClassVar[int] = 1

    lot_id: Identifier
    product: Product
    grade: Grade
    cooperative_id: Identifier
    county: Name
    township: Name
    quantity_left: Decimal
    available_from: IsoDate
    expires_on: IsoDate
    journal_seq: int


class OfferShrunk(Contract):
    """A resting lot was partly filled; less is on offer."""

    event_type: ClassVar[str] = "OfferShrunk"
    schema_version: ClassVar[int] = 1

    lot_id: Identifier
    product: Product
    quantity_left: Decimal
    journal_seq: int


class OfferClosed(Contract):
    """A resting lot is used up; it is no longer on offer."""

    event_type: ClassVar[str] = "OfferClosed"
    schema_version: ClassVar[int] = 1

    lot_id: Identifier
    product: Product
    journal_seq: int
