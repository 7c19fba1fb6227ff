"""The reference model: docs/matching-rules.md read literally, the executable spec of the matcher.

For each input it scans everything journaled so far, picks the best eligible partner by the
rulebook's ranking, fills, and repeats (§M1-§M3): no shelves, no heaps, no archive, no horizon,
no cached ranks. Eligibility, price and ranking are the rulebook's clauses (matcher/rules.py)
of the version in force, so a new rules version is checked the same way. Deliberately slow:
it is the oracle of the property tests (tests/unit/test_matcher_properties.py) and of the
matcher benchmark's agreement check (farmlink/operations/bench/matcher_bench.py), which compare it with
the engine (matcher/book.py) fill by fill.

The duplicate, cancellation and numbering decisions are those of matcher/README.md
("Decisions where matching-rules.md is silent").
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from typing import NamedTuple

from matcher.facts import (
    DECIMAL_CONTEXT,
    Commitment,
    Fact,
    Fill,
    Lot,
    MarketPrice,
    Order,
    OrderCancellation,
    OutletKind,
    Planting,
    RulesAdoption,
)
from matcher.rules import VERSION_1, Price, Rulebook, market_as_of, rulebook


class ReferenceFill(NamedTuple):
    """What the reference decides of a fill: the input that caused it, the pair, the quantity and the price."""

    journal_seq: int
    lot_id: str
    outlet_kind: OutletKind
    outlet_id: str
    quantity: Decimal
    unit_price_fen: int


@dataclass
class _Resting:
    lot: Lot
    seq: int
    left: Decimal


@dataclass
class _Outlet:
    kind: OutletKind
    fact: Order | Commitment
    seq: int
    left: Decimal | None  # None: a commitment without cap
    cancelled: bool = False
    sold: dict[str, Decimal] = field(default_factory=dict)  # cooperative -> quantity sold under it

    @property
    def outlet_id(self) -> str:
        return self.fact.order_id if isinstance(self.fact, Order) else self.fact.commitment_id


class Reference:
    """One product's journal, read literally."""

    def __init__(self, rules: Rulebook = VERSION_1) -> None:
        self.rules = rules
        self.seq = 0
        self.lots: list[_Resting] = []  # every lot journaled (first of each id), used up or not
        self.outlets: list[_Outlet] = []  # every order and commitment journaled (first of each id)
        self.prices: list[tuple[date, int, MarketPrice]] = []  # (observed_on, journal_seq, observation)
        self.plantings: dict[str, Planting] = {}  # the first of each id
        self.fills: list[ReferenceFill] = []

    def process(self, fact: Fact) -> None:
        """Take the next input of the product's journal."""
        self.seq += 1
        if isinstance(fact, Lot):
            if all(resting.lot.lot_id != fact.lot_id for resting in self.lots):
                resting = _Resting(fact, self.seq, fact.quantity)
                self.lots.append(resting)
                self._lot_arrives(resting)
        elif isinstance(fact, (Order, Commitment)):
            outlet = (
                _Outlet("order", fact, self.seq, fact.quantity)
                if isinstance(fact, Order)
                else _Outlet("commitment", fact, self.seq, fact.cap_quantity)
            )
            if all((o.kind, o.outlet_id) != (outlet.kind, outlet.outlet_id) for o in self.outlets):
                self.outlets.append(outlet)
                self._outlet_arrives(outlet)
        elif isinstance(fact, OrderCancellation):
            for outlet in self.outlets:
                if outlet.kind == "order" and outlet.outlet_id == fact.order_id:
                    outlet.cancelled = True
        elif isinstance(fact, MarketPrice):
            self.prices.append((fact.observed_on, self.seq, fact))
        elif isinstance(fact, Planting):
            self.plantings.setdefault(fact.planting_id, fact)
        elif isinstance(fact, RulesAdoption):
            self.rules = rulebook(fact.rules_version)

    # -- the rules, literally

    def room(self, outlet: _Outlet, lot: Lot) -> Decimal | None:
        """How much the outlet can still take from this lot (§E, §U1); None: no limit; 0 or less: not eligible."""
        rules = self.rules
        if outlet.cancelled or (outlet.left is not None and outlet.left <= 0):
            return Decimal(0)
        fact = outlet.fact
        if isinstance(fact, Order):
            if not rules.order_takes(lot, fact):
                return Decimal(0)
            return outlet.left
        if not rules.commitment_takes(lot, fact, frozenset(fact.eligible_counties), frozenset(fact.eligible_cooperatives)):
            return Decimal(0)
        room = outlet.left
        if fact.max_quantity_per_mu is not None:
            planted = sum((p.area_mu for p in self.plantings.values() if p.cooperative_id == lot.cooperative_id), Decimal(0))
            sold = outlet.sold.get(lot.cooperative_id, Decimal(0))
            per_mu = rules.per_mu_room(planted, fact.max_quantity_per_mu, sold, lot.product)
            if per_mu <= 0:
                return Decimal(0)
            room = per_mu if room is None or per_mu < room else room
        return room

    def eligible(self, outlet: _Outlet, lot: Lot) -> bool:
        room = self.room(outlet, lot)
        return room is None or room > 0

    def price(self, outlet: _Outlet, lot: Lot) -> Price:
        """What the outlet pays for the lot (§P1-§P4)."""
        fact = outlet.fact
        if isinstance(fact, Order):
            return self.rules.order_price(fact.limit_price_fen)
        as_of = self.rules.as_of_date(lot.available_from, fact.valid_from)
        observations = [
            (observed_on, seq, p.price_fen)
            for observed_on, seq, p in self.prices
            if p.grade == lot.grade and p.market == fact.reference_market
        ]
        return self.rules.commitment_price(fact.floor_price_fen, market_as_of(observations, as_of), as_of)

    def _lot_arrives(self, resting: _Resting) -> None:
        """§M1: fill the lot from the best eligible outlet until it is used up or none is eligible."""
        lot = resting.lot
        while resting.left > 0:
            candidates = [o for o in self.outlets if self.eligible(o, lot)]
            if not candidates:
                return
            best = min(
                candidates, key=lambda o: self.rules.outlet_rank(self.price(o, lot).unit_price_fen, o.kind, o.seq, o.outlet_id)
            )
            self._fill(resting, best)

    def _outlet_arrives(self, outlet: _Outlet) -> None:
        """§M2: fill the outlet from the best eligible resting lot until it is full or none is eligible."""
        while outlet.left is None or outlet.left > 0:
            candidates = [r for r in self.lots if r.left > 0 and self.eligible(outlet, r.lot)]
            if not candidates:
                return
            self._fill(min(candidates, key=lambda r: self.rules.lot_priority(r.lot, r.seq)), outlet)

    def _fill(self, resting: _Resting, outlet: _Outlet) -> None:
        """§M3: min(lot left, what the outlet can take) moves at the outlet's price."""
        lot = resting.lot
        room = self.room(outlet, lot)
        quantity = resting.left if room is None or resting.left <= room else room
        resting.left = DECIMAL_CONTEXT.subtract(resting.left, quantity)
        if outlet.left is not None:
            outlet.left = DECIMAL_CONTEXT.subtract(outlet.left, quantity)
        outlet.sold[lot.cooperative_id] = DECIMAL_CONTEXT.add(outlet.sold.get(lot.cooperative_id, Decimal(0)), quantity)
        price = self.price(outlet, lot)
        self.fills.append(ReferenceFill(self.seq, lot.lot_id, outlet.kind, outlet.outlet_id, quantity, price.unit_price_fen))


def reference_fills(journal: Iterable[Fact]) -> dict[str, list[ReferenceFill]]:
    """Per product that has any, the fills the rules give for the journal, read literally (slowly)."""
    references: dict[str, Reference] = {}
    for fact in journal:
        references.setdefault(fact.product, Reference()).process(fact)
    return {product: reference.fills for product, reference in references.items() if reference.fills}


def reference_view(outcomes: Iterable[object]) -> dict[str, list[ReferenceFill]]:
    """Per product, the same view of the fills among an engine's outcomes, for comparing with `reference_fills`."""
    fills: dict[str, list[ReferenceFill]] = {}
    for outcome in outcomes:
        if isinstance(outcome, Fill):
            fills.setdefault(outcome.product, []).append(
                ReferenceFill(
                    outcome.journal_seq,
                    outcome.lot_id,
                    outcome.outlet_kind,
                    outcome.outlet_id,
                    outcome.quantity,
                    outcome.unit_price_fen,
                )
            )
    return fills
