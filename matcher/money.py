"""Money rules of the matching contract: revenue to the fen and the split to households.

Pure functions over integer fen and exact decimals; the settlement service reuses the
split for payments so that what a household is owed and what it is paid agree to the fen.
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import ROUND_HALF_EVEN, Decimal
from math import lcm
from typing import NamedTuple

from matcher.facts import DECIMAL_CONTEXT

_ONE_FEN = Decimal(1)
_ZERO = Decimal(0)


def revenue_fen(quantity: Decimal, unit_price_fen: int) -> int:
    """What a fill is worth: quantity x unit price, rounded half-to-even to whole fen."""
    if not isinstance(quantity, Decimal) or not quantity.is_finite() or quantity < 0:
        raise ValueError(f"quantity must be a finite non-negative Decimal, got {quantity!r}")
    if isinstance(unit_price_fen, bool) or not isinstance(unit_price_fen, int) or unit_price_fen < 0:
        raise ValueError(f"unit_price_fen must be a non-negative int, got {unit_price_fen!r}")
    return checked_revenue_fen(quantity, unit_price_fen)


def checked_revenue_fen(quantity: Decimal, unit_price_fen: int) -> int:
    """`revenue_fen` of a quantity and price already known to be valid (the matcher's own fills)."""
    # The context converts the int price exactly, as Decimal(unit_price_fen) would.
    exact = DECIMAL_CONTEXT.multiply(quantity, unit_price_fen)
    return int(exact.quantize(_ONE_FEN, ROUND_HALF_EVEN, DECIMAL_CONTEXT))


class HouseholdWeights(NamedTuple):
    """Households and their weights, ready to share out amount after amount: the weights as exact
    integers in proportion to them, so every share is an exact fraction over `denominator`."""

    household_ids: tuple[str, ...]  # sorted, each once
    scaled: tuple[int, ...]  # in the order of household_ids
    denominator: int


def household_weights(weights: Sequence[tuple[str, Decimal]]) -> HouseholdWeights:
    """Check and merge (household id, weight) pairs: a household listed twice counts with the sum."""
    weights = tuple(weights)
    for household_id, weight in weights:
        if not isinstance(household_id, str) or not household_id:
            raise ValueError(f"household id must be a non-empty string, got {household_id!r}")
        if not isinstance(weight, Decimal) or not weight.is_finite() or weight < 0:
            raise ValueError(f"weight of {household_id} must be a finite non-negative Decimal, got {weight!r}")
    return checked_household_weights(weights)


def checked_household_weights(weights: Sequence[tuple[str, Decimal]]) -> HouseholdWeights:
    """`household_weights` of pairs already known to be valid (a lot's contributions)."""
    if len(weights) == 1 and weights[0][1] > 0:
        return HouseholdWeights((weights[0][0],), (1,), 1)  # one household takes it all
    merged: dict[str, Decimal] = {}
    for household_id, weight in weights:
        merged[household_id] = DECIMAL_CONTEXT.add(merged.get(household_id, _ZERO), weight)
    household_ids = tuple(sorted(merged))
    # Shares and the order of remainders depend only on the ratios of the weights, so any exact
    # integers proportional to them will do: here each weight times the common denominator.
    ratios = [merged[household_id].as_integer_ratio() for household_id in household_ids]
    common = lcm(*[denominator for _, denominator in ratios])
    scaled = tuple(numerator * (common // denominator) for numerator, denominator in ratios)
    return HouseholdWeights(household_ids, scaled, sum(scaled))


def split_largest_remainder(total_fen: int, weights: Sequence[tuple[str, Decimal]]) -> tuple[tuple[str, int], ...]:
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
    return share_out(total_fen, household_weights(weights))


def share_out(total_fen: int, weights: HouseholdWeights) -> tuple[tuple[str, int], ...]:
    """`split_largest_remainder` of a non-negative int `total_fen` over checked, merged weights."""
    household_ids, scaled, denominator = weights.household_ids, weights.scaled, weights.denominator
    if not household_ids:
        if total_fen == 0:
            return ()
        raise ValueError(f"no household to split {total_fen} fen among")
    if denominator == 0:
        if total_fen == 0:
            return tuple((household_id, 0) for household_id in household_ids)
        raise ValueError(f"households have no weight to split {total_fen} fen by")
    if len(household_ids) == 1:
        return ((household_ids[0], total_fen),)

    exact = [total_fen * weight for weight in scaled]
    shares = [part // denominator for part in exact]
    left_over = total_fen - sum(shares)
    if left_over:
        remainders = [part % denominator for part in exact]
        # Households are in id order and the sort is stable: equal remainders keep the smaller id first.
        for index in sorted(range(len(shares)), key=remainders.__getitem__, reverse=True)[:left_over]:
            shares[index] += 1
    return tuple(zip(household_ids, shares))
