"""Every rule of matching-rules.md, and every decision we took where it is silent, one example each."""

import ast
import sys
from datetime import date, datetime
from decimal import ROUND_UP, Decimal, localcontext
from pathlib import Path

import pytest

from matcher import (
    Book,
    Commitment,
    Contribution,
    Fill,
    Lot,
    Market,
    MarketPrice,
    OfferClosed,
    OfferOpened,
    OfferShrunk,
    Order,
    OrderCancellation,
    Planting,
    fill_line,
    fill_record,
    lot_priority,
    outlet_rank,
    quantity_text,
)

pytestmark = pytest.mark.unit

D = Decimal


def day(n: int) -> date:
    """A business day in May 2020."""
    return date(2020, 5, n)


def lot(
    lot_id="L1",
    quantity="100",
    *,
    cooperative_id="co1",
    county="Yanhe",
    township="Ketian",
    product="chili",
    grade="A",
    available_from=day(1),
    expires_on=day(20),
    poor=False,
    contributions=None,
):
    if contributions is None:
        contributions = (Contribution("h1", D(quantity), poor),)
    return Lot(lot_id, cooperative_id, county, township, product, grade, D(quantity), available_from, expires_on, contributions)


def order(
    order_id="O1",
    quantity="100",
    limit=1000,
    *,
    buyer_id="canteen",
    product="chili",
    min_grade="C",
    deliver_from=day(1),
    deliver_to=day(20),
    regions=(),
):
    return Order(order_id, buyer_id, product, min_grade, D(quantity), limit, deliver_from, deliver_to, tuple(regions))


def commitment(
    commitment_id="C1",
    floor=800,
    *,
    buyer_id="yuping",
    product="chili",
    min_grade="C",
    market="tongren",
    valid_from=day(1),
    valid_to=day(20),
    counties=(),
    cooperatives=(),
    cap=None,
    per_mu=None,
):
    return Commitment(
        commitment_id,
        buyer_id,
        product,
        min_grade,
        floor,
        market,
        valid_from,
        valid_to,
        tuple(counties),
        tuple(cooperatives),
        None if cap is None else D(cap),
        None if per_mu is None else D(per_mu),
    )


def price(price_fen, observed_on=day(1), *, grade="A", market="tongren", product="chili"):
    return MarketPrice(product, grade, market, price_fen, observed_on)


def planting(planting_id, area, *, cooperative_id="co1", product="chili"):
    return Planting(planting_id, cooperative_id, product, D(area))


def run(*facts):
    return Market.replay(facts)


def fills(outcomes):
    return [outcome for outcome in outcomes if isinstance(outcome, Fill)]


def matches(*facts):
    """(lot, outlet, quantity) of every fill, in output order: the shortest way to say who got what."""
    return [(f.lot_id, f.outlet_id, f.quantity) for f in fills(run(*facts))]


def only_fill(*facts) -> Fill:
    [the_fill] = fills(run(*facts))
    return the_fill


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


# ---------------------------------------------------------------- windows


def _outlet(kind, start, end, **kwargs):
    if kind == "order":
        return order(deliver_from=start, deliver_to=end, **kwargs)
    return commitment(valid_from=start, valid_to=end, **kwargs)


OUTLET_KINDS = pytest.mark.parametrize("kind", ["order", "commitment"])


@OUTLET_KINDS
def test_lot_available_on_the_outlets_last_day_is_eligible(kind):
    assert matches(lot(available_from=day(10), expires_on=day(15)), _outlet(kind, day(5), day(10)))


@OUTLET_KINDS
def test_lot_available_only_after_the_outlets_last_day_is_not_eligible(kind):
    assert not matches(lot(available_from=day(11), expires_on=day(15)), _outlet(kind, day(5), day(10)))


@OUTLET_KINDS
def test_lot_expiring_on_the_outlets_first_day_is_eligible(kind):
    assert matches(lot(available_from=day(1), expires_on=day(5)), _outlet(kind, day(5), day(10)))


@OUTLET_KINDS
def test_lot_expiring_the_day_before_the_outlet_starts_is_not_eligible(kind):
    assert not matches(lot(available_from=day(1), expires_on=day(4)), _outlet(kind, day(5), day(10)))


