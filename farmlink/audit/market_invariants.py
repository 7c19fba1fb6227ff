"""The invariants of each product's matching stream: every recorded fill checked against the terms the journal
set before it (lots, orders, commitments, prices, plantings), without the matcher's Book (`invariant`)."""

from __future__ import annotations

from bisect import bisect_right, insort
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Any

from farmlink.audit.amounts import (
    INVARIANT,
    MALFORMED,
    ZERO,
    FillTotals,
    PairTotals,
    add_to,
    differing,
    fen_of,
    optional_quantity_of,
    quantity_of,
    revenue_of,
    shares_of,
    weights_of,
)
from farmlink.audit.model import Finding, Record, finding_at
from farmlink.audit.replay import FILL_MADE, JOURNAL_ENTRY
from matcher.facts import DECIMAL_CONTEXT
from matcher.money import split_largest_remainder
from matcher.output import quantity_text as _q


@dataclass(frozen=True, slots=True)
class _LotTerms:
    """What a journaled HarvestRecorded promised: how much, of what, from whom, from when."""

    lot_id: str
    cooperative_id: str
    product: str
    grade: str
    quantity: Decimal
    available_from: date
    weights: tuple[tuple[str, Decimal], ...]

    @classmethod
    def read(cls, fact: dict[str, Any]) -> _LotTerms:
        return cls(
            fact["lot_id"],
            fact["cooperative_id"],
            fact["product"],
            fact["grade"],
            quantity_of(fact["quantity"]),
            date.fromisoformat(fact["available_from"]),
            weights_of(fact["contributions"]),
        )


@dataclass(frozen=True, slots=True)
class _OrderTerms:
    """What a journaled OrderPlaced asked for: how much, at what limit price."""

    quantity: Decimal
    limit_price_fen: int

    @classmethod
    def read(cls, fact: dict[str, Any]) -> _OrderTerms:
        return cls(quantity_of(fact["quantity"]), fen_of(fact["limit_price_fen"]))


@dataclass(frozen=True, slots=True)
class _CommitmentTerms:
    """What a journaled CommitmentMade guaranteed: floor, reference market, start, cap, per-mu limit."""

    floor_price_fen: int
    reference_market: str
    valid_from: date
    cap_quantity: Decimal | None
    max_quantity_per_mu: Decimal | None

    @classmethod
    def read(cls, fact: dict[str, Any]) -> _CommitmentTerms:
        return cls(
            fen_of(fact["floor_price_fen"]),
            fact["reference_market"],
            date.fromisoformat(fact["valid_from"]),
            optional_quantity_of(fact["cap_quantity"]),
            optional_quantity_of(fact["max_quantity_per_mu"]),
        )


class _PriceSeries:
    """Observations of one product and grade at one market: the latest on or before a date wins,
    and of two on the same date the one later in the journal."""

    __slots__ = ("_dates", "_price_on")

    def __init__(self) -> None:
        self._dates: list[date] = []
        self._price_on: dict[date, int] = {}

    def observe(self, observed_on: date, price_fen: int) -> None:
        if observed_on not in self._price_on:
            insort(self._dates, observed_on)
        self._price_on[observed_on] = price_fen  # a later journal entry on the same date wins

    def as_of(self, day: date) -> int | None:
        index = bisect_right(self._dates, day)
        return self._price_on[self._dates[index - 1]] if index else None


