"""The cooperative's rules: who may register, plant and harvest, and what a recorded lot says about its growers."""

from decimal import Decimal

import pytest

from contracts.cooperative import Contribution
from contracts.inputs import CooperativeRegistration, HarvestReport, PlantingReport
from events.consumer import Rejection
from services.cooperative.domain import Cooperative, record_harvest, record_planting, register

pytestmark = pytest.mark.unit

D = Decimal

FENGJIA = Cooperative(
    cooperative_id="co1",
    county="沿河",
    township="客田镇",
    village="冯家村",
    households={"h1": True, "h2": False, "h3": True},
)


def registration(*households: tuple[str, bool], cooperative_id: str = "co1") -> CooperativeRegistration:
    return CooperativeRegistration(
        cooperative_id=cooperative_id,
        name="冯家村辣椒合作社",
        county="沿河",
        township="客田镇",
        village="冯家村",
        households=[{"household_id": h, "registered_poor": poor} for h, poor in households or [("h1", True), ("h2", False)]],
        public_key="A6EHv_POEL4dcN0Y50vAmWfk1jCbpQ1fHdyGZBJVMbg",
    )


def harvest(
    *contributions: tuple[str, str], quantity: str | None = None, product: str = "chili", lot_id: str = "L1"
) -> HarvestReport:
    contributions = contributions or (("h1", "700"), ("h2", "500"))
    total = quantity if quantity is not None else str(sum(D(q) for _, q in contributions))
    return HarvestReport(
        lot_id=lot_id,
        cooperative_id="co1",
        product=product,
        grade="A",
        quantity=total,
        available_from="2020-08-01",
        expires_on="2020-08-10",
        contributions=[{"household_id": h, "quantity": q} for h, q in contributions],
    )


def planting(*household_ids: str, product: str = "chili", expected_yield: str = "30000") -> PlantingReport:
    return PlantingReport(
        planting_id="P1",
        cooperative_id="co1",
        product=product,
        area_mu="20",
        expected_yield=expected_yield,
        expected_harvest_from="2020-07-20",
        expected_harvest_to="2020-09-10",
        household_ids=household_ids or ("h1", "h2"),
    )


def rejection_of(decide, *args) -> str:
    with pytest.raises(Rejection) as caught:
        decide(*args)
    return str(caught.value)


# ---------------------------------------------------------------- register


def test_a_new_cooperative_with_free_households_is_registered():
    event = register(registration(("h1", True), ("h2", False)), already_registered=False, taken={"h9": "co2"})
    assert (event.cooperative_id, event.county, event.township, event.village) == ("co1", "沿河", "客田镇", "冯家村")
    assert [(h.household_id, h.registered_poor) for h in event.households] == [("h1", True), ("h2", False)]


def test_a_cooperative_cannot_register_twice():
    reason = rejection_of(register, registration(), True, {})
    assert reason == "payload.cooperative_id: cooperative co1 is already registered"


def test_a_household_listed_twice_in_a_registration_is_rejected():
    reason = rejection_of(register, registration(("h1", True), ("h2", False), ("h1", True)), False, {})
    assert reason == "payload.households.2.household_id: household h1 is listed twice"


def test_a_household_of_another_cooperative_cannot_join():
    reason = rejection_of(register, registration(("h1", True), ("h2", False)), False, {"h2": "co2"})
    assert reason == "payload.households.1.household_id: household h2 already belongs to cooperative co2"


# ---------------------------------------------------------------- record_harvest


def test_a_harvest_is_enriched_with_where_it_comes_from():
    event = record_harvest(harvest(), FENGJIA, already_recorded=False)
    assert (event.county, event.township, event.village) == ("沿河", "客田镇", "冯家村")
    assert (event.lot_id, event.cooperative_id, event.product, event.quantity) == ("L1", "co1", "chili", D("1200"))


def test_each_contribution_carries_its_households_registered_poor_flag():
    event = record_harvest(harvest(("h1", "700"), ("h2", "500")), FENGJIA, already_recorded=False)
    assert event.contributions == (
        Contribution(household_id="h1", quantity=D("700"), registered_poor=True),
        Contribution(household_id="h2", quantity=D("500"), registered_poor=False),
    )


