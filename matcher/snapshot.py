"""Snapshots of a product's book: its whole state as canonical JSON bytes, and a book made from them.

A snapshot is derived data. A book restored from the snapshot taken after journal input N
decides every later input exactly as the book that replayed inputs 1..N does, so a
restarted matching service may start from the latest snapshot and replay only the
journal's tail. The audit still re-executes every journal from its first entry and
compares each stored snapshot with the state it replays to (farmlink/audit/snapshots.py).

The bytes are canonical JSON (keys sorted, no whitespace, UTF-8 kept, decimals as their
exact text, dates ISO) of plain data: everything a book holds that can change what it
decides or how it searches, and nothing else. Sets and maps are written sorted, so the
same state always gives the same bytes, and `state_digest` (sha256 of them) is equal for
equal states whatever order the book met things in. Resting lots, open orders and open
commitments are tables (`{"columns": [...], "rows": [[...], ...]}`, rows in journal
order) whose columns name the facts' fields; facts are read back through their own
constructors, so a restored fact is validated as a journaled one is.

What is left out can be made again from what is kept: a lot's household weights (made at
its next fill), the heap of outlet ends (rebuilt from the open outlets), the count of
closed outlets in that heap (only says when to compact it).
"""

from __future__ import annotations

import gc
import hashlib
import heapq
import json
from collections.abc import Callable
from datetime import date, timedelta
from decimal import Decimal
from functools import lru_cache
from typing import Any

from matcher.book import Book
from matcher.facts import Commitment, Contribution, Lot, Order
from matcher.rules import rulebook
from matcher.shelves import LotShelf, PriceSeries, priority_of, rank_of
from matcher.state import CommitmentState, LotState, OrderState, OutletState

FORMAT = 1
"""The layout of the state below; a reader refuses any other."""

BOOK_ATTRIBUTES = frozenset(
    {
        "product",
        "_rules",
        "_journal_seq",
        "_fill_count",
        "_lot_shelves",
        "_open_orders",
        "_open_commitments",
        "_order_shelves",
        "_commitment_shelves",
        "_archived_order_shelves",
        "_archived_commitment_shelves",
        "_horizon",
        "_recent_starts",
        "_outlet_ends",
        "_closed_ends",
        "_lot_ids",
        "_order_ids",
        "_commitment_ids",
        "_planting_ids",
        "_planted_mu",
        "_prices",
    }
)
"""Every attribute of a Book this module knows how to keep or remake (a test fails when Book gains another)."""


# ---------------------------------------------------------------- tables

LOT_COLUMNS = (
    "seq",
    "left",
    "lot_id",
    "cooperative_id",
    "county",
    "township",
    "grade",
    "quantity",
    "available_from",
    "expires_on",
    "contributions",
)
"""A resting lot: its journal number, what is left, then the Lot's fields but product (contributions: [household_id, quantity, registered_poor])."""
ORDER_COLUMNS = (
    "seq",
    "left",
    "archived",
    "order_id",
    "buyer_id",
    "min_grade",
    "quantity",
    "limit_price_fen",
    "deliver_from",
    "deliver_to",
    "regions",
)
"""An open order: its journal number, its unfilled rest, whether it is archived, then the Order's fields but product."""
COMMITMENT_COLUMNS = (
    "seq",
    "left",
    "archived",
    "filled_by_cooperative",
    "commitment_id",
    "buyer_id",
    "min_grade",
    "floor_price_fen",
    "reference_market",
    "valid_from",
    "valid_to",
    "eligible_counties",
    "eligible_cooperatives",
    "cap_quantity",
    "max_quantity_per_mu",
)
"""An open commitment: its journal number, what is left under its cap (null: no cap), whether it is archived, what each
cooperative sold under it ([cooperative_id, quantity], sorted), then the Commitment's fields but product."""


def _text(value: Decimal | None) -> str | None:
    return None if value is None else str(value)  # exact: Decimal(str(d)) has d's digits and exponent


def _table(columns: tuple[str, ...], rows: list[list[Any]]) -> dict[str, Any]:
    return {"columns": list(columns), "rows": rows}


def _rows(state: dict[str, Any], name: str, columns: tuple[str, ...]) -> list[list[Any]]:
    table = state[name]
    if tuple(table["columns"]) != columns:
        raise ValueError(f"{name}: columns {table['columns']!r}, this matcher reads {list(columns)!r}")
    rows: list[list[Any]] = table["rows"]  # parsed JSON: `columns` says what each value is
    return rows


def _lot_row(s: LotState) -> list[Any]:
    lot = s.lot
    return [
        s.seq,
        str(s.left),
        lot.lot_id,
        lot.cooperative_id,
        lot.county,
        lot.township,
        lot.grade,
        str(lot.quantity),
        lot.available_from.isoformat(),
        lot.expires_on.isoformat(),
        [[c.household_id, str(c.quantity), c.registered_poor] for c in lot.contributions],
    ]


