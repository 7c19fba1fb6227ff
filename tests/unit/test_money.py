"""Money rules: revenue rounded half-to-even to the fen, and the largest-remainder split to households."""

from decimal import ROUND_UP, Decimal, localcontext

import pytest

from matcher.money import revenue_fen, split_largest_remainder

pytestmark = pytest.mark.unit

D = Decimal


# ---------------------------------------------------------------- revenue


def test_revenue_is_quantity_times_unit_price():
    assert revenue_fen(D("1200"), 850) == 1_020_000


def test_revenue_of_a_fractional_quantity_is_exact_when_it_comes_to_whole_fen():
    assert revenue_fen(D("12.5"), 200) == 2500


@pytest.mark.parametrize(
    ("quantity", "unit_price_fen", "expected"),
    [
        ("0.001", 500, 0),  # 0.5 fen rounds to the even 0
        ("0.003", 500, 2),  # 1.5 fen rounds to the even 2
        ("0.005", 500, 2),  # 2.5 fen rounds to the even 2
        ("0.007", 500, 4),  # 3.5 fen rounds to the even 4
        ("0.001", 499, 0),  # 0.499 fen rounds down
        ("0.001", 501, 1),  # 0.501 fen rounds up
    ],
)
def test_revenue_rounds_half_to_even_to_whole_fen(quantity, unit_price_fen, expected):
    assert revenue_fen(D(quantity), unit_price_fen) == expected


def test_revenue_ignores_the_global_decimal_context():
    with localcontext() as context:
        context.prec = 2
        context.rounding = ROUND_UP
        assert revenue_fen(D("0.005"), 500) == 2
        assert revenue_fen(D("123.457"), 1001) == 123_580


def test_revenue_of_nothing_is_zero():
    assert revenue_fen(D("0"), 1234) == 0


@pytest.mark.parametrize(("quantity", "price"), [(D("-1"), 100), (1.5, 100), (D("NaN"), 100), (D("1"), -1), (D("1"), True)])
def test_revenue_refuses_negative_or_inexact_inputs(quantity, price):
    with pytest.raises(ValueError):
        revenue_fen(quantity, price)


# ---------------------------------------------------------------- split


def test_split_gives_exact_shares_when_they_come_to_whole_fen():
    assert split_largest_remainder(1000, [("h1", D("3")), ("h2", D("1"))]) == (("h1", 750), ("h2", 250))


def test_split_gives_left_over_fen_to_the_largest_remainders():
    # exact shares 33.33.., 66.66..: floors 33 and 66, the one fen left goes to h2 (.66 > .33)
    assert split_largest_remainder(100, [("h1", D("1")), ("h2", D("2"))]) == (("h1", 33), ("h2", 67))


def test_split_breaks_equal_remainders_in_favour_of_the_smaller_household_id():
    # three equal shares of 100: 33.33.. each, one fen left, to the smallest id
    assert split_largest_remainder(100, [("zhang", D("1")), ("li", D("1")), ("wang", D("1"))]) == (
        ("li", 34),
        ("wang", 33),
        ("zhang", 33),
    )


def test_split_compares_household_ids_as_strings():
    # "h10" < "h9" as strings: the tie goes to h10
    assert split_largest_remainder(1, [("h9", D("1")), ("h10", D("1"))]) == (("h10", 1), ("h9", 0))


def test_split_gives_two_left_over_fen_to_the_two_largest_remainders():
    # shares of 10 by 1:1:1:1:1:1:1 -> 1.428.. each; 3 fen left over -> h1, h2, h3 (ties by id)
    weights = [(f"h{i}", D("1")) for i in range(1, 8)]
    assert split_largest_remainder(10, weights) == (
        ("h1", 2),
        ("h2", 2),
        ("h3", 2),
        ("h4", 1),
        ("h5", 1),
        ("h6", 1),
        ("h7", 1),
    )


def test_split_sums_a_household_listed_twice_before_sharing():
    assert split_largest_remainder(100, [("h1", D("1")), ("h2", D("2")), ("h1", D("1"))]) == (("h1", 50), ("h2", 50))


def test_split_weighs_decimal_quantities_of_different_precision_exactly():
    # 0.001 kg against 999.999 kg: the small contributor's exact share is 0.1 fen -> floor 0, remainder .1
    assert split_largest_remainder(100_000, [("big", D("999.999")), ("small", D("0.001"))]) == (
        ("big", 100_000),
        ("small", 0),
    )
    assert split_largest_remainder(3, [("a", D("1.5")), ("b", D("1.50")), ("c", D("3"))]) == (
        ("a", 1),
        ("b", 1),
        ("c", 1),
    )


def test_split_result_is_sorted_by_household_id():
    result = split_largest_remainder(7, [("zhang", D("1")), ("li", D("1")), ("wang", D("1"))])
    assert [household for household, _ in result] == ["li", "wang", "zhang"]


@pytest.mark.parametrize("total", [0, 1, 2, 99, 100, 101, 12_345_677, 10**15])
def test_split_shares_always_add_up_to_the_total(total):
    weights = [("a", D("0.333")), ("b", D("12.5")), ("c", D("7")), ("d", D("0.001")), ("e", D("7"))]
    result = split_largest_remainder(total, weights)
    assert sum(fen for _, fen in result) == total
    assert all(fen >= 0 for _, fen in result)


def test_split_of_zero_gives_everyone_nothing():
    assert split_largest_remainder(0, [("h2", D("1")), ("h1", D("3"))]) == (("h1", 0), ("h2", 0))


def test_split_of_zero_among_no_one_is_empty():
    assert split_largest_remainder(0, []) == ()


def test_split_refuses_a_negative_total():
    with pytest.raises(ValueError, match="negative"):
        split_largest_remainder(-1, [("h1", D("1"))])


def test_split_refuses_money_with_no_one_to_receive_it():
    with pytest.raises(ValueError):
        split_largest_remainder(5, [])
    with pytest.raises(ValueError):
        split_largest_remainder(5, [("h1", D("0"))])


@pytest.mark.parametrize("weight", [D("-1"), D("Infinity"), 1.0])
def test_split_refuses_negative_infinite_or_float_weights(weight):
    with pytest.raises(ValueError):
        split_largest_remainder(5, [("h1", weight)])


def test_split_gives_a_zero_weight_household_nothing():
    assert split_largest_remainder(5, [("h1", D("0")), ("h2", D("2"))]) == (("h1", 0), ("h2", 5))
