"""How much a commitment may take (matching-rules.md §U): its cap and the per-mu limit of each cooperative."""

import pytest

from matcher import Book, OfferOpened
from tests.unit.matcher_facts import D, commitment, day, fills, lot, matches, planting, run

pytestmark = pytest.mark.unit


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
