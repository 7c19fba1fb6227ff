"""The index: shelves that let a book of tens of thousands of offers be searched without a scan.

Every key comes from the rulebook (matcher/rules.py): the index asks it which shelves an item
belongs on and which shelves an arriving item must read, and sorts each shelf by the rulebook's
ranking. The shelves only narrow the search and keep the ranking order; every candidate found
is still quoted by the rules, so the fills are those of a scan of the whole book
(matcher/reference.py is that scan).

- resting lots sit on lot shelves (`rules.lot_shelf_keys`), each in lot priority order (§M2),
  which every rulebook keeps in expiry order on one shelf; an arriving outlet reads the shelves
  `rules.lot_shelves_for_order` / `lot_shelves_for_commitment` name, from the first lot that has
  not expired before its window starts, merged in priority order (`lots_for`);
- open orders sit on order shelves (`rules.order_shelf_keys`), each in rank order (§M1); an
  arriving lot reads `rules.order_shelves_for_lot`;
- open commitments sit on commitment shelves (`rules.commitment_shelf_keys`); an arriving lot
  prices those on `rules.commitment_shelves_for_lot`;
- market prices sit in one series per grade and market (`PriceSeries`, §P3).

The book keeps a second set of outlet shelves, the archive, for outlets whose window ended
before its horizon: by §E4 (`rules.window_reaches`) they cannot take a lot available after it.
"""

from __future__ import annotations

import heapq
from bisect import bisect_left, bisect_right, insort
from collections.abc import Callable, Iterator
from datetime import date, timedelta
from operator import attrgetter
from typing import TypeAlias, TypeVar

from matcher.facts import Lot
from matcher.rules import LotPriority, OrderShelfKey, OutletRank, Rulebook, ShelfKey
from matcher.state import CommitmentState, LotState, OrderState

# Sort keys of the shelves: attrgetters (C, no Python frame per comparison), typed as what they get.
priority_of: Callable[[LotState], LotPriority] = attrgetter("priority")
rank_of: Callable[[OrderState], OutletRank] = attrgetter("rank")
expiry_of: Callable[[LotState], date] = attrgetter("lot.expires_on")


class LotShelf:
    """Resting lots of one shelf, in priority order (so by expiry), and the longest availability window
    of any lot put on it since the shelf was made."""

    __slots__ = ("lots", "longest")

    def __init__(self) -> None:
        self.lots: list[LotState] = []
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


LotShelves: TypeAlias = dict[ShelfKey, LotShelf]


def rest_lot(shelves: LotShelves, state: LotState, keys: tuple[ShelfKey, ...]) -> None:
    """Put a resting lot on its shelves (`keys`: the rulebook's `lot_shelf_keys` of it)."""
    lot = state.lot
    window = lot.expires_on - lot.available_from
    for key in keys:
        shelf = shelves.get(key)
        if shelf is None:
            shelf = shelves[key] = LotShelf()
        insort(shelf.lots, state, key=priority_of)
        if window > shelf.longest:
            shelf.longest = window


def remove_lot(shelves: LotShelves, state: LotState, keys: tuple[ShelfKey, ...]) -> None:
    """Take a used-up lot off its shelves."""
    for key in keys:
        shelf = shelves[key]
        del shelf.lots[index_of(shelf.lots, state, state.priority, priority_of)]
        if not shelf.lots:
            del shelves[key]


def lots_for(shelves: LotShelves, keys: list[ShelfKey], start: date, end: date) -> Iterator[LotState]:
    """The resting lots on these shelves whose window overlaps start..end (§E4), in priority order
    (a lot on two of them comes twice)."""
    # The next candidate of each shelf, best on top: (priority, shelf number, shelf, index, last expiry).
    heads: list[tuple[LotPriority, int, LotShelf, int, date]] = []
    for number, key in enumerate(keys):
        shelf = shelves.get(key)
        if shelf is None:
            continue
        last_expiry = shelf.last_expiry(end)
        # Lots that expire before the window starts are skipped at once.
        index = shelf.next_overlapping(bisect_left(shelf.lots, start, key=expiry_of), end, last_expiry)
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


