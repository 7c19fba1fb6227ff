"""The matching engine: one book per product, a pure function of that product's journal.

Nothing here reads a clock, does I/O or depends on anything but the order of the
inputs, so the matching service (live) and the audit (re-execution) get the same
fills to the fen from the same journal.

The rules live in a few places only: `lot_priority` and `outlet_rank` rank;
`_quote_order`, and `_price_commitment` then `_quote_commitment_price`, decide
eligibility, price and how much may move; `_fill` moves it and `matcher.money` prices
it to the fen. Everything else is indexing, so that a book of tens of thousands of
offers is not scanned whole for each input:

- resting lots sit on *shelves*, one per grade and place (anywhere, a county, a
  township, a cooperative), each in lot priority order; an arriving outlet reads only
  the shelves its minimum grade and regions allow, from the first lot that has not
  expired before its window starts, merged in priority order;
- open orders sit on shelves per minimum grade and region (or anywhere), each in rank
  order; an arriving lot reads the shelves of the grades it meets, anywhere and in its
  county and township, merged in rank order, only as far as it needs;
- open commitments sit on shelves per minimum grade and place they list (or anywhere);
  an arriving lot prices only those of the grades it meets, anywhere, its county and its
  cooperative;
- outlets whose window ended before the book's *horizon* (a week before the dates lots
  now arrive with) move to an archive that only a lot available before the horizon
  reads: an outlet cannot take a lot that became available after its window ended.

The shelves only narrow the search and keep the ranking order; every candidate found
is still quoted by the rules, so the fills are those of a scan of the whole book.
"""

from __future__ import annotations

import heapq
from bisect import bisect_left, bisect_right, insort
from collections import deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, fields
from datetime import date, timedelta
from decimal import Decimal
from itertools import repeat
from operator import attrgetter, call

from matcher.facts import (
    DECIMAL_CONTEXT,
    FACT_TYPES,
    GRADE_RANK,
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
)
from matcher.money import checked_household_weights, checked_revenue_fen, share_out

_ZERO = Decimal(0)
_priority = attrgetter("priority")
_rank = attrgetter("rank")

HORIZON_LAG = timedelta(days=7)
"""How far the horizon stays behind the earliest lot of a batch."""
HORIZON_BATCH = 256
"""The horizon moves once per this many arriving lots, to the earliest of them less the lag:
one lot dated far ahead cannot move it, one dated far back only takes the slow path itself."""

_GRADES_AT_LEAST = {grade: tuple(g for g in GRADE_RANK if GRADE_RANK[g] >= rank) for grade, rank in GRADE_RANK.items()}
"""The lot grades good enough for an outlet's minimum grade."""
_GRADES_AT_MOST = {grade: tuple(g for g in GRADE_RANK if GRADE_RANK[g] <= rank) for grade, rank in GRADE_RANK.items()}
"""The outlet minimum grades a lot of this grade is good enough for."""


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

    __slots__ = ("lot", "seq", "left", "priority", "weights")

    def __init__(self, lot: Lot, seq: int) -> None:
        self.lot = lot
        self.seq = seq
        self.left = lot.quantity
        self.priority = lot_priority(lot, seq)
        self.weights = None  # its households' HouseholdWeights, made at its first fill


class _OrderState:
    """An order in the book and its unfilled rest."""

    __slots__ = ("order", "seq", "left", "cancelled", "rank", "archived")

    def __init__(self, order: Order, seq: int) -> None:
        self.order = order
        self.seq = seq
        self.left: Decimal = order.quantity
        self.cancelled = False
        # An order's price does not depend on the lot, so orders can be kept ranked once.
        self.rank = outlet_rank(order.limit_price_fen, "order", seq, order.order_id)
        self.archived = False


