"""farmlink's matching engine: a pure function from a product's ordered input journal to fills and offers.

The matching service runs it live and the audit re-executes it over the recorded
journal; both import this package, which imports nothing but the standard library.
"""

from matcher.book import Book, Market
from matcher.facts import (
    DECIMAL_CONTEXT,
    GRADE_RANK,
    LIVESTOCK,
    Commitment,
    Contribution,
    Fact,
    Fill,
    Grade,
    Lot,
    MarketPrice,
    OfferClosed,
    OfferOpened,
    OfferShrunk,
    Order,
    OrderCancellation,
    Outcome,
    OutletKind,
    Planting,
    PriceBasis,
    RulesAdoption,
    cut_down,
    grade_at_least,
    unit_quantum,
)
from matcher.money import revenue_fen, split_largest_remainder
from matcher.rules import RULEBOOKS, Rulebook, lot_priority, outlet_rank
from matcher.state import OpenOutlet, RestingLot
from matcher.output import fill_line, fill_record, quantity_text

__all__ = [
    "DECIMAL_CONTEXT",
    "GRADE_RANK",
    "LIVESTOCK",
    "Book",
    "Commitment",
    "Contribution",
    "Fact",
    "Fill",
    "Grade",
    "Lot",
    "Market",
    "MarketPrice",
    "OfferClosed",
    "OfferOpened",
    "OfferShrunk",
    "OpenOutlet",
    "Order",
    "OrderCancellation",
    "Outcome",
    "OutletKind",
    "Planting",
    "PriceBasis",
    "RULEBOOKS",
    "RestingLot",
    "Rulebook",
    "RulesAdoption",
    "cut_down",
    "fill_line",
    "fill_record",
    "grade_at_least",
    "lot_priority",
    "outlet_rank",
    "quantity_text",
    "revenue_fen",
    "split_largest_remainder",
    "unit_quantum",
]
