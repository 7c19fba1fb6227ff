"""The matcher's language: the facts it reads from a product's journal and the outcomes it writes.

Facts check themselves when built, so a fact that could not take part in matching
(a float quantity, 1.5 live pigs, a window that ends before it starts) never reaches
a book: both the matching service and the audit build the same facts and fail the same way.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from decimal import (
    ROUND_DOWN,
    ROUND_HALF_EVEN,
    Context,
    Decimal,
    DivisionByZero,
    InvalidOperation,
    Overflow,
)
from typing import Literal, TypeAlias

DECIMAL_CONTEXT = Context(
    prec=60,
    rounding=ROUND_HALF_EVEN,
    Emin=-999999,
    Emax=999999,
    capitals=1,
    clamp=0,
    flags=[],
    traps=[InvalidOperation, DivisionByZero, Overflow],
)
"""The one decimal context the matcher computes in; every field is explicit so the
process-wide default context can never change a result."""

Grade: TypeAlias = Literal["A", "B", "C"]
OutletKind: TypeAlias = Literal["order", "commitment"]
PriceBasis: TypeAlias = Literal["order_limit", "market", "floor"]

GRADE_RANK: dict[str, int] = {"C": 1, "B": 2, "A": 3}
"""Produce grades in order of quality: A is best."""

LIVESTOCK = frozenset({"live_pig", "eco_chicken", "white_goat"})
"""Products counted in whole head; every other product is weighed in kg to the gram."""

_WHOLE_HEAD = Decimal(1)
_GRAM = Decimal("0.001")


def grade_at_least(grade: str, minimum: str) -> bool:
    """Whether produce of `grade` is good enough for an outlet asking for `minimum`."""
    return GRADE_RANK[grade] >= GRADE_RANK[minimum]


def unit_quantum(product: str) -> Decimal:
    """The smallest quantity of a product that can change hands: one head or one gram."""
    return _WHOLE_HEAD if product in LIVESTOCK else _GRAM


def cut_down(quantity: Decimal, product: str) -> Decimal:
    """A quantity cut down to whole units of the product (whole head, or whole grams)."""
    return quantity.quantize(unit_quantum(product), rounding=ROUND_DOWN, context=DECIMAL_CONTEXT)


def _text(name: str, value: object) -> None:
    if not isinstance(value, str) or not value:
        raise ValueError(f"{name} must be a non-empty string, got {value!r}")


def _texts(name: str, value: object) -> None:
    if not isinstance(value, tuple):
        raise ValueError(f"{name} must be a tuple of strings, got {value!r}")
    for item in value:
        _text(name, item)


def _day(name: str, value: object) -> None:
    # A datetime would smuggle a wall-clock time into business dates and cannot be compared with a date.
    if not isinstance(value, date) or isinstance(value, datetime):
        raise ValueError(f"{name} must be a date, got {value!r}")


def _window(start_name: str, start: date, end_name: str, end: date) -> None:
    _day(start_name, start)
    _day(end_name, end)
    if start > end:
        raise ValueError(f"{start_name} {start} is after {end_name} {end}")


def _grade(name: str, value: object) -> None:
    if value not in GRADE_RANK:
        raise ValueError(f"{name} must be one of A, B, C, got {value!r}")


def _fen(name: str, value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"{name} must be a non-negative integer number of fen, got {value!r}")


def _decimal(name: str, value: object, *, positive: bool) -> None:
    if not isinstance(value, Decimal) or not value.is_finite():
        raise ValueError(f"{name} must be a finite Decimal, got {value!r}")
    if value < 0 or (positive and value == 0):
        raise ValueError(f"{name} must be {'positive' if positive else 'non-negative'}, got {value}")


def _quantity(name: str, value: Decimal, product: str, *, positive: bool = True) -> None:
    _decimal(name, value, positive=positive)
    try:
        whole_units = cut_down(value, product) == value
    except InvalidOperation:
        whole_units = False
    if not whole_units:
        unit = "whole head" if product in LIVESTOCK else "kg to 3 decimal places"
        raise ValueError(f"{name} of {product} must be in {unit}, got {value}")


# ---------------------------------------------------------------- facts


@dataclass(frozen=True, slots=True)
class Contribution:
    """How much of a lot one household brought, and whether it is a registered-poor (建档立卡) household."""

    household_id: str
    quantity: Decimal
    registered_poor: bool

    def __post_init__(self) -> None:
        _text("household_id", self.household_id)
        _decimal("contribution quantity", self.quantity, positive=True)
        if not isinstance(self.registered_poor, bool):
            raise ValueError(f"registered_poor must be a bool, got {self.registered_poor!r}")


@dataclass(frozen=True, slots=True)
class Lot:
    """A harvest lot, the unit of supply: one product and grade from one cooperative, ready from a date,
    perishable until a date, with the households that brought it."""

    lot_id: str
    cooperative_id: str
    county: str
    township: str
    product: str
    grade: Grade
    quantity: Decimal
    available_from: date
    expires_on: date
    contributions: tuple[Contribution, ...]

    def __post_init__(self) -> None:
        for name in ("lot_id", "cooperative_id", "county", "township", "product"):
            _text(name, getattr(self, name))
        _grade("grade", self.grade)
        _quantity("lot quantity", self.quantity, self.product)
        _window("available_from", self.available_from, "expires_on", self.expires_on)
        # Revenue is split over the contributions, so a lot without any could pay no one.
        if not isinstance(self.contributions, tuple) or not self.contributions:
            raise ValueError("a lot needs a non-empty tuple of contributions")
        for contribution in self.contributions:
            if not isinstance(contribution, Contribution):
                raise ValueError(f"contributions must be Contribution, got {contribution!r}")
            _quantity("contribution quantity", contribution.quantity, self.product)

    @property
    def has_registered_poor(self) -> bool:
        """Whether any registered-poor household contributed: such lots are sold first."""
        return any(contribution.registered_poor for contribution in self.contributions)


@dataclass(frozen=True, slots=True)
class Order:
    """A buyer's wish to buy: product, minimum grade, quantity, limit price per unit, delivery window, regions."""

    order_id: str
    buyer_id: str
    product: str
    min_grade: Grade
    quantity: Decimal
    limit_price_fen: int
    deliver_from: date
    deliver_to: date
    regions: tuple[str, ...]

    def __post_init__(self) -> None:
        for name in ("order_id", "buyer_id", "product"):
            _text(name, getattr(self, name))
        _grade("min_grade", self.min_grade)
        _quantity("order quantity", self.quantity, self.product)
        _fen("limit_price_fen", self.limit_price_fen)
        _window("deliver_from", self.deliver_from, "deliver_to", self.deliver_to)
        _texts("regions", self.regions)


