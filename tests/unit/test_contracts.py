"""The public language: frozen models, no unknown fields, exact numbers, ISO dates, ordered windows."""

from datetime import date
from decimal import Decimal

import pytest
from pydantic import ValidationError

from contracts.catalogue import PRODUCTS, UNITS, is_livestock, unit_of
from contracts.cooperative import HarvestRecorded
from contracts.envelope import Envelope
from contracts.inputs import (
    INPUT_OWNER,
    INPUT_TYPES,
    MATCHER_INPUT_TYPES,
    SERVICE_INPUT_TOPIC,
    CommitmentOffer,
    CooperativeRegistration,
    HarvestReport,
    InputMessage,
    OrderPlacement,
    PlanReport,
    PlantingReport,
    producer_of,
)
from contracts.registry import EVENT_MODELS, EVENT_TOPIC, LATEST_VERSION, MODELS_BY_TYPE, event_key
from contracts.topics import TOPICS

pytestmark = pytest.mark.unit

D = Decimal


def harvest(**changes) -> dict:
    """A valid harvest.recorded payload: 1200 kg of chili from two households."""
    return {
        "lot_id": "L1",
        "cooperative_id": "co1",
        "product": "chili",
        "grade": "A",
        "quantity": "1200",
        "available_from": "2020-08-01",
        "expires_on": "2020-08-10",
        "contributions": [
            {"household_id": "h1", "quantity": "700"},
            {"household_id": "h2", "quantity": "500"},
        ],
        **changes,
    }


def order(**changes) -> dict:
    """A valid order.placed payload."""
    return {
        "order_id": "O1",
        "buyer_id": "b1",
        "product": "chili",
        "min_grade": "B",
        "quantity": "500",
        "limit_price_fen": 850,
        "deliver_from": "2020-08-01",
        "deliver_to": "2020-08-31",
        **changes,
    }


def planting(**changes) -> dict:
    """A valid planting.recorded payload."""
    return {
        "planting_id": "P1",
        "cooperative_id": "co1",
        "product": "chili",
        "area_mu": "20",
        "expected_yield": "30000",
        "expected_harvest_from": "2020-07-20",
        "expected_harvest_to": "2020-09-10",
        "household_ids": ["h1", "h2"],
        **changes,
    }


def commitment(**changes) -> dict:
    """A valid commitment.made payload: Yuping's floor for Yanhe's oil-tea fruit."""
    return {
        "commitment_id": "C1",
        "buyer_id": "yuping",
        "product": "oil_tea_fruit",
        "min_grade": "C",
        "floor_price_fen": 400,
        "reference_market": "Tongren",
        "valid_from": "2020-10-01",
        "valid_to": "2020-12-31",
        **changes,
    }


def errors_of(model: type, data: dict) -> list[dict]:
    with pytest.raises(ValidationError) as caught:
        model.model_validate(data)
    return caught.value.errors()


def locations(model: type, data: dict) -> list[tuple]:
    return [error["loc"] for error in errors_of(model, data)]


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
    errors = errors_of(CommitmentOffer, commitment(valid_from="2021-01-01", valid_to="2020-12-31"))
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
    assert locations(CommitmentOffer, commitment(**{field: "0"})) == [(field,)]
    assert getattr(CommitmentOffer.model_validate(commitment()), field) is None


# ---------------------------------------------------------------- registry and topics


def test_every_registered_event_type_has_a_topic():
    registered = {model.event_type for model in EVENT_MODELS}
    assert registered - set(EVENT_TOPIC) == set()


def test_every_topic_entry_names_a_registered_event_type_on_a_declared_topic():
    registered = {model.event_type for model in EVENT_MODELS}
    declared = {topic.name for topic in TOPICS}
    assert set(EVENT_TOPIC) - registered == set()
    assert set(EVENT_TOPIC.values()) - declared == set()


def test_every_event_model_is_found_by_its_type_and_version():
    for model in EVENT_MODELS:
        assert MODELS_BY_TYPE[(model.event_type, model.schema_version)] is model
        assert model.schema_version >= 1
    assert len(MODELS_BY_TYPE) == len(EVENT_MODELS)


def test_the_latest_version_of_each_event_type_is_its_highest_registered_version():
    for event_type, latest in LATEST_VERSION.items():
        versions = [version for (kind, version) in MODELS_BY_TYPE if kind == event_type]
        assert latest == max(versions)