def _order_row(s: OrderState) -> list[Any]:
    order = s.order
    return [
        s.seq,
        str(s.left),
        s.archived,
        order.order_id,
        order.buyer_id,
        order.min_grade,
        str(order.quantity),
        order.limit_price_fen,
        order.deliver_from.isoformat(),
        order.deliver_to.isoformat(),
        list(order.regions),
    ]


def _commitment_row(s: CommitmentState) -> list[Any]:
    c = s.commitment
    return [
        s.seq,
        _text(s.left),
        s.archived,
        sorted([cooperative, str(q)] for cooperative, q in s.filled_by_cooperative.items()),
        c.commitment_id,
        c.buyer_id,
        c.min_grade,
        c.floor_price_fen,
        c.reference_market,
        c.valid_from.isoformat(),
        c.valid_to.isoformat(),
        list(c.eligible_counties),
        list(c.eligible_cooperatives),
        _text(c.cap_quantity),
        _text(c.max_quantity_per_mu),
    ]


# ---------------------------------------------------------------- the state as plain data


def _by_seq(state: LotState | OrderState | CommitmentState) -> int:
    return state.seq


def book_state(book: Book) -> dict[str, Any]:
    """The book's state as plain JSON data, every collection in a canonical order."""
    lots = book.lot_states()
    state: dict[str, Any] = {} if book.rules_version == 1 else {"rules_version": book.rules_version}
    return {
        **state,  # absent: rules version 1 (the bytes of a version-1 book are those of snapshots before versions)
        "format": FORMAT,
        "product": book.product,
        "journal_seq": book._journal_seq,
        "fills_so_far": book._fill_count,
        "horizon": book._horizon.isoformat(),
        "horizon_batch": [day.isoformat() for day in book._recent_starts],  # in journal order: the batch under way
        "lots": _table(LOT_COLUMNS, [_lot_row(s) for s in lots]),
        "lot_shelves": sorted([*key, shelf.longest.days] for key, shelf in book._lot_shelves.items()),
        "orders": _table(ORDER_COLUMNS, [_order_row(s) for s in sorted(book._open_orders.values(), key=_by_seq)]),
        "commitments": _table(
            COMMITMENT_COLUMNS, [_commitment_row(s) for s in sorted(book._open_commitments.values(), key=_by_seq)]
        ),
        "seen_ids": {
            "lot": sorted(book._lot_ids),
            "order": sorted(book._order_ids),
            "commitment": sorted(book._commitment_ids),
            "planting": sorted(book._planting_ids),
        },
        "planted_mu": sorted([cooperative, str(mu)] for cooperative, mu in book._planted_mu.items()),
        "market_prices": sorted(
            [grade, market, [[day.isoformat(), series.price_on[day]] for day in series.days]]
            for (grade, market), series in book._prices.items()
        ),
    }


def canonical(state: dict[str, Any]) -> bytes:
    """Canonical JSON: keys sorted, no whitespace, UTF-8 kept."""
    return json.dumps(state, ensure_ascii=False, sort_keys=True, separators=(",", ":"), allow_nan=False).encode("utf-8")


def snapshot_bytes(book: Book) -> bytes:
    """The book's state as canonical JSON bytes: the same state gives the same bytes."""
    enabled = gc.isenabled()
    gc.disable()  # the plain data made here is all alive until it is written out
    try:
        return canonical(book_state(book))
    finally:
        if enabled:
            gc.enable()


def digest_of(data: bytes) -> str:
    """sha256 (hex) of snapshot bytes."""
    return hashlib.sha256(data).hexdigest()


def state_digest(book: Book) -> str:
    """sha256 (hex) of the book's snapshot bytes: equal for equal states."""
    return digest_of(snapshot_bytes(book))


# ---------------------------------------------------------------- a book from a snapshot


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
    longest = {tuple(row[:-1]): row[-1] for row in state["lot_shelves"]}
    lot_shelves = book._lot_shelves
    for seq, left, lot_id, cooperative_id, county, township, grade, quantity, start, end, contributions in _rows(
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

    ends: list[tuple[date, int, OutletState]] = []
    order_shelves = {False: book._order_shelves.shelves, True: book._archived_order_shelves.shelves}
    open_orders = book._open_orders
    for seq, left, archived, order_id, buyer_id, min_grade, quantity, limit, start, end, regions in _rows(
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
    ) in _rows(state, "commitments", COMMITMENT_COLUMNS):
        commitment = Commitment(
            commitment_id,
            buyer_id,
            product,
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
    heapq.heapify(ends)
    book._outlet_ends = ends

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
    return book


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
