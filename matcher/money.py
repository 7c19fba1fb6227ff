"""Money rules of the matching contract: revenue to the fen and the split to households.

Pure functions over integer fen and exact decimals; the settlement service reuses the
split for payments so that what a household is owed and what it is paid agree to the fen.
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import ROUND_HALF_EVEN, Decimal

from matcher.facts import DECIMAL_CONTEXT

_ONE_FEN = Decimal(1)


def revenue_fen(quantity: Decimal, unit_price_fen: int) -> int:
    """What a fill is worth: quantity x unit price, rounded half-to-even to whole fen."""
    if not isinstance(quantity, Decimal) or not quantity.is_finite() or quantity < 0:
        raise ValueError(f"quantity must be a finite non-negative Decimal, got {quantity!r}")
    if isinstance(unit_price_fen, bool) or not isinstance(unit_price_fen, int) or unit_price_fen < 0:
        raise ValueError(f"unit_price_fen must be a non-negative int, got {unit_price_fen!r}")
    exact = DECIMAL_CONTEXT.multiply(quantity, Decimal(unit_price_fen))
    return int(exact.quantize(_ONE_FEN, rounding=ROUND_HALF_EVEN, context=DECIMAL_CONTEXT))


def split_largest_remainder(
    total_fen: int, weights: Sequence[tuple[str, Decimal]]
) -> tuple[tuple[str, int], ...]:
    """Share `total_fen` out to households in proportion to their weights (contributed quantities).

    Each household gets the floor of its exact share; the fen left over go one each to
    the largest fractional remainders, ties to the smaller household id. A household
    listed twice counts with the sum of its weights. The shares add up to `total_fen`
    exactly. Result: (household id, fen) pairs sorted by household id.
    """
    if isinstance(total_fen, bool) or not isinstance(total_fen, int):
        raise ValueError(f"total_fen must be an int, got {total_fen!r}")
    if total_fen < 0:
        raise ValueError(f"cannot split a negative amount: {total_fen}")
    merged: dict[str, Decimal] = {}
    for household_id, weight in weights:
        if not isinstance(household_id, str) or not household_id:
            raise ValueError(f"household id must be a non-empty string, got {household_id!r}")
        if not isinstance(weight, Decimal) or not weight.is_finite() or weight < 0:
            raise ValueError(f"weight of {household_id} must be a finite non-negative Decimal, got {weight!r}")
        merged[household_id] = DECIMAL_CONTEXT.add(merged.get(household_id, Decimal(0)), weight)
    if not merged:
        if total_fen == 0:
            return ()
        raise ValueError(f"no household to split {total_fen} fen among")

    # Scaling every weight to an integer on a common exponent makes each share an exact
    # fraction over one denominator: floors and remainders come from integer division.
    common_exponent = min(int(weight.as_tuple().exponent) for weight in merged.values())
    scaled = {household_id: _as_integer(weight, common_exponent) for household_id, weight in merged.items()}
    denominator = sum(scaled.values())
    if denominator == 0:
        if total_fen == 0:
            return tuple((household_id, 0) for household_id in sorted(scaled))
        raise ValueError(f"households have no weight to split {total_fen} fen by")

    shares: dict[str, int] = {}
    remainders: dict[str, int] = {}
    for household_id, weight in scaled.items():
        shares[household_id], remainders[household_id] = divmod(total_fen * weight, denominator)
    left_over = total_fen - sum(shares.values())
    by_remainder = sorted(scaled, key=lambda household_id: (-remainders[household_id], household_id))
    for household_id in by_remainder[:left_over]:
        shares[household_id] += 1
    return tuple((household_id, shares[household_id]) for household_id in sorted(shares))


def _as_integer(value: Decimal, exponent: int) -> int:
    """`value` as an integer count of 10**exponent, exactly (exponent is at most value's own)."""
    _sign, digits, own_exponent = value.as_tuple()
    coefficient = 0
    for digit in digits:
        coefficient = coefficient * 10 + digit
    return coefficient * 10 ** (int(own_exponent) - exponent)
