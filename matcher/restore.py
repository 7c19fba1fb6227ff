"""A book made from a snapshot's state (matcher/snapshot.py): facts read back through their own constructors, so a
restored fact is validated as a journaled one is; shelves filled in journal order and sorted once."""

from __future__ import annotations

import gc
import heapq
import json
from collections.abc import Callable
from datetime import date, timedelta
from decimal import Decimal
from functools import lru_cache
from typing import Any

from matcher.book import Book
from matcher.facts import Commitment, Contribution, Lot, Order
from matcher.rules import Rulebook, rulebook
from matcher.shelves import LotShelf, PriceSeries, priority_of, rank_of
from matcher.state import CommitmentState, LotState, OrderState, OutletState
from matcher.snapshot_tables import COMMITMENT_COLUMNS, FORMAT, LOT_COLUMNS, ORDER_COLUMNS, table_rows


@lru_cache(maxsize=4096)
def _day(text: str) -> date:
    """A date from ISO text; a book's dates are a few hundred days, each read once and shared."""
    return date.fromisoformat(text)


def book_from_state(state: dict[str, Any]) -> Book:
    """A book in exactly the state `book_state` described. ValueError/KeyError/TypeError for data it cannot be."""
    enabled = gc.isenabled()
    gc.disable()  # hundreds of thousands of new objects, none of them garbage: collecting while making them only costs
    try:
        return _book_from_state(state)
    finally:
        if enabled:
            gc.enable()


def _book_from_state(state: dict[str, Any]) -> Book:
    if state.get("format") != FORMAT:
        raise ValueError(f"snapshot format {state.get('format')!r}, this matcher reads format {FORMAT}")
    product = state["product"]
    rules = rulebook(state.get("rules_version", 1))
    book = Book(product, rules)
    book._journal_seq = _count("journal_seq", state["journal_seq"])
    book._fill_count = _count("fills_so_far", state["fills_so_far"])
    book._horizon = _day(state["horizon"])
    book._recent_starts = [_day(day) for day in state["horizon_batch"]]
    # Shelves are filled in journal order and sorted once (the book keeps them sorted as it goes).
    _restore_lots(book, state, rules)
    ends = _restore_orders(book, state, rules)
    ends += _restore_commitments(book, state)
    heapq.heapify(ends)
    book._outlet_ends = ends
    _restore_seen_and_prices(book, state)
    return book


def _restore_lots(book: Book, state: dict[str, Any], rules: Rulebook) -> None:
    """The resting lots, on the shelves the rules put them on, each shelf sorted once."""
    product = book.product
    longest = {tuple(row[:-1]): row[-1] for row in state["lot_shelves"]}
    lot_shelves = book._lot_shelves
    for seq, left, lot_id, cooperative_id, county, township, grade, quantity, start, end, contributions in table_rows(
        state, "lots", LOT_COLUMNS
    ):
        lot = Lot(
            lot_id,
            cooperative_id,
            county,
            township,
            product,
            grade,
            Decimal(quantity),
            _day(start),
            _day(end),
            tuple(Contribution(household, Decimal(q), poor) for household, q, poor in contributions),
        )
        lot_state = LotState(lot, _count("seq", seq), rules)
        lot_state.left = Decimal(left)
        for key in rules.lot_shelf_keys(lot):
            shelf = lot_shelves.get(key)
            if shelf is None:
                shelf = lot_shelves[key] = LotShelf()
            shelf.lots.append(lot_state)
    if set(longest) != set(lot_shelves):
        raise ValueError("the snapshot's lot shelves are not those its lots sit on")
    for key, shelf in lot_shelves.items():
        shelf.lots.sort(key=priority_of)
        shelf.longest = timedelta(days=longest[key])


def _restore_orders(book: Book, state: dict[str, Any], rules: Rulebook) -> list[tuple[date, int, OutletState]]:
    """The open orders, on their shelves (archived or not), each shelf sorted once; the ends of those not archived."""
    product = book.product
    ends: list[tuple[date, int, OutletState]] = []
    order_shelves = {False: book._order_shelves.shelves, True: book._archived_order_shelves.shelves}
    open_orders = book._open_orders
    for seq, left, archived, order_id, buyer_id, min_grade, quantity, limit, start, end, regions in table_rows(
        state, "orders", ORDER_COLUMNS
    ):
        order = Order(order_id, buyer_id, product, min_grade, Decimal(quantity), limit, _day(start), _day(end), tuple(regions))
        order_state = OrderState(order, _count("seq", seq), rules)
        order_state.left = Decimal(left)
        order_state.archived = _flag(archived)
        open_orders[order_id] = order_state
        shelves = order_shelves[archived]
        for order_key in rules.order_shelf_keys(order):
            orders = shelves.get(order_key)
            if orders is None:
                orders = shelves[order_key] = []
            orders.append(order_state)
        if not archived:
            ends.append((order.deliver_to, order_state.seq, order_state))
    for shelves in order_shelves.values():
        for orders in shelves.values():
            orders.sort(key=rank_of)
    return ends


def _restore_commitments(book: Book, state: dict[str, Any]) -> list[tuple[date, int, OutletState]]:
    """The open commitments, on their shelves; the ends of those not archived."""
    ends: list[tuple[date, int, OutletState]] = []
    for (
        seq,
        left,
        archived,
        sold,
        commitment_id,
        buyer_id,
        min_grade,
        floor,
        market,
        start,
        end,
        counties,
        cooperatives,
        cap,
        per_mu,
    ) in table_rows(state, "commitments", COMMITMENT_COLUMNS):
        commitment = Commitment(
            commitment_id,
            buyer_id,
            book.product,
            min_grade,
            floor,
            market,
            _day(start),
            _day(end),
            tuple(counties),
            tuple(cooperatives),
            _decimal_or_none(cap),
            _decimal_or_none(per_mu),
        )
        commitment_state = CommitmentState(commitment, _count("seq", seq))
        commitment_state.left = _decimal_or_none(left)
        commitment_state.archived = _flag(archived)
        commitment_state.filled_by_cooperative = {cooperative: Decimal(q) for cooperative, q in sold}
        book._open_commitments[commitment_id] = commitment_state
        book._add_to_shelves(commitment_state)
        if not archived:
            ends.append((commitment.valid_to, commitment_state.seq, commitment_state))
    return ends


def _restore_seen_and_prices(book: Book, state: dict[str, Any]) -> None:
    """The ids seen (the duplicate rule), the planted mu per cooperative and the market price series."""
    seen = state["seen_ids"]
    book._lot_ids = set(seen["lot"])
    book._order_ids = set(seen["order"])
    book._commitment_ids = set(seen["commitment"])
    book._planting_ids = set(seen["planting"])
    book._planted_mu = {cooperative: Decimal(mu) for cooperative, mu in state["planted_mu"]}
    for grade, market, observations in state["market_prices"]:
        series = book._prices[(grade, market)] = PriceSeries()
        for day, price in observations:
            series.days.append(_day(day))
            series.price_on[series.days[-1]] = price


def book_from_snapshot(data: bytes, loads: Callable[[bytes], Any] = json.loads) -> Book:
    """The book whose `snapshot_bytes` are `data`. `loads`: any JSON parser (the bytes are plain JSON;
    a faster one than the standard library's may be given)."""
    return book_from_state(loads(data))


def _decimal_or_none(text: str | None) -> Decimal | None:
    return None if text is None else Decimal(text)


def _count(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"{name} must be a non-negative integer, got {value!r}")
    return value


def _flag(value: Any) -> bool:
    if not isinstance(value, bool):
        raise ValueError(f"archived must be true or false, got {value!r}")
    return value