@OUTLET_KINDS
def test_window_overlap_is_the_same_whichever_arrives_first(kind):
    early = lot(available_from=day(1), expires_on=day(4))
    edge = lot("L2", available_from=day(1), expires_on=day(5))
    assert [m[0] for m in matches(_outlet(kind, day(5), day(10)), early, edge)] == ["L2"]
    assert [m[0] for m in matches(early, edge, _outlet(kind, day(5), day(10)))] == ["L2"]


# ---------------------------------------------------------------- regions and grades


def test_order_accepts_a_lot_from_a_listed_county():
    assert matches(lot(county="Yanhe", township="Ketian"), order(regions=["Yanhe"]))


def test_order_accepts_a_lot_from_a_listed_township():
    assert matches(lot(county="Yanhe", township="Ketian"), order(regions=["Ketian"]))


def test_order_refuses_a_lot_from_an_unlisted_county_and_township():
    assert not matches(lot(county="Yanhe", township="Ketian"), order(regions=["Dejiang", "Tangba"]))


def test_order_with_no_regions_accepts_a_lot_from_anywhere():
    assert matches(lot(county="Dejiang", township="Tongjing"), order(regions=[]))


@OUTLET_KINDS
@pytest.mark.parametrize(
    ("lot_grade", "min_grade", "eligible"),
    [("A", "A", True), ("A", "B", True), ("A", "C", True), ("B", "B", True), ("B", "A", False), ("C", "B", False)],
)
def test_lot_must_be_at_least_the_outlets_minimum_grade(kind, lot_grade, min_grade, eligible):
    assert bool(matches(lot(grade=lot_grade), _outlet(kind, day(1), day(20), min_grade=min_grade))) is eligible


def test_lot_of_another_product_never_meets_the_outlet():
    assert not matches(lot(product="sorghum"), order(product="chili"))


# ---------------------------------------------------------------- commitment eligibility


def test_commitment_accepts_a_lot_from_an_eligible_county():
    assert matches(lot(county="Yanhe"), commitment(counties=["Yanhe"]))


def test_commitment_accepts_a_lot_from_an_eligible_cooperative_in_another_county():
    elsewhere = lot(county="Dejiang", cooperative_id="tongxin")
    assert matches(elsewhere, commitment(counties=["Yanhe"], cooperatives=["tongxin"]))


def test_commitment_refuses_a_lot_from_neither_an_eligible_county_nor_cooperative():
    elsewhere = lot(county="Dejiang", cooperative_id="tongxin")
    assert not matches(elsewhere, commitment(counties=["Yanhe"], cooperatives=["fengjia"]))


def test_commitment_county_list_does_not_match_townships():
    assert not matches(lot(county="Yanhe", township="Ketian"), commitment(counties=["Ketian"]))


def test_commitment_with_both_lists_empty_accepts_anyone():
    assert matches(lot(county="Dejiang", cooperative_id="tongxin"), commitment(counties=[], cooperatives=[]))


# ---------------------------------------------------------------- cap


def test_commitment_takes_no_more_than_its_cap():
    assert matches(lot(quantity="100"), commitment(cap="30")) == [("L1", "C1", D("30"))]


def test_commitment_cap_is_cumulative_over_fills_and_closes_the_commitment():
    book = Book("chili")
    book.process(commitment(cap="30"))
    assert fills(book.process(lot("L1", "20")))[0].quantity == D("20")
    assert fills(book.process(lot("L2", "20")))[0].quantity == D("10")
    assert book.process(lot("L3", "20"))[0] == OfferOpened(
        "L3", "chili", "A", "co1", "Yanhe", "Ketian", D("20"), day(1), day(20), 4
    )
    assert book.open_outlets() == ()


def test_commitment_without_cap_takes_everything_offered():
    assert matches(lot("L1", "5000"), lot("L2", "7000"), commitment(cap=None)) == [
        ("L1", "C1", D("5000")),
        ("L2", "C1", D("7000")),
    ]


def test_commitment_with_a_zero_cap_takes_nothing_and_does_not_open():
    book = Book("chili")
    book.process(lot())
    assert book.process(commitment(cap="0")) == []
    assert book.open_outlets() == ()


# ---------------------------------------------------------------- per-mu limit


def test_cooperative_without_a_planting_has_no_room_under_a_per_mu_limit():
    assert not matches(lot(), commitment(per_mu="10"))


def test_per_mu_room_is_planted_area_times_the_limit():
    assert matches(planting("P1", "3"), lot(quantity="100"), commitment(per_mu="10")) == [("L1", "C1", D("30"))]


