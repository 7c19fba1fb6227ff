"""Reading amounts from recorded payloads for the invariant checks, strictly (decimals travel as strings, money is
whole fen), and what the recorded fills of one (lot, outlet) pair are worth."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any

from farmlink.audit.replay import UNREADABLE
from matcher.facts import DECIMAL_CONTEXT

INVARIANT = "invariant"

ZERO = Decimal(0)
_ONE_FEN = Decimal(1)
MALFORMED = (*UNREADABLE, AttributeError)
"""What checking a forged or damaged payload may raise: reported as a finding, never a crash."""


def quantity_of(value: Any) -> Decimal:
    """An exact finite decimal from a JSON payload (decimals travel as strings)."""
    if isinstance(value, bool) or isinstance(value, float):
        raise TypeError(f"not an exact quantity: {value!r}")
    quantity = DECIMAL_CONTEXT.create_decimal(str(value))
    if not quantity.is_finite():
        raise ValueError(f"not a finite quantity: {value!r}")
    return quantity


def optional_quantity_of(value: Any) -> Decimal | None:
    return None if value is None else quantity_of(value)


def fen_of(value: Any) -> int:
    """Money in whole fen: an int, never a bool, a float or a string."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"not a whole number of fen: {value!r}")
    return value


def add_to(total: dict[Any, Decimal], key: Any, quantity: Decimal) -> Decimal:
    total[key] = DECIMAL_CONTEXT.add(total.get(key, ZERO), quantity)
    return total[key]


def revenue_of(quantity: Decimal, unit_price_fen: int) -> int:
    """Quantity x unit price, rounded half-to-even to whole fen (matching-rules.md, Money)."""
    exact = DECIMAL_CONTEXT.multiply(quantity, Decimal(unit_price_fen))
    return int(exact.quantize(_ONE_FEN, rounding=ROUND_HALF_EVEN, context=DECIMAL_CONTEXT))


def shares_of(value: Any) -> dict[str, int]:
    if not isinstance(value, dict):
        raise TypeError(f"household shares must be a mapping, got {value!r}")
    return {household: fen_of(fen) for household, fen in value.items()}


def weights_of(contributions: Iterable[dict[str, Any]]) -> tuple[tuple[str, Decimal], ...]:
    return tuple((c["household_id"], quantity_of(c["quantity"])) for c in contributions)


@dataclass(slots=True)
class PairTotals:
    """What the recorded fills of one (lot, outlet) pair are worth: settlement pays and delivers against it."""

    quantity: Decimal = ZERO
    revenue_fen: int = 0


FillTotals = dict[tuple[str, str], PairTotals]
"""Quantity and revenue recorded per (lot, outlet): what payments and deliveries are checked against."""


def add_pairs(into: FillTotals, pairs: FillTotals) -> None:
    """One share's fill totals added to another's (a forged fill may name another product's lot: add, never overwrite)."""
    for pair, totals in pairs.items():
        mine = into.get(pair)
        if mine is None:
            into[pair] = totals
        else:
            mine.quantity = DECIMAL_CONTEXT.add(mine.quantity, totals.quantity)
            mine.revenue_fen += totals.revenue_fen


def differing(shares: dict[str, int], split: dict[str, int]) -> str:
    """The households whose share differs: recorded vs what the split gives."""
    households = sorted(h for h in shares.keys() | split.keys() if shares.get(h) != split.get(h))
    return ", ".join(f"{h}: recorded {shares.get(h)}, split gives {split.get(h)}" for h in households)