class _CommitmentState:
    """A commitment in the book: what is left under its cap and what each cooperative sold under it."""

    __slots__ = ("commitment", "seq", "left", "counties", "cooperatives", "filled_by_cooperative", "archived")

    def __init__(self, commitment: Commitment, seq: int) -> None:
        self.commitment = commitment
        self.seq = seq
        self.left: Decimal | None = commitment.cap_quantity
        self.counties = frozenset(commitment.eligible_counties)
        self.cooperatives = frozenset(commitment.eligible_cooperatives)
        self.filled_by_cooperative: dict[str, Decimal] = {}
        self.archived = False


class _Quote:
    """What an eligible outlet would pay for a lot, and the most it can take from it (None: no limit)."""

    __slots__ = (
        "outlet", "outlet_kind", "unit_price_fen", "price_basis", "limit",
        "floor_price_fen", "market_price_fen", "price_as_of",
    )

    def __init__(
        self,
        outlet: _OrderState | _CommitmentState,
        outlet_kind: OutletKind,
        unit_price_fen: int,
        price_basis: PriceBasis,
        limit: Decimal | None,
        floor_price_fen: int | None,
        market_price_fen: int | None,
        price_as_of: date | None,
    ) -> None:
        self.outlet = outlet
        self.outlet_kind = outlet_kind
        self.unit_price_fen = unit_price_fen
        self.price_basis = price_basis
        self.limit = limit
        self.floor_price_fen = floor_price_fen
        self.market_price_fen = market_price_fen
        self.price_as_of = price_as_of


_CommitmentPrice = tuple[tuple[int, int, int, str], _CommitmentState, int, PriceBasis, "int | None", date]
"""What a commitment would pay for a lot: (its rank for the lot, the commitment, unit price,
price basis, market price as of, as-of date). How much it may take is settled only if it is reached."""


def _windows_overlap(lot: Lot, start: date, end: date) -> bool:
    return lot.available_from <= end and start <= lot.expires_on


# ---------------------------------------------------------------- indexes


class _Shelf:
    """Resting lots of one grade in one place, in priority order (so by expiry first), and the
    longest availability window of any lot put on it since the shelf was made."""

    __slots__ = ("lots", "longest")

    def __init__(self) -> None:
        self.lots: list[_LotState] = []
        self.longest = timedelta(0)

    def last_expiry(self, end: date) -> date:
        """A lot expiring after this became available after `end` (its window is at most the longest)."""
        return date.max if date.max - end <= self.longest else end + self.longest

    def next_overlapping(self, index: int, end: date, last_expiry: date) -> int | None:
        """Where, from `index` on, the next lot is that is available by `end`; None if no more.
        Lots before `index` are known to expire no earlier than the window starts."""
        lots = self.lots
        for index in range(index, len(lots)):
            lot = lots[index].lot
            if lot.expires_on > last_expiry:
                return None
            if lot.available_from <= end:
                return index
        return None


def _lot_shelf_keys(lot: Lot) -> tuple[tuple[str, str, str], ...]:
    """The shelves a resting lot sits on: its grade anywhere, in its county, township and cooperative."""
    grade = lot.grade
    return (
        (grade, "anywhere", ""),
        (grade, "county", lot.county),
        (grade, "township", lot.township),
        (grade, "cooperative", lot.cooperative_id),
    )


def _lot_shelves_for_order(order: Order) -> list[tuple[str, str, str]]:
    """The lot shelves that can hold lots for an order: good enough, and in one of its regions."""
    grades = _GRADES_AT_LEAST[order.min_grade]
    if not order.regions:
        return [(grade, "anywhere", "") for grade in grades]
    regions = dict.fromkeys(order.regions)
    return [(grade, place, region) for grade in grades for region in regions for place in ("county", "township")]


def _lot_shelves_for_commitment(commitment: Commitment) -> list[tuple[str, str, str]]:
    """The lot shelves that can hold lots for a commitment: good enough, from a listed county or cooperative."""
    grades = _GRADES_AT_LEAST[commitment.min_grade]
    if not (commitment.eligible_counties or commitment.eligible_cooperatives):
        return [(grade, "anywhere", "") for grade in grades]
    places = [("county", county) for county in dict.fromkeys(commitment.eligible_counties)]
    places.extend(("cooperative", cooperative) for cooperative in dict.fromkeys(commitment.eligible_cooperatives))
    return [(grade, place, name) for grade in grades for place, name in places]


