"""The matching engine: one book per product, a pure function of that product's journal.

Nothing here reads a clock, does I/O or depends on anything but the order of the
inputs, so the matching service (live) and the audit (re-execution) get the same
fills to the fen from the same journal.
"""

from __future__ import annotations

import heapq
from bisect import bisect_left, bisect_right, insort
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from operator import attrgetter, itemgetter

from matcher.facts import (
    DECIMAL_CONTEXT,
    FACT_TYPES,
    Commitment,
    Fact,
    Fill,
    Lot,
    MarketPrice,
    OfferClosed,
    OfferOpened,
    OfferShrunk,
    Order,
    OrderCancellation,
    Outcome,
    OutletKind,
    PriceBasis,
    Planting,
    cut_down,
    grade_at_least,
)
from matcher.money import revenue_fen, split_largest_remainder

_ZERO = Decimal(0)
_priority = attrgetter("priority")
_rank = attrgetter("rank")
_observed_on = itemgetter(0)


# ---------------------------------------------------------------- read-only views


@dataclass(frozen=True, slots=True)
class RestingLot:
    """An offer on the book: a lot, what is left of it, and where it came in the journal."""

    lot: Lot
    quantity_left: Decimal
    journal_seq: int


@dataclass(frozen=True, slots=True)
class OpenOutlet:
    """An order or commitment that can still take produce, and how much (None: a commitment without cap)."""

    outlet_kind: OutletKind
    outlet: Order | Commitment
    quantity_left: Decimal | None
    journal_seq: int
    filled_by_cooperative: tuple[tuple[str, Decimal], ...]


# ---------------------------------------------------------------- ranking


def lot_priority(lot: Lot, journal_seq: int) -> tuple[date, int, int, str]:
    """Where a resting lot stands for an arriving outlet (smaller first): earliest expiry,
    then lots with a registered-poor contribution, then earlier in the journal, then smaller id."""
    return (lot.expires_on, 0 if lot.has_registered_poor else 1, journal_seq, lot.lot_id)


def outlet_rank(
    unit_price_fen: int, outlet_kind: OutletKind, journal_seq: int, outlet_id: str
) -> tuple[int, int, int, str]:
    """Where an eligible outlet stands for an arriving lot (smaller first): highest unit price,
    then orders before commitments, then earlier in the journal, then smaller id."""
    return (-unit_price_fen, 0 if outlet_kind == "order" else 1, journal_seq, outlet_id)



# ---------------------------------------------------------------- book state


class _LotState:
    """A lot in the book and what is left of it."""

    __slots__ = ("lot", "seq", "left", "weights", "priority")

    def __init__(self, lot: Lot, seq: int) -> None:
        self.lot = lot
        self.seq = seq
        self.left = lot.quantity
        self.weights = tuple((c.household_id, c.quantity) for c in lot.contributions)
        self.priority = lot_priority(lot, seq)


class _OrderState:
    """An order in the book and its unfilled rest."""

    __slots__ = ("order", "seq", "left", "regions", "cancelled", "priority")

    def __init__(self, order: Order, seq: int) -> None:
        self.order = order
        self.seq = seq
        self.left: Decimal = order.quantity
        self.regions = frozenset(order.regions)
        self.cancelled = False
        # An order's price does not depend on the lot, so orders can be kept ranked once.
        self.priority = outlet_rank(order.limit_price_fen, "order", seq, order.order_id)


class _CommitmentState:
    """A commitment in the book: what is left under its cap and what each cooperative sold under it."""

    __slots__ = ("commitment", "seq", "left", "counties", "cooperatives", "filled_by_cooperative")

    def __init__(self, commitment: Commitment, seq: int) -> None:
        self.commitment = commitment
        self.seq = seq
        self.left: Decimal | None = commitment.cap_quantity
        self.counties = frozenset(commitment.eligible_counties)
        self.cooperatives = frozenset(commitment.eligible_cooperatives)
        self.filled_by_cooperative: dict[str, Decimal] = {}


@dataclass(frozen=True, slots=True)
class _Quote:
    """What an eligible outlet would pay for a lot, and the most it can take from it (None: no limit)."""

    outlet: _OrderState | _CommitmentState
    outlet_kind: OutletKind
    unit_price_fen: int
    price_basis: PriceBasis
    limit: Decimal | None
    floor_price_fen: int | None
    market_price_fen: int | None
    price_as_of: date | None
    rank: tuple[int, int, int, str]


def _windows_overlap(lot: Lot, start: date, end: date) -> bool:
    return lot.available_from <= end and start <= lot.expires_on


# ---------------------------------------------------------------- the book


