"""The canonical record of a fill: the same fill always gives the same bytes, live and in the audit."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

from matcher.facts import DECIMAL_CONTEXT, Fill


def quantity_text(quantity: Decimal) -> str:
    """A quantity as plain decimal text: no exponent, no trailing zeros ("1200", "12.5")."""
    return format(quantity.normalize(DECIMAL_CONTEXT), "f")


def fill_record(fill: Fill) -> dict[str, Any]:
    """The fill as the matching contract's output lists it, in the contract's field order."""
    return {
        "lot_id": fill.lot_id,
        "outlet_kind": fill.outlet_kind,
        "outlet_id": fill.outlet_id,
        "buyer_id": fill.buyer_id,
        "quantity": quantity_text(fill.quantity),
        "unit_price_fen": fill.unit_price_fen,
        "price_basis": fill.price_basis,
        "revenue_fen": fill.revenue_fen,
        "household_income_fen": dict(sorted(fill.household_income_fen)),
    }


def fill_line(fill: Fill) -> str:
    """The fill as one canonical JSON line, byte-identical for equal fills: what auditors compare."""
    return json.dumps(fill_record(fill), ensure_ascii=False, separators=(",", ":"))
