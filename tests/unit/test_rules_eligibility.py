"""Which lots an outlet may take (matching-rules.md §E): windows, regions, grades, a commitment's counties and cooperatives."""

import pytest

from tests.unit.matcher_facts import commitment, day, lot, matches, order

pytestmark = pytest.mark.unit


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