class _MarketInvariants:
    """Walks one product's matching stream: takes the terms each journal entry sets, and checks each
    recorded FillMade against them, without the matcher's Book."""

    def __init__(self, product: str, findings: list[Finding], pairs: dict[tuple[str, str], PairTotals]) -> None:
        self.product = product
        self.findings = findings
        self.pairs = pairs
        self.lots: dict[str, _LotTerms] = {}
        self.orders: dict[str, _OrderTerms] = {}
        self.commitments: dict[str, _CommitmentTerms] = {}
        self.cancelled: set[str] = set()
        self.planting_ids: set[str] = set()
        self.planted_mu: dict[str, Decimal] = {}
        self.prices: dict[tuple[str, str, str], _PriceSeries] = {}
        self.pending: Callable[[], None] | None = None
        self.lot_filled: dict[str, Decimal] = {}
        self.order_filled: dict[str, Decimal] = {}
        self.commitment_filled: dict[str, Decimal] = {}
        self.sold_under: dict[tuple[str, str], Decimal] = {}

    def violation(self, record: Record, message: str) -> None:
        self.findings.append(finding_at(INVARIANT, record, message))

    def run(self, records: list[Record]) -> None:
        for record in records:
            if record.event_type == JOURNAL_ENTRY:
                self._take_entry(record)
            elif record.event_type == FILL_MADE:
                try:
                    self._check_fill(record)
                except MALFORMED as error:
                    self.violation(record, f"FillMade payload cannot be checked: {error!r}")

    # -- the journal

    def _take_entry(self, entry: Record) -> None:
        """Learn the terms an input sets. Prices and plantings count only from the next entry on:
        they change no match of their own entry (a fill after one is forged anyway)."""
        if self.pending is not None:
            self.pending()
            self.pending = None
        try:
            self._read(entry.payload["source_event_type"], entry.payload["fact"])
        except MALFORMED:
            pass  # re-execution reports an entry the matcher could not read

    def _read(self, kind: str, fact: dict[str, Any]) -> None:
        if kind == "HarvestRecorded":
            self.lots.setdefault(fact["lot_id"], _LotTerms.read(fact))  # a repeated id is ignored by the matcher
        elif kind == "OrderPlaced":
            self.orders.setdefault(fact["order_id"], _OrderTerms.read(fact))
        elif kind == "CommitmentMade":
            self.commitments.setdefault(fact["commitment_id"], _CommitmentTerms.read(fact))
        elif kind == "OrderCancelled":
            if fact["order_id"] in self.orders:  # a cancellation before its order is not remembered
                self.cancelled.add(fact["order_id"])
        elif kind == "MarketPriceObserved":
            key = (fact["product"], fact["grade"], fact["market"])
            observed_on, price = date.fromisoformat(fact["observed_on"]), fen_of(fact["price_fen"])
            self.pending = lambda: self.prices.setdefault(key, _PriceSeries()).observe(observed_on, price)
        elif kind == "PlantingRecorded":
            planting_id, cooperative_id, area = fact["planting_id"], fact["cooperative_id"], quantity_of(fact["area_mu"])
            self.pending = lambda: self._plant(planting_id, cooperative_id, area)

    def _plant(self, planting_id: str, cooperative_id: str, area_mu: Decimal) -> None:
        if planting_id not in self.planting_ids:  # a repeated planting id is ignored by the matcher
            self.planting_ids.add(planting_id)
            add_to(self.planted_mu, cooperative_id, area_mu)

    # -- a recorded fill

    def _check_fill(self, record: Record) -> None:
        p = record.payload
        quantity, price, revenue = quantity_of(p["quantity"]), fen_of(p["unit_price_fen"]), fen_of(p["revenue_fen"])
        lot_id, kind, outlet_id, basis = p["lot_id"], p["outlet_kind"], p["outlet_id"], p["price_basis"]
        totals = self.pairs.setdefault((lot_id, outlet_id), PairTotals())
        totals.quantity = DECIMAL_CONTEXT.add(totals.quantity, quantity)
        totals.revenue_fen += revenue
        if quantity <= 0:
            self.violation(record, f"fill quantity {_q(quantity)} is not positive")
        lot = self.lots.get(lot_id)
        if lot is None:
            self.violation(record, f"fill of lot {lot_id}, which no journal entry before it recorded")
        else:
            self._check_lot(record, lot, quantity)
        if kind == "order":
            self._check_order_fill(record, outlet_id, quantity, price, basis)
        elif kind == "commitment":
            self._check_commitment_fill(record, lot, outlet_id, quantity, price, basis)
        else:
            self.violation(record, f"outlet_kind {kind!r} is neither order nor commitment")
        self._check_money(record, lot, quantity, price, revenue, shares_of(p["household_income_fen"]))

    def _check_lot(self, record: Record, lot: _LotTerms, quantity: Decimal) -> None:
        """No lot sells more than was harvested."""
        filled = add_to(self.lot_filled, lot.lot_id, quantity)
        if filled > lot.quantity:
            self.violation(
                record,
                f"lot {lot.lot_id} overfilled: its fills add up to {_q(filled)}, more than its quantity {_q(lot.quantity)}",
            )

    def _check_order_fill(self, record: Record, order_id: str, quantity: Decimal, price: int, basis: str) -> None:
        """An order takes no more than it asked for, nothing after its cancellation, and pays its limit price."""
        order = self.orders.get(order_id)
        if order is None:
            self.violation(record, f"fill to order {order_id}, which no journal entry before it placed")
            return
        filled = add_to(self.order_filled, order_id, quantity)
        if filled > order.quantity:
            self.violation(
                record,
                f"order {order_id} overfilled: its fills add up to {_q(filled)}, more than its quantity {_q(order.quantity)}",
            )
        if order_id in self.cancelled:
            self.violation(record, f"fill to order {order_id} after it was cancelled")
        if (price, basis) != (order.limit_price_fen, "order_limit"):
            self.violation(
                record,
                f"order fill priced {price} fen ({basis}); the rule gives its limit price {order.limit_price_fen} fen (order_limit)",
            )

    def _check_commitment_fill(
        self, record: Record, lot: _LotTerms | None, commitment_id: str, quantity: Decimal, price: int, basis: str
    ) -> None:
        """A commitment stays within its cap and each cooperative's per-mu room, and pays max(floor, market)."""
        commitment = self.commitments.get(commitment_id)
        if commitment is None:
            self.violation(record, f"fill to commitment {commitment_id}, which no journal entry before it made")
            return
        filled = add_to(self.commitment_filled, commitment_id, quantity)
        if commitment.cap_quantity is not None and filled > commitment.cap_quantity:
            self.violation(
                record,
                f"commitment {commitment_id} over its cap: its fills add up to {_q(filled)}, more than {_q(commitment.cap_quantity)}",
            )
        cooperative_id = lot.cooperative_id if lot is not None else record.payload["cooperative_id"]
        if commitment.max_quantity_per_mu is not None:
            self._check_per_mu(record, commitment, commitment_id, cooperative_id, quantity)
        if lot is not None:
            self._check_commitment_price(record, lot, commitment, price, basis)

    def _check_per_mu(
        self, record: Record, commitment: _CommitmentTerms, commitment_id: str, cooperative_id: str, quantity: Decimal
    ) -> None:
        """A cooperative sells under a commitment at most its planted area (before the fill) x the per-mu limit."""
        per_mu = commitment.max_quantity_per_mu
        assert per_mu is not None
        sold = add_to(self.sold_under, (commitment_id, cooperative_id), quantity)
        planted = self.planted_mu.get(cooperative_id, ZERO)
        room = DECIMAL_CONTEXT.multiply(planted, per_mu)
        if sold > room:
            self.violation(
                record,
                f"cooperative {cooperative_id} sold {_q(sold)} under commitment {commitment_id}, more than its per-mu room "
                f"{_q(room)} ({_q(planted)} mu planted before this fill x {_q(per_mu)} per mu)",
            )

    def _check_commitment_price(
        self, record: Record, lot: _LotTerms, commitment: _CommitmentTerms, price: int, basis: str
    ) -> None:
        """max(floor, market as of the later of the lot's availability and the commitment's start)."""
        as_of = max(lot.available_from, commitment.valid_from)
        series = self.prices.get((lot.product, lot.grade, commitment.reference_market))
        market = series.as_of(as_of) if series is not None else None
        if market is not None and market > commitment.floor_price_fen:
            expected = (market, "market")
        else:
            expected = (commitment.floor_price_fen, "floor")
        if (price, basis) != expected:
            self.violation(
                record,
                f"commitment fill priced {price} fen ({basis}); the rule gives {expected[0]} fen ({expected[1]}): "
                f"floor {commitment.floor_price_fen}, market {market} for grade {lot.grade} at {commitment.reference_market} "
                f"as of {as_of.isoformat()}",
            )

    def _check_money(
        self, record: Record, lot: _LotTerms | None, quantity: Decimal, price: int, revenue: int, shares: dict[str, int]
    ) -> None:
        """Revenue is quantity x price to the fen; the households' shares add up to it, split by largest remainder."""
        expected = revenue_of(quantity, price)
        if revenue != expected:
            self.violation(record, f"revenue_fen {revenue}, but {_q(quantity)} x {price} fen rounded half-to-even is {expected}")
        total = sum(shares.values())
        if total != revenue:
            self.violation(record, f"household shares add up to {total} fen, not the fill's revenue {revenue} fen")
        elif lot is not None:
            split = dict(split_largest_remainder(revenue, lot.weights))
            if shares != split:
                self.violation(
                    record, f"household shares {differing(shares, split)} are not the largest-remainder split of {revenue} fen"
                )


def check_market_invariants(streams: dict[str, list[Record]]) -> tuple[list[Finding], FillTotals]:
    """The invariants of some products' matching streams (keyed by product), and their fill totals.
    Products are independent (a lot, order or commitment belongs to one product), so shares of them
    can be checked in separate processes and their totals merged."""
    findings: list[Finding] = []
    pairs: FillTotals = {}
    for product, records in streams.items():
        _MarketInvariants(product, findings, pairs).run(records)
    return findings, pairs