def test_per_mu_room_sums_all_plantings_of_the_cooperative():
    assert matches(planting("P1", "2"), planting("P2", "1.5"), lot(quantity="100"), commitment(per_mu="10")) == [
        ("L1", "C1", D("35"))
    ]


def test_per_mu_room_ignores_other_cooperatives_and_other_products_plantings():
    assert matches(
        planting("P1", "2"),
        planting("P2", "5", cooperative_id="co2"),
        planting("P3", "5", product="sorghum"),
        lot(quantity="100"),
        commitment(per_mu="10"),
    ) == [("L1", "C1", D("20"))]


def test_per_mu_room_counts_only_plantings_recorded_before_the_fill():
    outcomes = run(
        planting("P1", "1"),
        commitment(per_mu="10"),
        lot("L1", "50"),
        planting("P2", "2"),  # journaled after L1's fill: it cannot enlarge that fill
        lot("L2", "50"),
    )
    assert [(f.lot_id, f.quantity) for f in fills(outcomes)] == [("L1", D("10")), ("L2", D("20"))]


def test_a_planting_does_not_itself_match_a_resting_lot():
    book = Book("chili")
    book.process(commitment(per_mu="10"))
    book.process(lot("L1", "50"))
    assert book.process(planting("P1", "2")) == []
    assert book.resting_lots()[0].quantity_left == D("50")


def test_per_mu_room_is_cumulative_over_the_cooperatives_fills_under_the_commitment():
    assert matches(
        planting("P1", "4"),
        commitment(per_mu="10"),
        lot("L1", "25"),
        lot("L2", "25"),
        lot("L3", "25"),
    ) == [("L1", "C1", D("25")), ("L2", "C1", D("15"))]


def test_per_mu_room_is_kept_per_cooperative():
    assert matches(
        planting("P1", "1"),
        planting("P2", "2", cooperative_id="co2"),
        commitment(per_mu="10"),
        lot("L1", "50", cooperative_id="co1"),
        lot("L2", "50", cooperative_id="co2"),
    ) == [("L1", "C1", D("10")), ("L2", "C1", D("20"))]


def test_per_mu_room_is_kept_per_commitment():
    assert matches(
        planting("P1", "1"),
        commitment("C1", 900, per_mu="10"),
        commitment("C2", 800, per_mu="10"),
        lot("L1", "50"),
    ) == [("L1", "C1", D("10")), ("L1", "C2", D("10"))]


def test_per_mu_room_is_cut_down_to_whole_grams():
    # 1.0001 mu x 1.5 kg/mu = 1.50015 kg: the room is 1.500 kg
    assert matches(planting("P1", "1.0001"), lot(quantity="10"), commitment(per_mu="1.5")) == [("L1", "C1", D("1.500"))]


def test_per_mu_room_is_cut_down_to_whole_head_for_livestock():
    # 1.5 mu x 1.5 head/mu = 2.25 head: the room is 2 head
    pigs = dict(product="live_pig")
    assert matches(planting("P1", "1.5", **pigs), lot(quantity="10", **pigs), commitment(per_mu="1.5", **pigs)) == [
        ("L1", "C1", D("2"))
    ]


def test_room_below_one_unit_makes_the_lot_ineligible_rather_than_filling_zero():
    pigs = dict(product="live_pig")
    outcomes = run(planting("P1", "0.5", **pigs), commitment(per_mu="1.5", **pigs), lot(quantity="10", **pigs))
    assert fills(outcomes) == []
    assert isinstance(outcomes[0], OfferOpened)


def test_cooperative_out_of_room_leaves_the_commitment_open_for_others():
    book = Book("chili")
    for fact in (planting("P1", "1"), planting("P2", "1", cooperative_id="co2"), commitment(per_mu="10")):
        book.process(fact)
    book.process(lot("L1", "15"))
    [view] = book.open_outlets()
    assert (view.outlet.commitment_id, view.filled_by_cooperative) == ("C1", (("co1", D("10")),))
    assert fills(book.process(lot("L2", "15", cooperative_id="co2")))[0].quantity == D("10")


def test_per_mu_room_and_cap_both_cut_a_fill():
    assert matches(planting("P1", "10"), commitment(per_mu="10", cap="40"), lot(quantity="100")) == [("L1", "C1", D("40"))]
    assert matches(planting("P1", "3"), commitment(per_mu="10", cap="40"), lot(quantity="100")) == [("L1", "C1", D("30"))]


