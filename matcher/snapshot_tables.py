"""The tables a book's snapshot holds (matcher/snapshot.py): resting lots, open orders and open commitments, each
`{"columns": [...], "rows": [[...], ...]}` with the facts' fields as columns, and how one state becomes a row."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from matcher.state import CommitmentState, LotState, OrderState

FORMAT = 1
"""The layout of the state below; a reader refuses any other."""


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


def decimal_text(value: Decimal | None) -> str | None:
    return None if value is None else str(value)  # exact: Decimal(str(d)) has d's digits and exponent


def as_table(columns: tuple[str, ...], rows: list[list[Any]]) -> dict[str, Any]:
    return {"columns": list(columns), "rows": rows}


def table_rows(state: dict[str, Any], name: str, columns: tuple[str, ...]) -> list[list[Any]]:
    table = state[name]
    if tuple(table["columns"]) != columns:
        raise ValueError(f"{name}: columns {table['columns']!r}, this matcher reads {list(columns)!r}")
    rows: list[list[Any]] = table["rows"]  # parsed JSON: `columns` says what each value is
    return rows


def lot_row(s: LotState) -> list[Any]:
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


def order_row(s: OrderState) -> list[Any]:
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


def commitment_row(s: CommitmentState) -> list[Any]:
    c = s.commitment
    return [
        s.seq,
        decimal_text(s.left),
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
        decimal_text(c.cap_quantity),
        decimal_text(c.max_quantity_per_mu),
    ]