def _next_order_overlapping(orders: list[_OrderState], index: int, start: date, end: date) -> int:
    """Where, from `index` on, the next order of a shelf is whose delivery window overlaps start..end;
    len(orders) if none is."""
    for index in range(index, len(orders)):
        order = orders[index].order
        if order.deliver_from <= end and start <= order.deliver_to:
            return index
    return len(orders)


class _OrderShelves:
    """Open orders by minimum grade and region they list (None: anywhere), each shelf in rank order."""

    __slots__ = ("shelves",)

    def __init__(self) -> None:
        self.shelves: dict[tuple[str, str | None], list[_OrderState]] = {}

    @staticmethod
    def _keys(order: Order) -> Iterable[tuple[str, str | None]]:
        if not order.regions:
            return ((order.min_grade, None),)
        return [(order.min_grade, region) for region in dict.fromkeys(order.regions)]

    def add(self, state: _OrderState) -> None:
        for key in self._keys(state.order):
            orders = self.shelves.get(key)
            if orders is None:
                orders = self.shelves[key] = []
            insort(orders, state, key=_rank)

    def remove(self, state: _OrderState) -> None:
        for key in self._keys(state.order):
            orders = self.shelves[key]
            del orders[_index_of(orders, state, state.rank, _rank)]
            if not orders:
                del self.shelves[key]

    def for_lot(self, lot: Lot, found: list[list[_OrderState]]) -> None:
        """Add to `found` the shelves that can hold orders for the lot: of a minimum grade the lot
        meets, anywhere or in its county or township."""
        shelves = self.shelves
        places = (None, lot.county) if lot.township == lot.county else (None, lot.county, lot.township)
        for grade in _GRADES_AT_MOST[lot.grade]:
            for place in places:
                orders = shelves.get((grade, place))
                if orders:
                    found.append(orders)


class _CommitmentShelves:
    """Open commitments by minimum grade and place they list: anywhere, a county, a cooperative."""

    __slots__ = ("shelves",)

    def __init__(self) -> None:
        self.shelves: dict[tuple[str, str, str], dict[str, _CommitmentState]] = {}

    @staticmethod
    def _keys(commitment: Commitment) -> list[tuple[str, str, str]]:
        grade = commitment.min_grade
        if not (commitment.eligible_counties or commitment.eligible_cooperatives):
            return [(grade, "anywhere", "")]
        keys = [(grade, "county", county) for county in dict.fromkeys(commitment.eligible_counties)]
        keys.extend((grade, "cooperative", name) for name in dict.fromkeys(commitment.eligible_cooperatives))
        return keys

    def add(self, state: _CommitmentState) -> None:
        for key in self._keys(state.commitment):
            commitments = self.shelves.get(key)
            if commitments is None:
                commitments = self.shelves[key] = {}
            commitments[state.commitment.commitment_id] = state

    def remove(self, state: _CommitmentState) -> None:
        for key in self._keys(state.commitment):
            commitments = self.shelves[key]
            del commitments[state.commitment.commitment_id]
            if not commitments:
                del self.shelves[key]

    def for_lot(self, lot: Lot, found: dict[str, _CommitmentState]) -> None:
        """Add to `found` the commitments whose minimum grade the lot meets and that list its county
        or its cooperative, or nothing. One that lists both is found twice and kept once."""
        shelves = self.shelves
        for grade in _GRADES_AT_MOST[lot.grade]:
            for place, name in (("anywhere", ""), ("county", lot.county), ("cooperative", lot.cooperative_id)):
                commitments = shelves.get((grade, place, name))
                if commitments:
                    found.update(commitments)


