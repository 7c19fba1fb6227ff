"""The matching side of a Book (matcher/book.py): which outlets an arriving lot meets and in which order (§M1),
which lots an arriving outlet takes (§M2), what each outlet offers for a lot (§P1-§P4, §U1) and the fill that
moves produce from a lot to an outlet (§M3). The rules themselves are the rulebook's (matcher/rules.py); where
to look is the index's (matcher/shelves.py)."""

from __future__ import annotations

import heapq
from collections.abc import Iterator
from datetime import date
from decimal import Decimal

from matcher.facts import (
    DECIMAL_CONTEXT,
    Fill,
    Lot,
    OfferClosed,
    OfferShrunk,
    Outcome,
)
from matcher.archive import Shelving
from matcher.money import checked_household_weights, checked_revenue_fen, share_out
from matcher.rules import OutletRank, ShelfKey, fill_quantity
from matcher.shelves import (
    PriceSeries,
    lots_for,
    next_order_overlapping,
    remove_lot,
)
from matcher.state import (
    CommitmentPrice,
    CommitmentState,
    LotState,
    OrderState,
    OutletState,
    Quote,
    new_fill,
)

_ZERO = Decimal(0)
_new_tuple = tuple.__new__  # a NamedTuple from its values, without its Python-level __new__


class Matching(Shelving):
    """The matching side of a Book: its attributes are the book's, set up by Book.__init__."""

    product: str
    _fill_count: int
    _planted_mu: dict[str, Decimal]
    _prices: dict[tuple[str, str], PriceSeries]

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
        """The order's quote for this lot (§P1), or None if the lot is not eligible for it (§E)."""
        if state.cancelled or state.left <= 0 or not self._rules.order_takes(lot, state.order):
            return None
        return Quote(state, "order", self._rules.order_price(state.order.limit_price_fen), state.left)

    def _quote_commitment(self, state: CommitmentState, lot: Lot) -> Quote | None:
        """The commitment's quote for this lot, or None if the lot is not eligible for it."""
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
        """The commitment's quote at that price, with how much of the lot it may take: what is left under
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