def next_order_overlapping(orders: list[OrderState], index: int, start: date, end: date) -> int:
    """Where, from `index` on, the next order of a shelf is whose delivery window overlaps start..end (§E4);
    len(orders) if none is."""
    for index in range(index, len(orders)):
        order = orders[index].order
        if order.deliver_from <= end and start <= order.deliver_to:
            return index
    return len(orders)


class OrderShelves:
    """Open orders on the rulebook's order shelves, each shelf in rank order."""

    __slots__ = ("shelves", "rules")

    def __init__(self, rules: Rulebook) -> None:
        self.shelves: dict[OrderShelfKey, list[OrderState]] = {}
        self.rules = rules

    def add(self, state: OrderState) -> None:
        for key in self.rules.order_shelf_keys(state.order):
            orders = self.shelves.get(key)
            if orders is None:
                orders = self.shelves[key] = []
            insort(orders, state, key=rank_of)

    def remove(self, state: OrderState) -> None:
        for key in self.rules.order_shelf_keys(state.order):
            orders = self.shelves[key]
            del orders[index_of(orders, state, state.rank, rank_of)]
            if not orders:
                del self.shelves[key]

    def for_lot(self, lot: Lot, found: list[list[OrderState]]) -> None:
        """Add to `found` the shelves that can hold orders that may take the lot."""
        shelves = self.shelves
        for key in self.rules.order_shelves_for_lot(lot.grade, lot.county, lot.township):
            orders = shelves.get(key)
            if orders:
                found.append(orders)


class CommitmentShelves:
    """Open commitments on the rulebook's commitment shelves, by id."""

    __slots__ = ("shelves", "rules")

    def __init__(self, rules: Rulebook) -> None:
        self.shelves: dict[ShelfKey, dict[str, CommitmentState]] = {}
        self.rules = rules

    def add(self, state: CommitmentState) -> None:
        for key in self.rules.commitment_shelf_keys(state.commitment):
            commitments = self.shelves.get(key)
            if commitments is None:
                commitments = self.shelves[key] = {}
            commitments[state.commitment.commitment_id] = state

    def remove(self, state: CommitmentState) -> None:
        for key in self.rules.commitment_shelf_keys(state.commitment):
            commitments = self.shelves[key]
            del commitments[state.commitment.commitment_id]
            if not commitments:
                del self.shelves[key]

    def for_lot(self, lot: Lot, found: dict[str, CommitmentState]) -> None:
        """Add to `found` the commitments that may take the lot as far as their shelves tell. One on two
        of the lot's shelves is found twice and kept once."""
        shelves = self.shelves
        for key in self.rules.commitment_shelves_for_lot(lot.grade, lot.county, lot.cooperative_id):
            commitments = shelves.get(key)
            if commitments:
                found.update(commitments)


class PriceSeries:
    """A market's observations of one grade: per day, the price journaled last for that day (§P3: of
    equal days the one later in the journal counts)."""

    __slots__ = ("days", "price_on")

    def __init__(self) -> None:
        self.days: list[date] = []  # sorted, each once
        self.price_on: dict[date, int] = {}

    def observe(self, observed_on: date, price_fen: int) -> None:
        if observed_on not in self.price_on:
            insort(self.days, observed_on)
        self.price_on[observed_on] = price_fen

    def as_of(self, day: date) -> int | None:
        """The latest observation not after `day` (§P3)."""
        index = bisect_right(self.days, day)
        return self.price_on[self.days[index - 1]] if index else None


_State = TypeVar("_State", LotState, OrderState)
_SortKey = TypeVar("_SortKey", LotPriority, OutletRank)


def index_of(entries: list[_State], state: _State, order_key: _SortKey, key: Callable[[_State], _SortKey]) -> int:
    """Where `state` sits in a sorted shelf; AssertionError if it is not there (a bug, never a business case)."""
    index = bisect_left(entries, order_key, key=key)
    if index == len(entries) or entries[index] is not state:
        raise AssertionError("book state out of order")
    return index
