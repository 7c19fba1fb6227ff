"""The matching engine: one book per product, a pure fold of that product's journal.

Nothing here reads a clock, does I/O or depends on anything but the order of the inputs,
so the matching service (live) and the audit (re-execution) get the same fills to the fen
from the same journal.

The book keeps the state (matcher/state.py) and dispatches each input; what may match, at
what price and in which order is the rulebook's (matcher/rules.py), under the rules version in
force for the product (a `RulesAdoption` input switches it, matcher/versions.py); where to look
is the index's (matcher/shelves.py). `matcher.money` prices a fill to the fen.
How the book keeps outlets and lots on the index, and its horizon archive: matcher/archive.py.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Iterable, Iterator
from datetime import date
from decimal import Decimal
from operator import attrgetter
from typing import TypeAlias, TypeVar, cast

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
    Planting,
    RulesAdoption,
)
from matcher.archive import HORIZON_BATCH, HORIZON_LAG, Shelving  # noqa: F401 (the horizon's settings, re-exported)
from matcher.money import checked_household_weights, checked_revenue_fen, share_out
from matcher.rules import VERSION_1, OutletRank, Rulebook, ShelfKey, fill_quantity, rulebook
from matcher.shelves import (
    CommitmentShelves,
    LotShelves,
    OrderShelves,
    PriceSeries,
    lots_for,
    next_order_overlapping,
    priority_of,
    remove_lot,
    rest_lot,
)
from matcher.state import (
    CommitmentPrice,
    CommitmentState,
    LotState,
    OpenOutlet,
    OrderState,
    OutletState,
    Quote,
    RestingLot,
    new_fill,
)

_ZERO = Decimal(0)
_new_tuple = tuple.__new__  # a NamedTuple from its values, without its Python-level __new__


class Book(Shelving):
    """The market for one product: resting lots, open outlets, prices and plantings, driven by its journal."""

    def __init__(self, product: str, rules: Rulebook = VERSION_1) -> None:
        self.product = product
        self._rules = rules
        self._journal_seq = 0
        self._fill_count = 0
        self._lot_shelves: LotShelves = {}
        self._open_orders: dict[str, OrderState] = {}  # in journal order
        self._open_commitments: dict[str, CommitmentState] = {}  # in journal order
        self._order_shelves = OrderShelves(rules)
        self._commitment_shelves = CommitmentShelves(rules)
        self._archived_order_shelves = OrderShelves(rules)
        self._archived_commitment_shelves = CommitmentShelves(rules)
        self._horizon = date.min
        self._recent_starts: list[date] = []  # available_from of the lots of the batch under way
        # A heap of the ends of the outlets not archived: (end, journal_seq, outlet).
        self._outlet_ends: list[tuple[date, int, OutletState]] = []
        self._closed_ends = 0  # how many of those outlets have closed since
        self._lot_ids: set[str] = set()
        self._order_ids: set[str] = set()
        self._commitment_ids: set[str] = set()
        self._planting_ids: set[str] = set()
        self._planted_mu: dict[str, Decimal] = {}
        self._prices: dict[tuple[str, str], PriceSeries] = {}  # by (grade, market)

    @property
    def journal_seq(self) -> int:
        """How many journal inputs this book has processed (the number of the last one)."""
        return self._journal_seq

    @property
    def fills_so_far(self) -> int:
        """How many fills this book has made: the position of the last one."""
        return self._fill_count

    @property
    def rules_version(self) -> int:
        """The rules version in force: the one the last input was decided under."""
        return self._rules.version

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
        by_seq = {id(state): state for shelf in self._lot_shelves.values() for state in shelf.lots}
        ranked = sorted(by_seq.values(), key=priority_of)
        return tuple(RestingLot(state.lot, state.left, state.seq) for state in ranked)

    def open_outlets(self) -> tuple[OpenOutlet, ...]:
        """The orders and commitments that can still take produce now, in journal order."""
        views = [OpenOutlet("order", state.order, state.left, state.seq, ()) for state in self._open_orders.values()]
        views.extend(
            OpenOutlet("commitment", state.commitment, state.left, state.seq, tuple(sorted(state.filled_by_cooperative.items())))
            for state in self._open_commitments.values()
        )
        return tuple(sorted(views, key=attrgetter("journal_seq")))

    # ------------------------------------------------------------ inputs

    def _on_lot(self, lot: Lot, seq: int) -> list[Outcome]:
        if lot.lot_id in self._lot_ids:
            return []
        self._lot_ids.add(lot.lot_id)
        self._watch_horizon(lot.available_from)
        state = LotState(lot, seq, self._rules)
        outcomes: list[Outcome] = []
        used_up: list[OutletState] = []
        for quote in self._best_outlets_for(lot):
            outcomes.append(self._fill(state, quote, seq))
            if quote.outlet.left == 0:
                used_up.append(quote.outlet)
            if state.left == 0:
                break
        # Removed only now: the shelf scans above must not see their lists change under them.
        for outlet in used_up:
            if type(outlet) is OrderState:
                self._close_order(outlet)
            else:
                self._close_commitment(outlet)
        if state.left > 0:
            rest_lot(self._lot_shelves, state, self._rules.lot_shelf_keys(lot))
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
        state = OrderState(order, seq, self._rules)
        shelves = self._rules.lot_shelves_for_order(order)
        outcomes = self._fill_arriving_outlet(state, shelves, order.deliver_from, order.deliver_to, seq)
        if state.left > 0:
            self._open_orders[order.order_id] = state
            self._shelve(state, order.deliver_to)
        return outcomes

    def _on_commitment(self, commitment: Commitment, seq: int) -> list[Outcome]:
        if commitment.commitment_id in self._commitment_ids:
            return []
        self._commitment_ids.add(commitment.commitment_id)
        state = CommitmentState(commitment, seq)
        shelves = self._rules.lot_shelves_for_commitment(commitment)
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
            series = self._prices[(price.grade, price.market)] = PriceSeries()
        series.observe(price.observed_on, price.price_fen)
        return []

    def _on_planting(self, planting: Planting, seq: int) -> list[Outcome]:
        if planting.planting_id in self._planting_ids:
            return []
        self._planting_ids.add(planting.planting_id)
        planted = self._planted_mu.get(planting.cooperative_id, _ZERO)
        self._planted_mu[planting.cooperative_id] = DECIMAL_CONTEXT.add(planted, planting.area_mu)
        return []

    def _on_adoption(self, adoption: RulesAdoption, seq: int) -> list[Outcome]:
        """From this input on, decide under another rules version: everything resting is ranked and
        shelved again by the new rulebook."""
        if adoption.rules_version != self._rules.version:
            self.adopt(rulebook(adoption.rules_version))
        return []

    # ------------------------------------------------------------ matching

    def _best_outlets_for(self, lot: Lot) -> Iterator[Quote]:
        """Eligible outlets for an arriving lot, best first (§M1)."""
        start, end = lot.available_from, lot.expires_on
        order_shelves: list[list[OrderState]] = []
        commitments: dict[str, CommitmentState] = {}
        self._order_shelves.for_lot(lot, order_shelves)
        self._commitment_shelves.for_lot(lot, commitments)
        if start < self._horizon:
            self._archived_order_shelves.for_lot(lot, order_shelves)
            self._archived_commitment_shelves.for_lot(lot, commitments)
        # A commitment's price depends on the lot (grade, date), so commitments are ranked per lot.
        prices = sorted(price for state in commitments.values() if (price := self._price_commitment(state, lot)))
        # The next candidate of each shelf, best on top: (rank, shelf number, shelf, index in it); the
        # commitments priced for the lot are shelf -1, held as None: `prices`. Shelf numbers are unique,
        # so the shelves themselves are never compared.
        heads: list[tuple[OutletRank, int, list[OrderState] | None, int]] = []
        for number, orders in enumerate(order_shelves):
            index = next_order_overlapping(orders, 0, start, end)
            if index < len(orders):
                heads.append((orders[index].rank, number, orders, index))
        if prices:
            heads.append((prices[0].rank, -1, None, 0))
        heapq.heapify(heads)
        while heads:
            _, number, shelf, index = heads[0]
            if shelf is None:
                quote = self._quote_commitment_price(prices[index], lot)
                following = index + 1
                rank = prices[following].rank if following < len(prices) else None
            else:
                quote = self._quote_order(shelf[index], lot)
                following = next_order_overlapping(shelf, index + 1, start, end)
                rank = shelf[following].rank if following < len(shelf) else None
            if rank is None:
                heapq.heappop(heads)
            else:
                heapq.heapreplace(heads, (rank, number, shelf, following))
            if quote is not None:
                yield quote

    def _fill_arriving_outlet(
        self, outlet: OutletState, shelf_keys: list[ShelfKey], start: date, end: date, seq: int
    ) -> list[Outcome]:
        """Fill an arriving outlet from the best eligible resting lots until it is full or none is left (§M2)."""
        outcomes: list[Outcome] = []
        used_up: list[LotState] = []
        for state in lots_for(self._lot_shelves, shelf_keys, start, end):
            if outlet.left is not None and outlet.left <= 0:
                break
            if state.left == 0:
                continue  # used up just now, and met again on another of its shelves
            if type(outlet) is OrderState:
                quote = self._quote_order(outlet, state.lot)
            else:
                quote = self._quote_commitment(outlet, state.lot)
            if quote is None:
                continue
            outcomes.append(self._fill(state, quote, seq))
            if state.left == 0:
                used_up.append(state)
                outcomes.append(OfferClosed(state.lot.lot_id, self.product, seq))
            else:
                outcomes.append(OfferShrunk(state.lot.lot_id, self.product, state.left, seq))
        lot_shelf_keys = self._rules.lot_shelf_keys
        for state in used_up:
            remove_lot(self._lot_shelves, state, lot_shelf_keys(state.lot))
        return outcomes

    def _quote_order(self, state: OrderState, lot: Lot) -> Quote | None:
        """The order's offer for this lot (§P1), or None if the lot is not eligible for it (§E)."""
        if state.cancelled or state.left <= 0 or not self._rules.order_takes(lot, state.order):
            return None
        return Quote(state, "order", self._rules.order_price(state.order.limit_price_fen), state.left)

    def _quote_commitment(self, state: CommitmentState, lot: Lot) -> Quote | None:
        """The commitment's offer for this lot, or None if the lot is not eligible for it."""
        price = self._price_commitment(state, lot)
        return None if price is None else self._quote_commitment_price(price, lot)

    def _price_commitment(self, state: CommitmentState, lot: Lot) -> CommitmentPrice | None:
        """What the commitment would pay for this lot (§P2-§P4) and its rank for it (§M1), or None if the
        lot is not eligible for it on anything but the per-mu limit (§E)."""
        commitment = state.commitment
        rules = self._rules
        if (state.left is not None and state.left <= 0) or not rules.commitment_takes(
            lot, commitment, state.counties, state.cooperatives
        ):
            return None
        as_of = rules.as_of_date(lot.available_from, commitment.valid_from)
        series = self._prices.get((lot.grade, commitment.reference_market))
        price = rules.commitment_price(commitment.floor_price_fen, None if series is None else series.as_of(as_of), as_of)
        rank = rules.outlet_rank(price.unit_price_fen, "commitment", state.seq, commitment.commitment_id)
        return _new_tuple(CommitmentPrice, (rank, state, price))

    def _quote_commitment_price(self, priced: CommitmentPrice, lot: Lot) -> Quote | None:
        """The commitment's offer at that price, with how much of the lot it may take: what is left under
        its cap and under the per-mu limit of the lot's cooperative (§U1); None if that leaves no room.
        Settled only for commitments a lot reaches: nothing it depends on changes while the lot goes
        to better outlets."""
        state = priced.state
        limit = state.left
        per_mu = state.commitment.max_quantity_per_mu
        if per_mu is not None:
            cooperative_id = lot.cooperative_id
            room = self._rules.per_mu_room(
                self._planted_mu.get(cooperative_id, _ZERO),
                per_mu,
                state.filled_by_cooperative.get(cooperative_id, _ZERO),
                self.product,
            )
            if room <= 0:
                return None
            limit = room if limit is None else min(limit, room)
        return Quote(state, "commitment", priced.price, limit)

    def _fill(self, lot_state: LotState, quote: Quote, seq: int) -> Fill:
        """Move min(lot left, what the outlet can take) from the lot to the outlet (§M3) and record it."""
        quantity = fill_quantity(lot_state.left, quote.limit)
        lot_state.left = DECIMAL_CONTEXT.subtract(lot_state.left, quantity)
        outlet = quote.outlet
        if outlet.left is not None:
            outlet.left = DECIMAL_CONTEXT.subtract(outlet.left, quantity)
        lot = lot_state.lot
        if type(outlet) is CommitmentState:
            sold = outlet.filled_by_cooperative.get(lot.cooperative_id, _ZERO)
            outlet.filled_by_cooperative[lot.cooperative_id] = DECIMAL_CONTEXT.add(sold, quantity)
            outlet_id, buyer_id = outlet.commitment.commitment_id, outlet.commitment.buyer_id
        else:
            outlet_id, buyer_id = outlet.order.order_id, outlet.order.buyer_id
        price = quote.price
        revenue = checked_revenue_fen(quantity, price.unit_price_fen)
        if lot_state.weights is None:
            lot_state.weights = checked_household_weights([(c.household_id, c.quantity) for c in lot.contributions])
        self._fill_count += 1
        return new_fill(
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
            unit_price_fen=price.unit_price_fen,
            price_basis=price.price_basis,
            revenue_fen=revenue,
            household_income_fen=share_out(revenue, lot_state.weights),
            floor_price_fen=price.floor_price_fen,
            market_price_fen=price.market_price_fen,
            price_as_of=price.price_as_of,
        )


_Handler: TypeAlias = Callable[[Book, Fact, int], list[Outcome]]
"""What a book does with an input: (book, fact, journal_seq) -> outcomes."""
_OneFact = TypeVar("_OneFact", Lot, Order, Commitment, OrderCancellation, MarketPrice, Planting, RulesAdoption)


def _handles(kind: type[_OneFact], handler: Callable[[Book, _OneFact, int], list[Outcome]]) -> tuple[type[Fact], _Handler]:
    """A handler of one kind of fact as an entry of `_ON_INPUT`: the type checker sees that it takes that
    kind; `Book.process` calls it with facts of that kind only (it looks the handler up by the fact's type)."""
    return kind, cast(_Handler, handler)


_ON_INPUT: dict[type[Fact], _Handler] = dict(
    (
        _handles(Lot, Book._on_lot),
        _handles(Order, Book._on_order),
        _handles(Commitment, Book._on_commitment),
        _handles(OrderCancellation, Book._on_cancellation),
        _handles(MarketPrice, Book._on_market_price),
        _handles(Planting, Book._on_planting),
        _handles(RulesAdoption, Book._on_adoption),
    )
)
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
