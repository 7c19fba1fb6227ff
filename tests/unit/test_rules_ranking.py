"""Which outlet an arriving lot goes to first, and which lot an arriving outlet takes first (matching-rules.md §M1, §M2)."""

import pytest

from matcher import Contribution, OfferOpened, lot_priority, outlet_rank
from tests.unit.matcher_facts import D, commitment, day, fills, lot, matches, order, price, run

pytestmark = pytest.mark.unit


# ---------------------------------------------------------------- an arriving lot: which outlet first


def test_arriving_lot_goes_to_the_highest_price_first():
    assert matches(order("O1", "10", 900), order("O2", "10", 1100), order("O3", "10", 1000), lot(quantity="25")) == [
        ("L1", "O2", D("10")),
        ("L1", "O3", D("10")),
        ("L1", "O1", D("5")),
    ]


def test_arriving_lot_prefers_an_order_over_a_commitment_at_equal_price():
    assert matches(commitment("C1", 1000), order("O1", "10", 1000), lot(quantity="15")) == [
        ("L1", "O1", D("10")),
        ("L1", "C1", D("5")),
    ]


def test_arriving_lot_prefers_a_commitment_paying_more_than_an_order():
    assert matches(price(1200), order("O1", "10", 1100), commitment("C1", 800), lot(quantity="15")) == [
        ("L1", "C1", D("15")),
    ]


def test_arriving_lot_ranks_a_commitment_by_the_price_it_pays_for_this_lot():
    # the commitment's market price for grade B is below the order; for grade A above it
    facts = [price(1200, grade="A"), price(900, grade="B"), order("O1", "100", 1000), commitment("C1", 800)]
    assert matches(*facts, lot("LA", "5", grade="A"))[0][1] == "C1"
    assert matches(*facts, lot("LB", "5", grade="B"))[0][1] == "O1"


def test_arriving_lot_prefers_the_order_earlier_in_the_journal_at_equal_price():
    assert matches(order("O2", "10", 1000), order("O1", "10", 1000), lot(quantity="15")) == [
        ("L1", "O2", D("10")),
        ("L1", "O1", D("5")),
    ]


def test_arriving_lot_prefers_the_commitment_earlier_in_the_journal_at_equal_price():
    assert matches(commitment("C2", 800, cap="10"), commitment("C1", 800, cap="10"), lot(quantity="15")) == [
        ("L1", "C2", D("10")),
        ("L1", "C1", D("5")),
    ]


def test_outlets_equal_in_price_kind_and_journal_position_fall_back_to_the_smaller_id():
    # Within one journal every input has its own position, so this last tie-break is
    # only reachable through the ranking itself.
    assert outlet_rank(1000, "order", 3, "O-a") < outlet_rank(1000, "order", 3, "O-b")
    assert outlet_rank(1000, "commitment", 3, "C-a") < outlet_rank(1000, "commitment", 3, "C-b")


def test_outlet_rank_orders_price_then_kind_then_journal_position():
    assert outlet_rank(1001, "commitment", 9, "z") < outlet_rank(1000, "order", 1, "a")
    assert outlet_rank(1000, "order", 9, "z") < outlet_rank(1000, "commitment", 1, "a")
    assert outlet_rank(1000, "order", 1, "z") < outlet_rank(1000, "order", 2, "a")


def test_arriving_lot_fills_several_outlets_until_it_is_used_up():
    outcomes = run(order("O1", "10", 1000), order("O2", "10", 1000), lot(quantity="20"), order("O3", "10", 1000))
    assert [(f.lot_id, f.outlet_id) for f in fills(outcomes)] == [("L1", "O1"), ("L1", "O2")]
    assert not [o for o in outcomes if isinstance(o, OfferOpened)]


# ---------------------------------------------------------------- an arriving outlet: which lot first


def test_arriving_outlet_takes_the_lot_expiring_first():
    assert matches(
        lot("L1", "10", expires_on=day(12)),
        lot("L2", "10", expires_on=day(10)),
        lot("L3", "10", expires_on=day(11)),
        order(quantity="25"),
    ) == [("L2", "O1", D("10")), ("L3", "O1", D("10")), ("L1", "O1", D("5"))]


def test_arriving_outlet_takes_lots_with_a_registered_poor_household_first_at_equal_expiry():
    mixed = (Contribution("h1", D("6"), False), Contribution("h2", D("4"), True))
    assert matches(
        lot("L1", "10", poor=False),
        lot("L2", "10", contributions=mixed),
        order(quantity="15"),
    ) == [("L2", "O1", D("10")), ("L1", "O1", D("5"))]


def test_earlier_expiry_outranks_a_registered_poor_household():
    assert matches(
        lot("L1", "10", expires_on=day(11), poor=True),
        lot("L2", "10", expires_on=day(10), poor=False),
        order(quantity="10"),
    ) == [("L2", "O1", D("10"))]


def test_arriving_outlet_takes_the_lot_earlier_in_the_journal_at_equal_expiry_and_poverty():
    assert matches(lot("L2", "10"), lot("L1", "10"), order(quantity="15")) == [
        ("L2", "O1", D("10")),
        ("L1", "O1", D("5")),
    ]


def test_lots_equal_in_expiry_poverty_and_journal_position_fall_back_to_the_smaller_id():
    # As for outlets, only reachable through the ranking itself.
    assert lot_priority(lot("L-a"), 4) < lot_priority(lot("L-b"), 4)


def test_lot_priority_orders_expiry_then_poverty_then_journal_position():
    assert lot_priority(lot("z", expires_on=day(5)), 9) < lot_priority(lot("a", expires_on=day(6), poor=True), 1)
    assert lot_priority(lot("z", poor=True), 9) < lot_priority(lot("a", poor=False), 1)
    assert lot_priority(lot("z"), 1) < lot_priority(lot("a"), 2)


def test_arriving_commitment_takes_lots_in_the_same_order_as_an_order_does():
    assert matches(
        lot("L1", "10", expires_on=day(12)),
        lot("L2", "10", expires_on=day(12), poor=True),
        lot("L3", "10", expires_on=day(10)),
        commitment(cap="25"),
    ) == [("L3", "C1", D("10")), ("L2", "C1", D("10")), ("L1", "C1", D("5"))]


def test_arriving_outlet_skips_ineligible_lots_and_takes_the_next_best():
    assert matches(
        lot("L1", "10", expires_on=day(10), grade="C"),
        lot("L2", "10", expires_on=day(11), grade="A"),
        order(min_grade="B"),
    ) == [("L2", "O1", D("10"))]
