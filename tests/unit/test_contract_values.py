"""The public models refuse what cannot be matched: frozen, no unknown fields, exact quantities, dates, money in fen,
windows, the catalogue, grades, ids and lists."""

from datetime import date

import pytest
from pydantic import ValidationError

from contracts.catalogue import PRODUCTS, UNITS, is_livestock, unit_of
from contracts.cooperative import HarvestRecorded
from contracts.envelope import Envelope
from contracts.inputs import (
    INPUT_TYPES,
    Commitment,
    CooperativeRegistration,
    HarvestReport,
    InputMessage,
    OrderPlacement,
    PlanReport,
    PlantingReport,
)
from contracts.registry import EVENT_MODELS
from tests.payloads import D, commitment, errors_of, harvest, locations, order, planting

pytestmark = pytest.mark.unit


# ---------------------------------------------------------------- frozen, no unknown fields


def test_an_input_cannot_be_changed_after_it_is_made():
    report = HarvestReport.model_validate(harvest())
    with pytest.raises(ValidationError):
        report.quantity = D("1")
    assert report.quantity == D("1200")


def test_an_event_cannot_be_changed_after_it_is_made():
    event = HarvestRecorded.model_validate(
        {
            **harvest(contributions=[{"household_id": "h1", "quantity": "1200", "registered_poor": True}]),
            "county": "沿河",
            "township": "客田镇",
            "village": "冯家村",
        }
    )
    with pytest.raises(ValidationError):
        event.county = "德江"


@pytest.mark.parametrize("model", [*EVENT_MODELS, *INPUT_TYPES.values(), Envelope, InputMessage], ids=lambda m: m.__name__)
def test_every_public_model_is_frozen_and_forbids_unknown_fields(model):
    assert model.model_config.get("frozen") is True
    assert model.model_config.get("extra") == "forbid"


def test_an_input_with_an_unknown_field_is_rejected():
    errors = errors_of(HarvestReport, harvest(colour="red"))
    assert [(e["loc"], e["type"]) for e in errors] == [(("colour",), "extra_forbidden")]


def test_a_contribution_with_an_unknown_field_is_rejected():
    contributions = [{"household_id": "h1", "quantity": "1200", "registered_poor": True}]
    first = errors_of(HarvestReport, harvest(contributions=contributions))[0]
    assert (first["loc"], first["type"]) == (("contributions", 0, "registered_poor"), "extra_forbidden")


# ---------------------------------------------------------------- quantities are exact


@pytest.mark.parametrize("quantity", [12.5, 1200.0])
def test_a_quantity_given_as_a_float_is_refused(quantity):
    errors = errors_of(HarvestReport, harvest(quantity=quantity))
    assert errors[0]["loc"] == ("quantity",)
    assert "not a float" in errors[0]["msg"]


def test_a_contribution_given_as_a_float_is_refused():
    contributions = [{"household_id": "h1", "quantity": 700.0}, {"household_id": "h2", "quantity": "500"}]
    assert locations(HarvestReport, harvest(contributions=contributions))[0] == ("contributions", 0, "quantity")


def test_an_area_given_as_a_float_is_refused():
    assert locations(PlantingReport, planting(area_mu=20.5)) == [("area_mu",)]


def test_a_quantity_given_as_a_json_number_decimal_is_kept_exactly():
    report = HarvestReport.model_validate(
        harvest(quantity=D("12.5"), contributions=[{"household_id": "h1", "quantity": D("12.5")}])
    )
    assert report.quantity == D("12.5")
    assert str(report.quantity) == "12.5"


@pytest.mark.parametrize(("given", "kept"), [("1200", D("1200")), ("0.001", D("0.001")), (1200, D("1200"))])
def test_a_quantity_given_as_a_string_or_a_whole_number_is_accepted(given, kept):
    report = HarvestReport.model_validate(harvest(quantity=given, contributions=[{"household_id": "h1", "quantity": given}]))
    assert report.quantity == kept


def test_a_quantity_given_as_true_is_refused():
    assert locations(HarvestReport, harvest(quantity=True)) == [("quantity",)]


@pytest.mark.parametrize("quantity", ["0", "-1", "0.0001", "NaN", "Infinity", "twelve"])
def test_a_quantity_that_is_not_positive_finite_and_to_three_places_is_refused(quantity):
    assert ("quantity",) in locations(HarvestReport, harvest(quantity=quantity))


# ---------------------------------------------------------------- dates


def test_a_date_given_as_yyyy_mm_dd_is_read_as_a_date():
    report = HarvestReport.model_validate(harvest())
    assert report.available_from == date(2020, 8, 1)


def test_a_date_given_as_a_date_is_accepted():
    report = HarvestReport.model_validate(harvest(available_from=date(2020, 8, 1)))
    assert report.available_from == date(2020, 8, 1)