class _PriceSeries:
    """A market's observations of one grade: per day, the price journaled last for that day."""

    __slots__ = ("days", "price_on")

    def __init__(self) -> None:
        self.days: list[date] = []  # sorted, each once
        self.price_on: dict[date, int] = {}

    def observe(self, observed_on: date, price_fen: int) -> None:
        if observed_on not in self.price_on:
            insort(self.days, observed_on)
        self.price_on[observed_on] = price_fen  # on equal days the one later in the journal counts

    def as_of(self, day: date) -> int | None:
        """The latest observation not after `day`."""
        index = bisect_right(self.days, day)
        return self.price_on[self.days[index - 1]] if index else None


def _frozen_builder(cls):
    """A fast constructor for a frozen slots dataclass (fields in order) that sets the slots directly.
    The generated __init__ goes through object.__setattr__ once per field, which for a Fill costs
    more than the rest of the fill; the object made is the same."""
    setters = tuple(getattr(cls, field.name).__set__ for field in fields(cls))
    new = object.__new__

    def build(*values):
        instance = new(cls)
        deque(map(call, setters, repeat(instance), values), 0)
        return instance

    return build


_new_fill = _frozen_builder(Fill)


# ---------------------------------------------------------------- the book


class Book:
    """The market for one product: resting lots, open outlets, prices and plantings, driven by its journal."""

    def __init__(self, product: str) -> None:
        self.product = product
        self._journal_seq = 0
        self._fill_count = 0
        self._lot_shelves: dict[tuple[str, str, str], _Shelf] = {}
        self._open_orders: dict[str, _OrderState] = {}  # in journal order
        self._open_commitments: dict[str, _CommitmentState] = {}  # in journal order
        self._order_shelves = _OrderShelves()
        self._commitment_shelves = _CommitmentShelves()
        self._archived_order_shelves = _OrderShelves()
        self._archived_commitment_shelves = _CommitmentShelves()
        self._horizon = date.min
        self._recent_starts: list[date] = []  # available_from of the lots of the batch under way
        # A heap of the ends of the outlets not archived: (end, journal_seq, outlet).
        self._outlet_ends: list[tuple[date, int, _OrderState | _CommitmentState]] = []
        self._closed_ends = 0  # how many of those outlets have closed since
        self._lot_ids: set[str] = set()
        self._order_ids: set[str] = set()
        self._commitment_ids: set[str] = set()
        self._planting_ids: set[str] = set()
        self._planted_mu: dict[str, Decimal] = {}
        self._prices: dict[tuple[str, str], _PriceSeries] = {}  # by (grade, market)

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
        on_input = _ON_INPUT.get(type(fact))
        if on_input is None:
            if not isinstance(fact, FACT_TYPES):
                raise TypeError(f"not a matcher fact: {fact!r}")
            on_input = next(handler for kind, handler in _ON_INPUT.items() if isinstance(fact, kind))
        if fact.product != self.product:
            raise ValueError(f"a {fact.product} fact cannot enter the {self.product} book")
        self._journal_seq += 1
        return on_input(self, fact, self._journal_seq)

    def resting_lots(self) -> tuple[RestingLot, ...]:
        """The offers on the book now, in the order an arriving outlet considers them."""
        # Every resting lot sits on exactly one "anywhere" shelf: the one of its grade.
        anywhere = [shelf.lots for (_, place, _), shelf in self._lot_shelves.items() if place == "anywhere"]
        return tuple(
            RestingLot(state.lot, state.left, state.seq) for state in heapq.merge(*anywhere, key=_priority)
        )

    def open_outlets(self) -> tuple[OpenOutlet, ...]:
        """The orders and commitments that can still take produce now, in journal order."""
        views = [OpenOutlet("order", state.order, state.left, state.seq, ()) for state in self._open_orders.values()]
        views.extend(
            OpenOutlet(
                "commitment",
                state.commitment,
                state.left,
                state.seq,
                tuple(sorted(state.filled_by_cooperative.items())),
            )
            for state in self._open_commitments.values()
        )
        return tuple(sorted(views, key=attrgetter("journal_seq")))

    # ------------------------------------------------------------ inputs

    def _on_lot(self, lot: Lot, seq: int) -> list[Outcome]:
        if lot.lot_id in self._lot_ids:
            return []
        self._lot_ids.add(lot.lot_id)
        self._watch_horizon(lot.available_from)
        state = _LotState(lot, seq)
        outcomes: list[Outcome] = []
        used_up: list[_OrderState | _CommitmentState] = []
        for quote in self._best_outlets_for(lot):
            outcomes.append(self._fill(state, quote, seq))
            if quote.outlet.left == 0:
                used_up.append(quote.outlet)
            if state.left == 0:
                break
        # Removed only now: the shelf scans above must not see their lists change under them.
        for outlet in used_up:
            if isinstance(outlet, _OrderState):
                self._close_order(outlet)
            else:
                self._close_commitment(outlet)
        if state.left > 0:
            self._rest_lot(state)
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
        if order.order_id in self._order_ids:
            return []
        self._order_ids.add(order.order_id)
        state = _OrderState(order, seq)
        shelves = _lot_shelves_for_order(order)
        outcomes = self._fill_arriving_outlet(state, shelves, order.deliver_from, order.deliver_to, seq)
        if state.left > 0:
            self._open_orders[order.order_id] = state
            self._shelve(state, order.deliver_to)
        return outcomes

    def _on_commitment(self, commitment: Commitment, seq: int) -> list[Outcome]:
        if commitment.commitment_id in self._commitment_ids:
            return []
        self._commitment_ids.add(commitment.commitment_id)
        state = _CommitmentState(commitment, seq)
        shelves = _lot_shelves_for_commitment(commitment)
        outcomes = self._fill_arriving_outlet(state, shelves, commitment.valid_from, commitment.valid_to, seq)
        if state.left is None or state.left > 0:
            self._open_commitments[commitment.commitment_id] = state
            self._shelve(state, commitment.valid_to)
        return outcomes

    def _on_cancellation(self, cancellation: OrderCancellation, seq: int) -> list[Outcome]:
        # Only open orders are kept: cancelling a used-up, cancelled or unknown order changes nothing.
        state = self._open_orders.get(cancellation.order_id)
        if state is not None:
            state.cancelled = True
            self._close_order(state)
        return []

    def _on_market_price(self, price: MarketPrice, seq: int) -> list[Outcome]:
        series = self._prices.get((price.grade, price.market))
        if series is None:
            series = self._prices[(price.grade, price.market)] = _PriceSeries()
        series.observe(price.observed_on, price.price_fen)
        return []

    def _on_planting(self, planting: Planting, seq: int) -> list[Outcome]:
        if planting.planting_id in self._planting_ids:
            return []
        self._planting_ids.add(planting.planting_id)
        planted = self._planted_mu.get(planting.cooperative_id, _ZERO)
        self._planted_mu[planting.cooperative_id] = DECIMAL_CONTEXT.add(planted, planting.area_mu)
        return []

    # ------------------------------------------------------------ matching

    def _best_outlets_for(self, lot: Lot) -> Iterator[_Quote]:
        """Eligible outlets for an arriving lot, best first: price, orders before commitments, journal, id."""
        start, end = lot.available_from, lot.expires_on
        order_shelves: list[list[_OrderState]] = []
        commitments: dict[str, _CommitmentState] = {}
        self._order_shelves.for_lot(lot, order_shelves)
        self._commitment_shelves.for_lot(lot, commitments)
        if start < self._horizon:
            self._archived_order_shelves.for_lot(lot, order_shelves)
            self._archived_commitment_shelves.for_lot(lot, commitments)
        # A commitment's price depends on the lot (grade, date), so commitments are ranked per lot.
        prices = sorted(price for state in commitments.values() if (price := self._price_commitment(state, lot)))
        # The next candidate of each shelf, best on top: (rank, shelf number, shelf, index in it).
        heads = []
        for number, orders in enumerate(order_shelves):
            index = _next_order_overlapping(orders, 0, start, end)
            if index < len(orders):
                heads.append((orders[index].rank, number, orders, index))
        if prices:
            heads.append((prices[0][0], -1, prices, 0))
        heapq.heapify(heads)
        while heads:
            _, number, shelf, index = heads[0]
            if shelf is prices:
                quote = self._quote_commitment_price(prices[index], lot)
                following = index + 1
                rank = prices[following][0] if following < len(prices) else None
            else:
                quote = self._quote_order(shelf[index], lot)
                following = _next_order_overlapping(shelf, index + 1, start, end)
                rank = shelf[following].rank if following < len(shelf) else None
            if rank is None:
                heapq.heappop(heads)
            else:
                heapq.heapreplace(heads, (rank, number, shelf, following))
            if quote is not None:
                yield quote

    def _lots_for(self, shelf_keys: list[tuple[str, str, str]], start: date, end: date) -> Iterator[_LotState]:
        """The resting lots on these shelves whose window overlaps start..end, in priority order
        (a lot on two of them comes twice)."""
        # The next candidate of each shelf, best on top: (priority, shelf number, shelf, index, last expiry).
        heads = []
        for number, key in enumerate(shelf_keys):
            shelf = self._lot_shelves.get(key)
            if shelf is None:
                continue
            last_expiry = shelf.last_expiry(end)
            # Lots that expire before the window starts are skipped at once.
            index = shelf.next_overlapping(bisect_left(shelf.lots, (start,), key=_priority), end, last_expiry)
            if index is not None:
                heads.append((shelf.lots[index].priority, number, shelf, index, last_expiry))
        heapq.heapify(heads)
        while heads:
            _, number, shelf, index, last_expiry = heads[0]
            lot_state = shelf.lots[index]
            following = shelf.next_overlapping(index + 1, end, last_expiry)
            if following is None:
                heapq.heappop(heads)
            else:
                heapq.heapreplace(heads, (shelf.lots[following].priority, number, shelf, following, last_expiry))
            yield lot_state

    def _fill_arriving_outlet(
        self,
        outlet: _OrderState | _CommitmentState,
        shelf_keys: list[tuple[str, str, str]],
        start: date,
        end: date,
        seq: int,
    ) -> list[Outcome]:
        """Fill an arriving outlet from the best eligible resting lots until it is full or none is left."""
        outcomes: list[Outcome] = []
        used_up: list[_LotState] = []
        for state in self._lots_for(shelf_keys, start, end):
            if outlet.left is not None and outlet.left <= 0:
                break
            if state.left == 0:
                continue  # used up just now, and met again on another of its shelves
            quote = self._quote(outlet, state.lot)
            if quote is None:
                continue
            outcomes.append(self._fill(state, quote, seq))
            if state.left == 0:
                used_up.append(state)
                outcomes.append(OfferClosed(state.lot.lot_id, self.product, seq))
            else:
                outcomes.append(OfferShrunk(state.lot.lot_id, self.product, state.left, seq))
        for state in used_up:
            self._remove_lot(state)
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
        if GRADE_RANK[lot.grade] < GRADE_RANK[order.min_grade]:
            return None
        if not _windows_overlap(lot, order.deliver_from, order.deliver_to):
            return None
        # An order lists a region or two: looking through its tuple is as quick as a set, and smaller.
        if order.regions and lot.county not in order.regions and lot.township not in order.regions:
            return None
        return _Quote(state, "order", order.limit_price_fen, "order_limit", state.left, None, None, None)

    def _quote_commitment(self, state: _CommitmentState, lot: Lot) -> _Quote | None:
        """The commitment's offer for this lot, or None if the lot is not eligible for it."""
        price = self._price_commitment(state, lot)
        return None if price is None else self._quote_commitment_price(price, lot)

    def _price_commitment(self, state: _CommitmentState, lot: Lot) -> _CommitmentPrice | None:
        """What the commitment would pay for this lot, or None if the lot is not eligible for it on
        anything but the per-mu limit."""
        commitment = state.commitment
        if not _windows_overlap(lot, commitment.valid_from, commitment.valid_to):
            return None
        if state.left is not None and state.left <= 0:
            return None
        if GRADE_RANK[lot.grade] < GRADE_RANK[commitment.min_grade]:
            return None
        if (
            (state.counties or state.cooperatives)
            and lot.county not in state.counties
            and lot.cooperative_id not in state.cooperatives
        ):
            return None
        as_of = lot.available_from if lot.available_from > commitment.valid_from else commitment.valid_from
        series = self._prices.get((lot.grade, commitment.reference_market))
        market = None if series is None else series.as_of(as_of)
        if market is not None and market > commitment.floor_price_fen:
            price, basis = market, "market"
        else:
            price, basis = commitment.floor_price_fen, "floor"
        rank = outlet_rank(price, "commitment", state.seq, commitment.commitment_id)
        return (rank, state, price, basis, market, as_of)

    def _quote_commitment_price(self, price: _CommitmentPrice, lot: Lot) -> _Quote | None:
        """The commitment's offer at that price, with how much of the lot it may take: what is left
        under its cap and under the per-mu limit of the lot's cooperative; None if that leaves no room.
        Settled only for commitments a lot reaches: nothing it depends on changes while the lot goes
        to better outlets."""
        _, state, unit_price_fen, basis, market, as_of = price
        limit = state.left
        if state.commitment.max_quantity_per_mu is not None:
            room = self._per_mu_room(state, lot.cooperative_id)
            if room <= 0:
                return None
            limit = room if limit is None else min(limit, room)
        floor = state.commitment.floor_price_fen
        return _Quote(state, "commitment", unit_price_fen, basis, limit, floor, market, as_of)

    def _per_mu_room(self, state: _CommitmentState, cooperative_id: str) -> Decimal:
        """How much more the cooperative may sell under the commitment, cut down to whole units."""
        per_mu = state.commitment.max_quantity_per_mu
        assert per_mu is not None  # only called for commitments with a per-mu limit
        allowance = DECIMAL_CONTEXT.multiply(self._planted_mu.get(cooperative_id, _ZERO), per_mu)
        sold = state.filled_by_cooperative.get(cooperative_id, _ZERO)
        return cut_down(DECIMAL_CONTEXT.subtract(allowance, sold), self.product)

    def _fill(self, lot_state: _LotState, quote: _Quote, seq: int) -> Fill:
        """Move min(lot left, what the outlet can take) from the lot to the outlet and record it."""
        quantity = lot_state.left if quote.limit is None else min(lot_state.left, quote.limit)
        lot_state.left = DECIMAL_CONTEXT.subtract(lot_state.left, quantity)
        outlet = quote.outlet
        if outlet.left is not None:
            outlet.left = DECIMAL_CONTEXT.subtract(outlet.left, quantity)
        lot = lot_state.lot
        if type(outlet) is _CommitmentState:
            sold = outlet.filled_by_cooperative.get(lot.cooperative_id, _ZERO)
            outlet.filled_by_cooperative[lot.cooperative_id] = DECIMAL_CONTEXT.add(sold, quantity)
            outlet_id, buyer_id = outlet.commitment.commitment_id, outlet.commitment.buyer_id
        else:
            outlet_id, buyer_id = outlet.order.order_id, outlet.order.buyer_id
        revenue = checked_revenue_fen(quantity, quote.unit_price_fen)
        if lot_state.weights is None:
            lot_state.weights = checked_household_weights([(c.household_id, c.quantity) for c in lot.contributions])
        self._fill_count += 1
        return _new_fill(
            self._fill_count,  # position
            seq,  # journal_seq
            self.product,
            lot.lot_id,
            lot.cooperative_id,
            lot.grade,
            quote.outlet_kind,
            outlet_id,
            buyer_id,
            quantity,
            quote.unit_price_fen,
            quote.price_basis,
            revenue,
            share_out(revenue, lot_state.weights),  # household_income_fen
            quote.floor_price_fen,
            quote.market_price_fen,
            quote.price_as_of,
        )

    # ------------------------------------------------------------ shelves and horizon

    def _rest_lot(self, state: _LotState) -> None:
        lot = state.lot
        window = lot.expires_on - lot.available_from
        for key in _lot_shelf_keys(lot):
            shelf = self._lot_shelves.get(key)
            if shelf is None:
                shelf = self._lot_shelves[key] = _Shelf()
            insort(shelf.lots, state, key=_priority)
            if window > shelf.longest:
                shelf.longest = window

    def _remove_lot(self, state: _LotState) -> None:
        for key in _lot_shelf_keys(state.lot):
            shelf = self._lot_shelves[key]
            del shelf.lots[_index_of(shelf.lots, state, state.priority, _priority)]
            if not shelf.lots:
                del self._lot_shelves[key]

    def _shelve(self, state: _OrderState | _CommitmentState, end: date) -> None:
        """Put an outlet that stays open on its shelves, or in the archive if its window ended before the horizon."""
        if end < self._horizon:
            state.archived = True
        else:
            heapq.heappush(self._outlet_ends, (end, state.seq, state))
        self._shelves_of(state).add(state)

    def _shelves_of(self, state: _OrderState | _CommitmentState) -> _OrderShelves | _CommitmentShelves:
        if isinstance(state, _OrderState):
            return self._archived_order_shelves if state.archived else self._order_shelves
        return self._archived_commitment_shelves if state.archived else self._commitment_shelves

    def _close_order(self, state: _OrderState) -> None:
        del self._open_orders[state.order.order_id]
        self._shelves_of(state).remove(state)
        self._forget_end(state)

    def _close_commitment(self, state: _CommitmentState) -> None:
        del self._open_commitments[state.commitment.commitment_id]
        self._shelves_of(state).remove(state)
        self._forget_end(state)

    def _forget_end(self, state: _OrderState | _CommitmentState) -> None:
        """A closed outlet's end stays in the heap until the heap is more than half such ends:
        then they all go at once, so that closed outlets are not kept alive."""
        if state.archived:
            return  # archived outlets have left the heap
        self._closed_ends += 1
        if 2 * self._closed_ends > len(self._outlet_ends):
            self._outlet_ends = [entry for entry in self._outlet_ends if self._is_open(entry[2])]
            heapq.heapify(self._outlet_ends)
            self._closed_ends = 0

    def _is_open(self, state: _OrderState | _CommitmentState) -> bool:
        if isinstance(state, _OrderState):
            return self._open_orders.get(state.order.order_id) is state
        return self._open_commitments.get(state.commitment.commitment_id) is state

    def _watch_horizon(self, available_from: date) -> None:
        """Move the horizon up to the earliest of the last batch of lots less the lag, and archive
        the outlets whose window ended before it."""
        batch = self._recent_starts
        batch.append(available_from)
        if len(batch) < HORIZON_BATCH:
            return
        earliest = min(batch)
        batch.clear()
        if earliest - date.min <= HORIZON_LAG or earliest - HORIZON_LAG <= self._horizon:
            return
        self._horizon = horizon = earliest - HORIZON_LAG
        ends = self._outlet_ends
        while ends and ends[0][0] < horizon:
            _, _, state = heapq.heappop(ends)
            if self._is_open(state):
                self._shelves_of(state).remove(state)
                state.archived = True
                self._shelves_of(state).add(state)


def _index_of(entries: list, state: object, order_key: tuple, key: attrgetter) -> int:
    index = bisect_left(entries, order_key, key=key)
    if index == len(entries) or entries[index] is not state:
        raise AssertionError("book state out of order")  # a bug, never a business case
    return index


_ON_INPUT = {
    Lot: Book._on_lot,
    Order: Book._on_order,
    Commitment: Book._on_commitment,
    OrderCancellation: Book._on_cancellation,
    MarketPrice: Book._on_market_price,
    Planting: Book._on_planting,
}
"""What a book does with each kind of input."""


# ---------------------------------------------------------------- many products


class Market:
    """All products' books: each fact goes to the book of its product, created on first use."""

    def __init__(self) -> None:
        self._books: dict[str, Book] = {}

    def process(self, fact: Fact) -> list[Outcome]:
        """Apply the next journal input of the fact's product; return what it caused."""
        if type(fact) not in _ON_INPUT and not isinstance(fact, FACT_TYPES):
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