@dataclass(frozen=True, slots=True)
class OrderCancellation:
    """A buyer withdraws the unfilled rest of an order; its fills stand."""

    order_id: str
    product: str

    def __post_init__(self) -> None:
        _text("order_id", self.order_id)
        _text("product", self.product)


@dataclass(frozen=True, slots=True)
class Commitment:
    """A guaranteed-floor purchase: the buyer takes eligible produce in a period at max(market, floor)."""

    commitment_id: str
    buyer_id: str
    product: str
    min_grade: Grade
    floor_price_fen: int
    reference_market: str
    valid_from: date
    valid_to: date
    eligible_counties: tuple[str, ...]
    eligible_cooperatives: tuple[str, ...]
    cap_quantity: Decimal | None
    max_quantity_per_mu: Decimal | None

    def __post_init__(self) -> None:
        for name in ("commitment_id", "buyer_id", "product", "reference_market"):
            _text(name, getattr(self, name))
        _grade("min_grade", self.min_grade)
        _fen("floor_price_fen", self.floor_price_fen)
        _window("valid_from", self.valid_from, "valid_to", self.valid_to)
        _texts("eligible_counties", self.eligible_counties)
        _texts("eligible_cooperatives", self.eligible_cooperatives)
        if self.cap_quantity is not None:
            _quantity("cap_quantity", self.cap_quantity, self.product, positive=False)
        if self.max_quantity_per_mu is not None:
            _decimal("max_quantity_per_mu", self.max_quantity_per_mu, positive=False)


@dataclass(frozen=True, slots=True)
class MarketPrice:
    """An observed reference price per unit for a product and grade at a named market on a date."""

    product: str
    grade: Grade
    market: str
    price_fen: int
    observed_on: date

    def __post_init__(self) -> None:
        _text("product", self.product)
        _grade("grade", self.grade)
        _text("market", self.market)
        _fen("price_fen", self.price_fen)
        _day("observed_on", self.observed_on)


@dataclass(frozen=True, slots=True)
class Planting:
    """Land a cooperative put under a product; it sets how much the cooperative may sell under a per-mu limit."""

    planting_id: str
    cooperative_id: str
    product: str
    area_mu: Decimal

    def __post_init__(self) -> None:
        for name in ("planting_id", "cooperative_id", "product"):
            _text(name, getattr(self, name))
        _decimal("area_mu", self.area_mu, positive=False)


@dataclass(frozen=True, slots=True)
class RulesAdoption:
    """A journal input of its own: from this entry on, the product's book decides under rules version
    `rules_version` (matcher/versions.py). It matches nothing itself."""

    product: str
    rules_version: int

    def __post_init__(self) -> None:
        _text("product", self.product)
        if isinstance(self.rules_version, bool) or not isinstance(self.rules_version, int) or self.rules_version < 1:
            raise ValueError(f"rules_version must be a whole number from 1, got {self.rules_version!r}")


Fact: TypeAlias = Lot | Order | OrderCancellation | Commitment | MarketPrice | Planting | RulesAdoption
"""One input of a product's journal."""

FACT_TYPES = (Lot, Order, OrderCancellation, Commitment, MarketPrice, Planting, RulesAdoption)


# ---------------------------------------------------------------- outcomes


@dataclass(frozen=True, slots=True)
class Fill:
    """A match: a quantity of a lot went to an order or commitment at a unit price, with the rule that set it."""

    position: int
    journal_seq: int
    product: str
    lot_id: str
    cooperative_id: str
    grade: Grade
    outlet_kind: OutletKind
    outlet_id: str
    buyer_id: str
    quantity: Decimal
    unit_price_fen: int
    price_basis: PriceBasis
    revenue_fen: int
    household_income_fen: tuple[tuple[str, int], ...]
    floor_price_fen: int | None
    market_price_fen: int | None
    price_as_of: date | None


@dataclass(frozen=True, slots=True)
class OfferOpened:
    """What was left of an arriving lot after its matching now rests on offer for buyers to see."""

    lot_id: str
    product: str
    grade: Grade
    cooperative_id: str
    county: str
    township: str
    quantity_left: Decimal
    available_from: date
    expires_on: date
    journal_seq: int


@dataclass(frozen=True, slots=True)
class OfferShrunk:
    """A resting lot was partly filled by an arriving outlet; less is on offer."""

    lot_id: str
    product: str
    quantity_left: Decimal
    journal_seq: int


@dataclass(frozen=True, slots=True)
class OfferClosed:
    """A resting lot is used up and no longer on offer."""

    lot_id: str
    product: str
    journal_seq: int


Outcome: TypeAlias = Fill | OfferOpened | OfferShrunk | OfferClosed
"""Something the matcher decided while processing one journal input."""