def test_per_mu_room_cuts_a_fill_for_an_arriving_commitment_too():
    assert matches(planting("P1", "1"), lot("L1", "8"), lot("L2", "8"), commitment(per_mu="10")) == [
        ("L1", "C1", D("8")),
        ("L2", "C1", D("2")),
    ]


# ---------------------------------------------------------------- partial fills and cancellation


def test_lot_bigger_than_the_order_fills_it_and_rests_with_the_rest():
    outcomes = run(order(quantity="30"), lot(quantity="100"))
    assert [type(o) for o in outcomes] == [Fill, OfferOpened]
    assert outcomes[1].quantity_left == D("70")


def test_order_bigger_than_the_lot_takes_it_all_and_waits_for_more():
    assert matches(lot("L1", "30"), order(quantity="100"), lot("L2", "100")) == [
        ("L1", "O1", D("30")),
        ("L2", "O1", D("70")),
    ]


def test_cancelled_order_takes_no_more_produce_but_its_fills_stand():
    book = Book("chili")
    book.process(order(quantity="100"))
    filled = book.process(lot("L1", "30"))
    assert fills(filled)[0].quantity == D("30")
    assert book.process(OrderCancellation("O1", "chili")) == []
    assert book.open_outlets() == ()
    assert fills(book.process(lot("L2", "50"))) == []
    assert book.fills_so_far == 1


def test_cancelling_an_unknown_order_has_no_outcome():
    assert run(OrderCancellation("nobody", "chili")) == []


def test_cancelling_an_order_twice_has_no_further_outcome():
    book = Book("chili")
    book.process(order())
    assert book.process(OrderCancellation("O1", "chili")) == []
    assert book.process(OrderCancellation("O1", "chili")) == []


def test_cancelling_a_filled_order_changes_nothing():
    outcomes = run(order(quantity="10"), lot("L1", "10"), OrderCancellation("O1", "chili"), lot("L2", "5"))
    assert [f.lot_id for f in fills(outcomes)] == ["L1"]


def test_cancellation_before_the_order_is_not_remembered():
    assert matches(OrderCancellation("O1", "chili"), order(), lot())


def test_an_order_is_not_cancelled_by_a_cancellation_in_another_products_book():
    assert matches(order(), OrderCancellation("O1", "sorghum"), lot())


# ---------------------------------------------------------------- offers


def test_lot_with_no_eligible_outlet_opens_an_offer_for_all_of_it():
    arriving = lot("L1", "12.5", county="Yanhe", township="Ketian", grade="B", available_from=day(2), expires_on=day(9))
    assert run(arriving) == [OfferOpened("L1", "chili", "B", "co1", "Yanhe", "Ketian", D("12.5"), day(2), day(9), 1)]


def test_lot_used_up_on_arrival_opens_no_offer():
    assert [type(o) for o in run(order(quantity="100"), lot(quantity="100"))] == [Fill]


def test_lot_partly_filled_on_arrival_reports_its_fills_then_the_offer_of_the_rest():
    outcomes = run(order("O1", "10"), order("O2", "20"), lot(quantity="50"))
    assert [type(o) for o in outcomes] == [Fill, Fill, OfferOpened]
    assert outcomes[-1].quantity_left == D("20")
    assert outcomes[-1].journal_seq == 3


def test_outlet_partly_filling_a_resting_lot_shrinks_the_offer():
    outcomes = run(lot(quantity="50"), order(quantity="20"))
    assert outcomes[1:] == [fills(outcomes)[0], OfferShrunk("L1", "chili", D("30"), 2)]


def test_outlet_using_up_a_resting_lot_closes_the_offer():
    book = Book("chili")
    book.process(lot(quantity="50"))
    outcomes = book.process(order(quantity="80"))
    assert [type(o) for o in outcomes] == [Fill, OfferClosed]
    assert outcomes[1] == OfferClosed("L1", "chili", 2)
    assert book.resting_lots() == ()


def test_each_fill_of_an_arriving_outlet_is_followed_by_its_offer_change():
    outcomes = run(lot("L1", "10", expires_on=day(5)), lot("L2", "10", expires_on=day(6)), order(quantity="15"))
    assert [(type(o).__name__, o.lot_id) for o in outcomes[2:]] == [
        ("Fill", "L1"),
        ("OfferClosed", "L1"),
        ("Fill", "L2"),
        ("OfferShrunk", "L2"),
    ]