class Book:
    """The market for one product: resting lots, open outlets, prices and plantings, driven by its journal."""

    def __init__(self, product: str) -> None:
        self.product = product
        self._journal_seq = 0
        self._fill_count = 0
        self._lots: list[_LotState] = []  # sorted by _LotState.priority
        self._orders: list[_OrderState] = []  # open orders, sorted by _OrderState.priority
        self._commitments: dict[str, _CommitmentState] = {}  # open commitments, in journal order
        self._lot_ids: set[str] = set()
        self._orders_by_id: dict[str, _OrderState] = {}
        self._commitment_ids: set[str] = set()
        self._planting_ids: set[str] = set()
        self._planted_mu: dict[str, Decimal] = {}
        # (grade, market) -> [(observed_on, journal_seq, price_fen)], sorted
        self._prices: dict[tuple[str, str], list[tuple[date, int, int]]] = {}

    @property
    def journal_seq(self) -> int:
        """How many journal inputs this book has processed (the number of the last one)."""
        return self._journal_seq

    @property
    def fills_so_far(self) -> int:
        """How many fills this book has made: the position of the last one."""
        return self._fill_count

    def process(self, fact: Fact) -> list[Outcome]:
        """Apply the next input of this product's journal; return what it caused, in the order it happened."""
        if not isinstance(fact, FACT_TYPES):
            raise TypeError(f"not a matcher fact: {fact!r}")
        if fact.product != self.product:
            raise ValueError(f"a {fact.product} fact cannot enter the {self.product} book")
        self._journal_seq += 1
        seq = self._journal_seq
        match fact:
            case Lot():
                return self._on_lot(fact, seq)
            case Order():
                return self._on_order(fact, seq)
            case Commitment():
                return self._on_commitment(fact, seq)
            case OrderCancellation():
                self._on_cancellation(fact)
            case MarketPrice():
                self._on_market_price(fact, seq)
            case Planting():
                self._on_planting(fact)
        return []

    def resting_lots(self) -> tuple[RestingLot, ...]:
        """The offers on the book now, in the order an arriving outlet considers them."""
        return tuple(RestingLot(state.lot, state.left, state.seq) for state in self._lots)

    def open_outlets(self) -> tuple[OpenOutlet, ...]:
        """The orders and commitments that can still take produce now, in journal order."""
        views = [OpenOutlet("order", state.order, state.left, state.seq, ()) for state in self._orders]
        views.extend(
            OpenOutlet(
                "commitment",
                state.commitment,
                state.left,
                state.seq,
                tuple(sorted(state.filled_by_cooperative.items())),
            )
            for state in self._commitments.values()
        )
        return tuple(sorted(views, key=attrgetter("journal_seq")))

    # ------------------------------------------------------------ inputs

    def _on_lot(self, lot: Lot, seq: int) -> list[Outcome]:
        if lot.lot_id in self._lot_ids:
            return []
        self._lot_ids.add(lot.lot_id)
        state = _LotState(lot, seq)
        outcomes: list[Outcome] = []
        used_up: list[_OrderState | _CommitmentState] = []
        for quote in self._best_outlets_for(lot):
            outcomes.append(self._fill(state, quote, seq))
            if quote.outlet.left == 0:
                used_up.append(quote.outlet)
            if state.left == 0:
                break
        # Removed only now: the order scan above must not see its list change under it.
        for outlet in used_up:
            if isinstance(outlet, _OrderState):
                self._remove_order(outlet)
            else:
                del self._commitments[outlet.commitment.commitment_id]
        if state.left > 0:
            insort(self._lots, state, key=_priority)
            outcomes.append(
                OfferOpened(
                    lot_id=lot.lot_id,
                    product=lot.product,
                    grade=lot.grade,
                    cooperative_id=lot.cooperative_id,
                    county=lot.county,
                    township=lot.township,
                    quantity_left=state.left,
                    available_from=lot.available_from,
                    expires_on=lot.expires_on,
                    journal_seq=seq,
                )
            )
        return outcomes

    def _on_order(self, order: Order, seq: int) -> list[Outcome]:
        if order.order_id in self._orders_by_id:
            return []
        state = _OrderState(order, seq)
        self._orders_by_id[order.order_id] = state
        outcomes = self._fill_arriving_outlet(state, order.deliver_from, seq)
        if state.left > 0:
            insort(self._orders, state, key=_priority)
        return outcomes

    def _on_commitment(self, commitment: Commitment, seq: int) -> list[Outcome]:
        if commitment.commitment_id in self._commitment_ids:
            return []
        self._commitment_ids.add(commitment.commitment_id)
        state = _CommitmentState(commitment, seq)
        outcomes = self._fill_arriving_outlet(state, commitment.valid_from, seq)
        if state.left is None or state.left > 0:
            self._commitments[commitment.commitment_id] = state
        return outcomes

    def _on_cancellation(self, cancellation: OrderCancellation) -> None:
        state = self._orders_by_id.get(cancellation.order_id)
        if state is None or state.cancelled:
            return
        state.cancelled = True
        if state.left > 0:
            self._remove_order(state)

    def _on_market_price(self, price: MarketPrice, seq: int) -> None:
        series = self._prices.setdefault((price.grade, price.market), [])
        insort(series, (price.observed_on, seq, price.price_fen))

    def _on_planting(self, planting: Planting) -> None:
        if planting.planting_id in self._planting_ids:
            return
        self._planting_ids.add(planting.planting_id)
        planted = self._planted_mu.get(planting.cooperative_id, _ZERO)
        self._planted_mu[planting.cooperative_id] = DECIMAL_CONTEXT.add(planted, planting.area_mu)

    # ------------------------------------------------------------ matching

    def _best_outlets_for(self, lot: Lot) -> Iterator[_Quote]:
        """Eligible outlets for an arriving lot, best first: price, orders before commitments, journal, id."""
        order_quotes = (
            quote for state in self._orders if (quote := self._quote_order(state, lot)) is not None
        )
        # A commitment's price depends on the lot (grade, date), so commitments are ranked per lot.
        commitment_quotes = sorted(
            (
                quote
                for state in self._commitments.values()
                if (quote := self._quote_commitment(state, lot)) is not None
            ),
            key=_rank,
        )
        return heapq.merge(order_quotes, commitment_quotes, key=_rank)

    def _fill_arriving_outlet(
        self, outlet: _OrderState | _CommitmentState, start: date, seq: int
    ) -> list[Outcome]:
        """Fill an arriving outlet from the best eligible resting lots until it is full or none is left."""
        outcomes: list[Outcome] = []
        used_up: list[_LotState] = []
        lots = self._lots
        # Lots that expire before the outlet starts can never overlap it: skip them all at once.
        for index in range(bisect_left(lots, (start,), key=_priority), len(lots)):
            if outlet.left is not None and outlet.left <= 0:
                break
            state = lots[index]
            quote = self._quote(outlet, state.lot)
            if quote is None:
                continue
            outcomes.append(self._fill(state, quote, seq))
            if state.left == 0:
                used_up.append(state)
                outcomes.append(OfferClosed(lot_id=state.lot.lot_id, product=self.product, journal_seq=seq))
            else:
                shrunk = OfferShrunk(state.lot.lot_id, self.product, quantity_left=state.left, journal_seq=seq)
                outcomes.append(shrunk)
        for state in used_up:
            del lots[self._index_of(lots, state)]
        return outcomes

    def _quote(self, outlet: _OrderState | _CommitmentState, lot: Lot) -> _Quote | None:
        if isinstance(outlet, _OrderState):
            return self._quote_order(outlet, lot)
        return self._quote_commitment(outlet, lot)

    def _quote_order(self, state: _OrderState, lot: Lot) -> _Quote | None:
        """The order's offer for this lot, or None if the lot is not eligible for it."""
        order = state.order
        if state.cancelled or state.left <= 0:
            return None
        if not grade_at_least(lot.grade, order.min_grade):
            return None
        if not _windows_overlap(lot, order.deliver_from, order.deliver_to):
            return None
        if state.regions and lot.county not in state.regions and lot.township not in state.regions:
            return None
        return _Quote(
            outlet=state,
            outlet_kind="order",
            unit_price_fen=order.limit_price_fen,
            price_basis="order_limit",
            limit=state.left,
            floor_price_fen=None,
            market_price_fen=None,
            price_as_of=None,
            rank=state.priority,
        )

    def _quote_commitment(self, state: _CommitmentState, lot: Lot) -> _Quote | None:
        """The commitment's offer for this lot, or None if the lot is not eligible for it."""
        commitment = state.commitment
        if state.left is not None and state.left <= 0:
            return None
        if not grade_at_least(lot.grade, commitment.min_grade):
            return None
        if not _windows_overlap(lot, commitment.valid_from, commitment.valid_to):
            return None
        if (
            (state.counties or state.cooperatives)
            and lot.county not in state.counties
            and lot.cooperative_id not in state.cooperatives
        ):
            return None
        limit = state.left
        if commitment.max_quantity_per_mu is not None:
            room = self._per_mu_room(state, lot.cooperative_id)
            if room <= 0:
                return None
            limit = room if limit is None else min(limit, room)
        as_of = max(lot.available_from, commitment.valid_from)
        market = self._market_price(lot.grade, commitment.reference_market, as_of)
        if market is not None and market > commitment.floor_price_fen:
            price, basis = market, "market"
        else:
            price, basis = commitment.floor_price_fen, "floor"
        return _Quote(
            outlet=state,
            outlet_kind="commitment",
            unit_price_fen=price,
            price_basis=basis,
            limit=limit,
            floor_price_fen=commitment.floor_price_fen,
            market_price_fen=market,
            price_as_of=as_of,
            rank=outlet_rank(price, "commitment", state.seq, commitment.commitment_id),
        )

    def _per_mu_room(self, state: _CommitmentState, cooperative_id: str) -> Decimal:
        """How much more the cooperative may sell under the commitment, cut down to whole units."""
        per_mu = state.commitment.max_quantity_per_mu
        assert per_mu is not None  # only called for commitments with a per-mu limit
        allowance = DECIMAL_CONTEXT.multiply(self._planted_mu.get(cooperative_id, _ZERO), per_mu)
        sold = state.filled_by_cooperative.get(cooperative_id, _ZERO)
        return cut_down(DECIMAL_CONTEXT.subtract(allowance, sold), self.product)

    def _market_price(self, grade: str, market: str, as_of: date) -> int | None:
        """The latest observation not after `as_of`; on equal dates the one later in the journal."""
        series = self._prices.get((grade, market))
        if not series:
            return None
        index = bisect_right(series, as_of, key=_observed_on)
        return series[index - 1][2] if index else None

    def _fill(self, lot_state: _LotState, quote: _Quote, seq: int) -> Fill:
        """Move min(lot left, what the outlet can take) from the lot to the outlet and record it."""
        quantity = lot_state.left if quote.limit is None else min(lot_state.left, quote.limit)
        lot_state.left = DECIMAL_CONTEXT.subtract(lot_state.left, quantity)
        outlet = quote.outlet
        if outlet.left is not None:
            outlet.left = DECIMAL_CONTEXT.subtract(outlet.left, quantity)
        if isinstance(outlet, _CommitmentState):
            cooperative_id = lot_state.lot.cooperative_id
            sold = outlet.filled_by_cooperative.get(cooperative_id, _ZERO)
            outlet.filled_by_cooperative[cooperative_id] = DECIMAL_CONTEXT.add(sold, quantity)
            outlet_id, buyer_id = outlet.commitment.commitment_id, outlet.commitment.buyer_id
        else:
            outlet_id, buyer_id = outlet.order.order_id, outlet.order.buyer_id
        revenue = revenue_fen(quantity, quote.unit_price_fen)
        self._fill_count += 1
        lot = lot_state.lot
        return Fill(
            position=self._fill_count,
            journal_seq=seq,
            product=self.product,
            lot_id=lot.lot_id,
            cooperative_id=lot.cooperative_id,
            grade=lot.grade,
            outlet_kind=quote.outlet_kind,
            outlet_id=outlet_id,
            buyer_id=buyer_id,
            quantity=quantity,
            unit_price_fen=quote.unit_price_fen,
            price_basis=quote.price_basis,
            revenue_fen=revenue,
            household_income_fen=split_largest_remainder(revenue, lot_state.weights),
            floor_price_fen=quote.floor_price_fen,
            market_price_fen=quote.market_price_fen,
            price_as_of=quote.price_as_of,
        )

    def _remove_order(self, state: _OrderState) -> None:
        del self._orders[self._index_of(self._orders, state)]

    @staticmethod
    def _index_of(entries: list, state: _LotState | _OrderState) -> int:
        index = bisect_left(entries, state.priority, key=_priority)
        if index == len(entries) or entries[index] is not state:
            raise AssertionError("book state out of order")  # a bug, never a business case
        return index


# ---------------------------------------------------------------- many products


class Market:
    """All products' books: each fact goes to the book of its product, created on first use."""

    def __init__(self) -> None:
        self._books: dict[str, Book] = {}

    def process(self, fact: Fact) -> list[Outcome]:
        """Apply the next journal input of the fact's product; return what it caused."""
        if not isinstance(fact, FACT_TYPES):
            raise TypeError(f"not a matcher fact: {fact!r}")
        book = self._books.get(fact.product)
        if book is None:
            book = self._books[fact.product] = Book(fact.product)
        return book.process(fact)

    def book(self, product: str) -> Book | None:
        """The book of a product, or None if no fact of it has been processed."""
        return self._books.get(product)

    @property
    def products(self) -> tuple[str, ...]:
        """The products seen so far, in the order they first appeared."""
        return tuple(self._books)

    @classmethod
    def replay(cls, facts: Iterable[Fact]) -> list[Outcome]:
        """Everything a fresh market decides over a journal: the audit's re-execution in one call."""
        market = cls()
        outcomes: list[Outcome] = []
        for fact in facts:
            outcomes.extend(market.process(fact))
        return outcomes