@pytest.mark.parametrize("day", [20200801, "2020/08/01", "01-08-2020", "2020-8-1", "2020-08-01T00:00:00", "2020-13-01", ""])
def test_a_date_not_given_as_yyyy_mm_dd_is_refused(day):
    assert locations(HarvestReport, harvest(available_from=day)) == [("available_from",)]


def test_a_badly_formed_date_is_explained():
    errors = errors_of(HarvestReport, harvest(available_from="2020/08/01"))
    assert "YYYY-MM-DD" in errors[0]["msg"]


# ---------------------------------------------------------------- money in integer fen


def test_a_price_in_whole_fen_is_accepted():
    assert OrderPlacement.model_validate(order(limit_price_fen=850)).limit_price_fen == 850


@pytest.mark.parametrize("price", [1.5, 850.0, "100", True, D("850")])
def test_a_price_that_is_not_an_int_is_refused_even_when_it_looks_like_one(price):
    assert locations(OrderPlacement, order(limit_price_fen=price)) == [("limit_price_fen",)]


@pytest.mark.parametrize("price", [0, -1, 10**15 + 1])
def test_a_price_must_be_above_zero_and_below_the_ceiling(price):
    assert locations(OrderPlacement, order(limit_price_fen=price)) == [("limit_price_fen",)]


def test_a_target_income_of_zero_fen_is_allowed_but_a_negative_one_is_not():
    plan = {"plan_id": "K1", "county": "沿河", "township": "客田镇", "product": "chili", "area_mu": "2000"}
    assert PlanReport.model_validate({**plan, "target_household_income_fen": 0}).target_household_income_fen == 0
    assert locations(PlanReport, {**plan, "target_household_income_fen": -1}) == [("target_household_income_fen",)]


# ---------------------------------------------------------------- windows


def test_a_lot_that_expires_before_it_is_available_is_refused():
    errors = errors_of(HarvestReport, harvest(available_from="2020-08-11", expires_on="2020-08-10"))
    assert "available_from must not be after expires_on" in errors[0]["msg"]


def test_a_lot_available_and_expiring_on_the_same_day_is_accepted():
    report = HarvestReport.model_validate(harvest(available_from="2020-08-10", expires_on="2020-08-10"))
    assert report.available_from == report.expires_on


def test_a_planting_harvested_before_it_starts_is_refused():
    errors = errors_of(PlantingReport, planting(expected_harvest_from="2020-09-11", expected_harvest_to="2020-09-10"))
    assert "expected_harvest_from must not be after expected_harvest_to" in errors[0]["msg"]


def test_an_order_delivered_before_its_window_opens_is_refused():
    errors = errors_of(OrderPlacement, order(deliver_from="2020-09-01", deliver_to="2020-08-31"))
    assert "deliver_from must not be after deliver_to" in errors[0]["msg"]


def test_a_commitment_valid_to_before_valid_from_is_refused():
    errors = errors_of(Commitment, commitment(valid_from="2021-01-01", valid_to="2020-12-31"))
    assert "valid_from must not be after valid_to" in errors[0]["msg"]


# ---------------------------------------------------------------- catalogue, grades, ids, lists


@pytest.mark.parametrize("product", PRODUCTS)
def test_every_catalogue_product_can_be_ordered(product):
    assert OrderPlacement.model_validate(order(product=product)).product == product


@pytest.mark.parametrize("product", ["durian", "Chili", "", "辣椒"])
def test_a_product_outside_the_catalogue_is_refused(product):
    assert locations(OrderPlacement, order(product=product)) == [("product",)]


def test_livestock_is_counted_in_head_and_everything_else_in_kg():
    assert {product for product in PRODUCTS if is_livestock(product)} == {"live_pig", "eco_chicken", "white_goat"}
    assert {unit_of(product) for product in PRODUCTS} == {"kg", "head"}
    assert set(UNITS) == set(PRODUCTS)


def test_a_grade_other_than_a_b_or_c_is_refused():
    assert locations(HarvestReport, harvest(grade="D")) == [("grade",)]


@pytest.mark.parametrize("lot_id", ["", "L 1", "L1\n", "L\t1", "x" * 129])
def test_an_id_that_is_empty_too_long_or_has_whitespace_is_refused(lot_id):
    assert locations(HarvestReport, harvest(lot_id=lot_id)) == [("lot_id",)]


def test_a_harvest_without_contributions_is_refused():
    assert locations(HarvestReport, harvest(contributions=[])) == [("contributions",)]


def test_a_cooperative_without_households_is_refused():
    registration = {"cooperative_id": "co1", "name": "冯家村合作社", "county": "沿河", "township": "客田镇", "village": "冯家村"}
    assert locations(CooperativeRegistration, {**registration, "households": []}) == [("households",)]


@pytest.mark.parametrize("field", ["cap_quantity", "max_quantity_per_mu"])
def test_a_commitment_cap_when_given_must_be_positive(field):
    assert locations(Commitment, commitment(**{field: "0"})) == [(field,)]
    assert getattr(Commitment.model_validate(commitment()), field) is None
