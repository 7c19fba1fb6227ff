"""The matching engine: one book per product, a pure fold of that product's journal.

Nothing here reads a clock, does I/O or depends on anything but the order of the inputs,
so the matching service (live) and the audit (re-execution) get the same fills to the fen
from the same journal.

The book keeps the state (matcher/state.py) and dispatches each input; what may match, at
what price and in which order is the rulebook's (matcher/rules.py), under the rules version in
force for the product (a `RulesAdoption` input switches it, matcher/versions.py); where to look
is the index's (matcher/shelves.py). `matcher.money` prices a fill to the fen.
How the book keeps outlets and lots on the index, and its horizon archive: matcher/archive.py; how it
quotes outlets for a lot and makes a fill: matcher/matching.py.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import date
from decimal import Decimal
from operator import attrgetter
from typing import TypeAlias, TypeVar, cast

from matcher.facts import (
    DECIMAL_CONTEXT,
    FACT_TYPES,
    Commitment,
    Fact,
    Lot,
    MarketPrice,
    OfferOpened,
    Order,
    OrderCancellation,
    Outcome,
    Planting,
    RulesAdoption,
)
from matcher.archive import HORIZON_BATCH, HORIZON_LAG  # noqa: F401 (the horizon's settings, re-exported)
from matcher.matching import Matching
from matcher.rules import VERSION_1, Rulebook, rulebook
from matcher.shelves import (
    CommitmentShelves,
    LotShelves,
    OrderShelves,
    PriceSeries,
    priority_of,
    rest_lot,
)
from matcher.state import (
    CommitmentState,
    LotState,
    OpenOutlet,
    OrderState,
    OutletState,
    RestingLot,
)

_ZERO = Decimal(0)


class Book(Matching):
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