def test_a_harvest_of_an_unknown_cooperative_is_rejected():
    assert rejection_of(record_harvest, harvest(), None, False) == "payload.cooperative_id: unknown cooperative co1"


def test_a_harvest_from_a_household_outside_the_cooperative_is_rejected():
    reason = rejection_of(record_harvest, harvest(("h1", "700"), ("h7", "500")), FENGJIA, False)
    assert reason == "payload.contributions.1.household_id: household h7 is not a member of co1"


def test_a_household_contributing_twice_to_a_lot_is_rejected():
    reason = rejection_of(record_harvest, harvest(("h1", "700"), ("h1", "500")), FENGJIA, False)
    assert reason == "payload.contributions.1.household_id: household h1 is listed twice"


@pytest.mark.parametrize("quantity", ["1201", "1199.999"])
def test_a_harvest_whose_contributions_do_not_add_up_is_rejected(quantity):
    reason = rejection_of(record_harvest, harvest(("h1", "700"), ("h2", "500"), quantity=quantity), FENGJIA, False)
    assert reason.startswith("payload.contributions: contributions add up to 1200")
    assert quantity in reason


def test_contributions_that_add_up_exactly_in_fractions_are_accepted():
    event = record_harvest(harvest(("h1", "0.1"), ("h2", "0.2"), quantity="0.3"), FENGJIA, False)
    assert sum(c.quantity for c in event.contributions) == event.quantity == D("0.3")


def test_a_lot_of_a_fractional_number_of_pigs_is_rejected():
    lot = harvest(("h1", "2.5"), ("h2", "2"), product="live_pig")
    assert rejection_of(record_harvest, lot, FENGJIA, False) == "payload.quantity: live_pig is counted in whole head, got 4.5"


def test_a_fractional_pig_from_one_household_is_rejected_even_when_the_lot_is_whole():
    lot = harvest(("h1", "2.5"), ("h2", "1.5"), product="live_pig")
    assert rejection_of(record_harvest, lot, FENGJIA, False) == (
        "payload.contributions.0.quantity: live_pig is counted in whole head, got 2.5"
    )


def test_whole_pigs_are_accepted():
    event = record_harvest(harvest(("h1", "3"), ("h2", "1"), product="live_pig"), FENGJIA, False)
    assert event.quantity == D("4")


def test_fractional_kilograms_of_chili_are_accepted():
    assert record_harvest(harvest(("h1", "0.5"), ("h2", "12.25")), FENGJIA, False).quantity == D("12.75")


def test_a_lot_already_recorded_is_rejected():
    assert rejection_of(record_harvest, harvest(), FENGJIA, True) == "payload.lot_id: lot L1 was already recorded"


# ---------------------------------------------------------------- record_planting


def test_a_planting_is_enriched_with_the_cooperatives_county_and_township():
    event = record_planting(planting("h1", "h3"), FENGJIA, already_recorded=False)
    assert (event.county, event.township) == ("沿河", "客田镇")
    assert (event.planting_id, event.area_mu, event.household_ids) == ("P1", D("20"), ("h1", "h3"))


def test_a_planting_by_a_household_outside_the_cooperative_is_rejected():
    reason = rejection_of(record_planting, planting("h1", "h8"), FENGJIA, False)
    assert reason == "payload.household_ids.1: household h8 is not a member of co1"


def test_a_planting_of_an_unknown_cooperative_is_rejected():
    assert rejection_of(record_planting, planting(), None, False) == "payload.cooperative_id: unknown cooperative co1"


def test_a_planting_already_recorded_is_rejected():
    assert rejection_of(record_planting, planting(), FENGJIA, True) == "payload.planting_id: planting P1 was already recorded"


def test_a_planting_expecting_a_fractional_pig_is_rejected():
    reason = rejection_of(record_planting, planting(product="live_pig", expected_yield="84.5"), FENGJIA, False)
    assert reason == "payload.expected_yield: live_pig is counted in whole head, got 84.5"
