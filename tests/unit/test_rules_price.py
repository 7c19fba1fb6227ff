"""What a fill pays (matching-rules.md §P): an order its limit, a commitment max(floor, market as of the lot's date)."""

import pytest

from matcher import Book
from tests.unit.matcher_facts import commitment, day, fills, lot, only_fill, order, price, run

pytestmark = pytest.mark.unit


# ---------------------------------------------------------------- price


def test_order_fill_is_priced_at_the_order_limit():
    the_fill = only_fill(lot(), order(limit=1234))
    assert (the_fill.unit_price_fen, the_fill.price_basis) == (1234, "order_limit")
    assert (the_fill.floor_price_fen, the_fill.market_price_fen, the_fill.price_as_of) == (None, None, None)


def test_order_pays_its_limit_even_when_the_market_is_lower():
    the_fill = only_fill(price(500), lot(), order(limit=1234))
    assert the_fill.unit_price_fen == 1234


def test_commitment_pays_market_price_when_market_is_above_floor():
    the_fill = only_fill(price(950), lot(), commitment(floor=800))
    assert (the_fill.unit_price_fen, the_fill.price_basis) == (950, "market")
    assert (the_fill.floor_price_fen, the_fill.market_price_fen) == (800, 950)


def test_commitment_pays_floor_when_market_is_below_floor():
    the_fill = only_fill(price(700), lot(), commitment(floor=800))
    assert (the_fill.unit_price_fen, the_fill.price_basis) == (800, "floor")
    assert (the_fill.floor_price_fen, the_fill.market_price_fen) == (800, 700)


def test_commitment_pays_floor_when_market_equals_floor():
    the_fill = only_fill(price(800), lot(), commitment(floor=800))
    assert (the_fill.unit_price_fen, the_fill.price_basis) == (800, "floor")


def test_commitment_pays_floor_when_no_market_price_is_known():
    the_fill = only_fill(lot(), commitment(floor=800))
    assert (the_fill.unit_price_fen, the_fill.price_basis, the_fill.market_price_fen) == (800, "floor", None)


def test_price_as_of_is_the_lots_available_from_when_it_is_later():
    the_fill = only_fill(
        price(900, day(3)),
        price(1100, day(5)),
        lot(available_from=day(5)),
        commitment(valid_from=day(3)),
    )
    assert (the_fill.price_as_of, the_fill.unit_price_fen) == (day(5), 1100)


def test_price_as_of_is_the_commitments_valid_from_when_it_is_later():
    the_fill = only_fill(
        price(900, day(3)),
        price(1100, day(5)),
        lot(available_from=day(3)),
        commitment(valid_from=day(5)),
    )
    assert (the_fill.price_as_of, the_fill.unit_price_fen) == (day(5), 1100)


def test_market_price_is_the_latest_observation_not_after_the_as_of_date():
    the_fill = only_fill(
        price(900, day(2)),
        price(1000, day(4)),
        price(1500, day(7)),  # after the as-of date
        price(950, day(3)),  # journaled last but observed earlier than day 4
        lot(available_from=day(5)),
        commitment(),
    )
    assert (the_fill.unit_price_fen, the_fill.price_as_of) == (1000, day(5))


def test_an_observation_on_the_as_of_date_itself_counts():
    the_fill = only_fill(price(900, day(4)), price(1000, day(5)), lot(available_from=day(5)), commitment())
    assert the_fill.unit_price_fen == 1000


def test_observations_after_the_as_of_date_are_ignored():
    the_fill = only_fill(price(1500, day(6)), lot(available_from=day(5)), commitment(floor=800))
    assert (the_fill.unit_price_fen, the_fill.price_basis, the_fill.market_price_fen) == (800, "floor", None)


def test_observations_on_the_same_date_resolve_to_the_one_later_in_the_journal():
    the_fill = only_fill(price(1000, day(4)), price(900, day(4)), lot(available_from=day(5)), commitment())
    assert the_fill.unit_price_fen == 900


def test_prices_of_other_markets_and_grades_are_ignored():
    the_fill = only_fill(
        price(1500, market="chongqing"),
        price(1600, grade="B"),
        price(850),
        lot(grade="A"),
        commitment(market="tongren"),
    )
    assert the_fill.unit_price_fen == 850


def test_market_price_is_looked_up_for_the_lots_grade_not_the_commitments_minimum():
    the_fill = only_fill(price(1500, grade="C"), price(900, grade="B"), lot(grade="B"), commitment(min_grade="C"))
    assert the_fill.unit_price_fen == 900


def test_market_price_changes_no_past_fill_but_counts_for_later_ones():
    outcomes = run(lot("L1", "10"), commitment(cap=None), price(2000), lot("L2", "10"))
    first, second = fills(outcomes)
    assert (first.lot_id, first.unit_price_fen, first.price_basis) == ("L1", 800, "floor")
    assert (second.lot_id, second.unit_price_fen, second.price_basis) == ("L2", 2000, "market")


def test_market_price_produces_no_outcome():
    book = Book("chili")
    assert book.process(price(900)) == []