def test_resting_lots_view_lists_offers_in_the_order_outlets_take_them():
    book = Book("chili")
    for fact in (lot("L1", "5", expires_on=day(9)), lot("L2", "5", expires_on=day(8)), order("O1", "2", min_grade="A")):
        book.process(fact)
    assert [(view.lot.lot_id, view.quantity_left, view.journal_seq) for view in book.resting_lots()] == [
        ("L2", D("3"), 2),
        ("L1", D("5"), 1),
    ]


def test_open_outlets_view_lists_orders_and_commitments_in_journal_order():
    book = Book("chili")
    for fact in (commitment("C1", cap="10"), order("O1", "5", 700), order("O2", "5", 900), commitment("C2")):
        book.process(fact)
    assert [(v.outlet_kind, v.quantity_left, v.journal_seq) for v in book.open_outlets()] == [
        ("commitment", D("10"), 1),
        ("order", D("5"), 2),
        ("order", D("5"), 3),
        ("commitment", None, 4),
    ]


# ---------------------------------------------------------------- duplicates and numbering


def test_second_lot_with_the_same_id_is_ignored():
    outcomes = run(lot("L1", "10"), lot("L1", "99"), order(quantity="100"))
    assert outcomes[1:] == [fills(outcomes)[0], OfferClosed("L1", "chili", 3)]
    assert fills(outcomes)[0].quantity == D("10")


def test_second_order_with_the_same_id_is_ignored_even_after_the_first_is_filled():
    assert matches(order("O1", "10"), lot("L1", "10"), order("O1", "10"), lot("L2", "10")) == [("L1", "O1", D("10"))]


def test_second_commitment_with_the_same_id_is_ignored():
    assert matches(commitment("C1", cap="10"), commitment("C1", cap="10"), lot(quantity="100")) == [("L1", "C1", D("10"))]


def test_second_planting_with_the_same_id_is_ignored():
    assert matches(planting("P1", "1"), planting("P1", "1"), commitment(per_mu="10"), lot()) == [("L1", "C1", D("10"))]


def test_journal_numbers_count_every_input_including_ignored_ones():
    book = Book("chili")
    for fact in (lot("L1", "10"), lot("L1", "10"), price(900), OrderCancellation("x", "chili")):
        book.process(fact)
    [the_fill, _closed] = book.process(order())
    assert (the_fill.journal_seq, book.journal_seq) == (5, 5)


def test_fill_positions_count_per_product_book():
    outcomes = run(
        order("O1", "1", product="chili"),
        order("O1", "1", product="sorghum"),
        lot("L1", "5", product="sorghum"),
        lot("L1", "5", product="chili"),
        order("O2", "1", product="chili"),
    )
    assert [(f.product, f.position, f.journal_seq) for f in fills(outcomes)] == [
        ("sorghum", 1, 2),
        ("chili", 1, 2),
        ("chili", 2, 3),
    ]


def test_book_refuses_a_fact_of_another_product_without_numbering_it():
    book = Book("chili")
    with pytest.raises(ValueError):
        book.process(lot(product="sorghum"))
    assert book.journal_seq == 0


def test_book_and_market_refuse_what_is_not_a_fact():
    with pytest.raises(TypeError):
        Book("chili").process("chili")
    with pytest.raises(TypeError):
        Market().process(None)


# ---------------------------------------------------------------- money in fills


def test_fill_revenue_rounds_half_to_even_to_whole_fen():
    # 0.001 kg at 500 fen = 0.5 fen -> 0;  0.003 kg -> 1.5 fen -> 2;  0.005 kg -> 2.5 fen -> 2
    outcomes = run(order("O1", "0.001", 500), order("O2", "0.003", 500), order("O3", "0.005", 500), lot(quantity="1"))
    assert [f.revenue_fen for f in fills(outcomes)] == [0, 2, 2]


def test_fill_revenue_is_split_to_households_by_contributed_quantity():
    households = (Contribution("h1", D("1"), False), Contribution("h2", D("2"), True))
    the_fill = only_fill(lot(quantity="3", contributions=households), order(quantity="1", limit=100))
    assert the_fill.revenue_fen == 100
    assert the_fill.household_income_fen == (("h1", 33), ("h2", 67))


def test_household_split_follows_contributions_even_when_they_do_not_add_up_to_the_lot():
    households = (Contribution("h2", D("1"), False), Contribution("h1", D("1"), False))
    the_fill = only_fill(lot(quantity="10", contributions=households), order(quantity="1", limit=101))
    assert the_fill.household_income_fen == (("h1", 51), ("h2", 50))


