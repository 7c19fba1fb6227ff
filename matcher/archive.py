"""How a book keeps its open outlets and resting lots on the index: shelving, closing, the horizon
archive, and re-shelving everything when the rules version changes.

Outlets whose window ended before the book's *horizon* (a week before the dates lots now arrive
with) move to an archive of shelves that only a lot available before the horizon reads: by §E4
(`rules.window_reaches`) an outlet cannot take a lot that became available after its window ended.
The horizon moves in batches of arriving lots, so one lot dated far ahead cannot move it.
"""

from __future__ import annotations

import heapq
from datetime import date, timedelta

from matcher.rules import Rulebook, window_reaches
from matcher.shelves import CommitmentShelves, LotShelves, OrderShelves, rest_lot
from matcher.state import CommitmentState, LotState, OrderState, OutletState

HORIZON_LAG = timedelta(days=7)
"""How far the horizon stays behind the earliest lot of a batch."""
HORIZON_BATCH = 256
"""The horizon moves once per this many arriving lots, to the earliest of them less the lag:
one lot dated far ahead cannot move it, one dated far back only takes the slow path itself."""


class Shelving:
    """The index side of a Book (matcher/book.py): its attributes are the book's, set up by Book.__init__."""

    _rules: Rulebook
    _lot_shelves: LotShelves
    _open_orders: dict[str, OrderState]
    _open_commitments: dict[str, CommitmentState]
    _order_shelves: OrderShelves
    _commitment_shelves: CommitmentShelves
    _archived_order_shelves: OrderShelves
    _archived_commitment_shelves: CommitmentShelves
    _horizon: date
    _recent_starts: list[date]
    _outlet_ends: list[tuple[date, int, OutletState]]
    _closed_ends: int

    def lot_states(self) -> list[LotState]:
        """Every resting lot's state once, in journal order (for snapshots and re-shelving)."""
        by_seq = {state.seq: state for shelf in self._lot_shelves.values() for state in shelf.lots}
        return [by_seq[seq] for seq in sorted(by_seq)]

    def adopt(self, rules: Rulebook) -> None:
        """Put every resting lot and open outlet on the shelves of `rules`, ranked by it."""
        lots, orders, commitments = self.lot_states(), self._open_orders.values(), self._open_commitments.values()
        self._rules = rules
        self._lot_shelves = {}
        for state in lots:
            state.priority = rules.lot_priority(state.lot, state.seq)
            rest_lot(self._lot_shelves, state, rules.lot_shelf_keys(state.lot))
        self._order_shelves, self._archived_order_shelves = OrderShelves(rules), OrderShelves(rules)
        self._commitment_shelves, self._archived_commitment_shelves = CommitmentShelves(rules), CommitmentShelves(rules)
        for order in orders:
            order.rank = rules.outlet_rank(order.order.limit_price_fen, "order", order.seq, order.order.order_id)
            self._add_to_shelves(order)
        for commitment in commitments:
            self._add_to_shelves(commitment)

    def _shelve(self, state: OutletState, end: date) -> None:
        """Put an outlet that stays open on its shelves, or in the archive if no lot available from the
        horizon on can reach its window (§E4)."""
        if not window_reaches(self._horizon, end):
            state.archived = True
        else:
            heapq.heappush(self._outlet_ends, (end, state.seq, state))
        self._add_to_shelves(state)

    def _add_to_shelves(self, state: OutletState) -> None:
        """Put an outlet on the shelves of its kind, the archived ones if it is archived."""
        if type(state) is OrderState:
            (self._archived_order_shelves if state.archived else self._order_shelves).add(state)
        else:
            (self._archived_commitment_shelves if state.archived else self._commitment_shelves).add(state)

    def _remove_from_shelves(self, state: OutletState) -> None:
        """Take an outlet off the shelves `_add_to_shelves` put it on."""
        if type(state) is OrderState:
            (self._archived_order_shelves if state.archived else self._order_shelves).remove(state)
        else:
            (self._archived_commitment_shelves if state.archived else self._commitment_shelves).remove(state)

    def _close_order(self, state: OrderState) -> None:
        del self._open_orders[state.order.order_id]
        self._remove_from_shelves(state)
        self._forget_end(state)

    def _close_commitment(self, state: CommitmentState) -> None:
        del self._open_commitments[state.commitment.commitment_id]
        self._remove_from_shelves(state)
        self._forget_end(state)

    def _forget_end(self, state: OutletState) -> None:
        """A closed outlet's end stays in the heap until the heap is more than half such ends:
        then they all go at once, so that closed outlets are not kept alive."""
        if state.archived:
            return  # archived outlets have left the heap
        self._closed_ends += 1
        if 2 * self._closed_ends > len(self._outlet_ends):
            self._outlet_ends = [entry for entry in self._outlet_ends if self._is_open(entry[2])]
            heapq.heapify(self._outlet_ends)
            self._closed_ends = 0

    def _is_open(self, state: OutletState) -> bool:
        if type(state) is OrderState:
            return self._open_orders.get(state.order.order_id) is state
        return self._open_commitments.get(state.commitment.commitment_id) is state

    def _watch_horizon(self, available_from: date) -> None:
        """Move the horizon up to the earliest of the last batch of lots less the lag, and archive
        the outlets no lot available from then on can reach (§E4)."""
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
        while ends and not window_reaches(horizon, ends[0][0]):
            _, _, state = heapq.heappop(ends)
            if self._is_open(state):
                self._remove_from_shelves(state)
                state.archived = True
                self._add_to_shelves(state)