def test_an_event_is_keyed_by_its_product_when_it_has_one():
    assert event_key("HarvestRecorded", "cooperative-co1", {"product": "chili", "lot_id": "L1"}) == "chili"


def test_an_event_without_a_product_is_keyed_by_its_stream():
    assert event_key("CooperativeRegistered", "cooperative-co1", {"cooperative_id": "co1"}) == "cooperative-co1"


def test_an_event_whose_product_is_not_text_is_keyed_by_its_stream():
    assert event_key("Odd", "stream-1", {"product": None}) == "stream-1"


# ---------------------------------------------------------------- input messages


def input_message(**changes) -> dict:
    return {
        "message_id": "m1",
        "type": "order.cancelled",
        "producer": "buyer",
        "correlation_id": "run:1",
        "payload": {"order_id": "O1"},
        **changes,
    }


@pytest.mark.parametrize("input_type", INPUT_TYPES)
def test_an_input_message_of_every_known_type_is_accepted(input_type):
    assert InputMessage.model_validate(input_message(type=input_type)).type == input_type


def test_an_input_message_of_an_unknown_type_is_rejected_naming_the_known_ones():
    errors = errors_of(InputMessage, input_message(type="order.teleported"))
    assert "unknown input type 'order.teleported'" in errors[0]["msg"]
    assert "order.placed" in errors[0]["msg"]


def test_every_input_type_has_an_owning_service_with_an_input_topic():
    assert set(INPUT_OWNER) == set(INPUT_TYPES)
    assert set(INPUT_OWNER.values()) <= set(SERVICE_INPUT_TOPIC)
    assert MATCHER_INPUT_TYPES <= set(INPUT_TYPES)


@pytest.mark.parametrize(
    ("input_type", "payload", "producer"),
    [
        ("harvest.recorded", {"cooperative_id": "co1"}, "cooperative:co1"),
        ("order.placed", {"buyer_id": "b1"}, "buyer:b1"),
        ("commitment.made", {"buyer_id": "yuping"}, "buyer:yuping"),
        ("order.cancelled", {"order_id": "O1", "buyer_id": "b1"}, "buyer:b1"),
        ("buyer.registered", {"buyer_id": "b1"}, "buyer:b1"),
        ("cooperative.registered", {"cooperative_id": "co1"}, "cooperative:co1"),
        ("market_price.observed", {"market": "Tongren"}, "price-feed:Tongren"),
        ("payment.made", {"lot_id": "L1"}, "settlement-desk:main"),
        ("payment.made", {"lot_id": "L1", "desk_id": "yanhe-desk"}, "settlement-desk:yanhe-desk"),
        ("price_feed.key_revoked", {"party_id": "Tongren market", "reason": "lost"}, "price-feed:Tongren market"),
    ],
)
def test_an_input_is_submitted_by_its_producer(input_type, payload, producer):
    assert producer_of(input_type, payload) == producer


def test_an_envelope_counts_stream_versions_from_one():
    envelope = {
        "event_id": "00000000-0000-0000-0000-000000000001",
        "event_type": "HarvestRecorded",
        "schema_version": 1,
        "stream_id": "cooperative-co1",
        "stream_version": 0,
        "occurred_at": "2020-08-01T08:00:00+00:00",
        "producer": "cooperative:co1",
        "correlation_id": "run:1",
        "payload": {},
    }
    assert locations(Envelope, envelope) == [("stream_version",)]
    assert Envelope.model_validate({**envelope, "stream_version": 1}).prev_hash is None


# ---------------------------------------------------------------- one table of input kinds


def test_every_input_kind_records_a_published_event_and_the_matcher_journals_the_ones_the_table_says():
    from contracts.inputs import INPUT_KINDS, JOURNALED_EVENT_TYPES
    from contracts.registry import EVENT_TOPIC
    from matcher.journal import JOURNALED_TYPES

    assert all(kind.records in EVENT_TOPIC for kind in INPUT_KINDS)
    assert JOURNALED_TYPES == JOURNALED_EVENT_TYPES  # the matcher imports nothing of ours: its copy must agree


@pytest.mark.parametrize("service", ["cooperative", "buyer", "market", "settlement"])
def test_each_service_handles_exactly_the_input_kinds_the_table_gives_it(service):
    import importlib

    from contracts.inputs import INPUT_KINDS

    app = importlib.import_module(f"services.{service}.app")
    handlers = getattr(app, "INPUT_HANDLERS", None) or app.HANDLERS
    assert set(handlers) == {kind.model for kind in INPUT_KINDS if kind.owner == service}