# ---------------------------------------------------------------- output


def _sample_fill():
    households = (Contribution("张家", D("700"), True), Contribution("h2", D("500"), False))
    return only_fill(price(1000), lot(quantity="1200", contributions=households), commitment(floor=950))


def test_fill_record_has_exactly_the_contract_fields_in_order():
    record = fill_record(_sample_fill())
    assert list(record) == [
        "lot_id",
        "outlet_kind",
        "outlet_id",
        "buyer_id",
        "quantity",
        "unit_price_fen",
        "price_basis",
        "revenue_fen",
        "household_income_fen",
    ]
    assert record["quantity"] == "1200"
    assert record["household_income_fen"] == {"h2": 500_000, "张家": 700_000}


def test_fill_line_is_canonical_json():
    assert fill_line(_sample_fill()) == (
        '{"lot_id":"L1","outlet_kind":"commitment","outlet_id":"C1","buyer_id":"yuping","quantity":"1200",'
        '"unit_price_fen":1000,"price_basis":"market","revenue_fen":1200000,'
        '"household_income_fen":{"h2":500000,"张家":700000}}'
    )


@pytest.mark.parametrize(
    ("quantity", "text"),
    [("1200", "1200"), ("1.2E+3", "1200"), ("12.500", "12.5"), ("0.001", "0.001"), ("7.000", "7"), ("0", "0")],
)
def test_quantities_are_written_as_plain_decimals_without_trailing_zeros(quantity, text):
    assert quantity_text(D(quantity)) == text


def test_equal_fills_give_identical_lines():
    assert fill_line(_sample_fill()) == fill_line(_sample_fill())


# ---------------------------------------------------------------- purity


def _journal():
    return [
        price(1000, day(1)),
        planting("P1", "2.5"),
        lot(
            "L1",
            "33.333",
            contributions=(Contribution("h1", D("11.111"), True), Contribution("h2", D("22.222"), False)),
        ),
        commitment(per_mu="7.77"),
        order("O1", "3.001", 1333),
        lot("L2", "1.001"),
    ]


def test_results_do_not_depend_on_the_global_decimal_context():
    expected = [fill_line(f) for f in fills(Market.replay(_journal()))]
    with localcontext() as context:
        context.prec = 3
        context.rounding = ROUND_UP
        assert [fill_line(f) for f in fills(Market.replay(_journal()))] == expected


def test_matcher_imports_only_the_standard_library_and_itself():
    package = Path(__import__("matcher").__file__).parent
    for source in package.glob("*.py"):
        for node in ast.walk(ast.parse(source.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                roots = [alias.name.split(".")[0] for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                roots = [(node.module or "").split(".")[0]]
            else:
                continue
            for root in roots:
                assert root in sys.stdlib_module_names or root in ("matcher", "__future__"), (source.name, root)


# ---------------------------------------------------------------- facts refuse what cannot be matched


@pytest.mark.parametrize(
    "build",
    [
        lambda: lot(quantity="1.5", product="live_pig"),
        lambda: lot(quantity="1.0005"),
        lambda: lot(quantity="0"),
        lambda: lot(grade="D"),
        lambda: lot(available_from=day(5), expires_on=day(4)),
        lambda: lot(available_from=datetime(2020, 5, 1, 8, 0)),
        lambda: lot(contributions=()),
        lambda: Lot("L1", "co1", "Yanhe", "Ketian", "chili", "A", 1.5, day(1), day(2), lot().contributions),
        lambda: order(limit=-1),
        lambda: order(deliver_from=day(5), deliver_to=day(4)),
        lambda: Order("O1", "b", "chili", "A", D("1"), 1.5, day(1), day(2), ()),
        lambda: commitment(cap="-1"),
        lambda: commitment(per_mu="-1"),
        lambda: Contribution("h1", D("1"), "yes"),
        lambda: MarketPrice("chili", "A", "tongren", 100, datetime(2020, 5, 1)),
        lambda: planting("P1", "NaN"),
    ],
)
def test_facts_refuse_values_that_cannot_be_matched(build):
    with pytest.raises(ValueError):
        build()


def test_livestock_in_whole_head_and_kg_to_the_gram_are_accepted():
    assert lot(quantity="12", product="live_pig").quantity == D("12")
    assert lot(quantity="12.345").quantity == D("12.345")
    assert lot(quantity="12.3450").quantity == D("12.3450")
