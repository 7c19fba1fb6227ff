"""Reading a scenario file: each line checked with the services' own models, a bad one named by line and field."""

import json
from decimal import Decimal

import pytest

from contracts.inputs import INPUT_TYPES
from farmlink.producers.scenario import LineError, ScenarioLine, parse_line, read_scenario

pytestmark = pytest.mark.unit

VALID_PAYLOADS: dict[str, dict] = {
    "cooperative.registered": {
        "cooperative_id": "co1",
        "name": "冯家村辣椒合作社",
        "county": "沿河",
        "township": "客田镇",
        "village": "冯家村",
        "households": [{"household_id": "h1", "registered_poor": True}, {"household_id": "h2", "registered_poor": False}],
    },
    "planting.recorded": {
        "planting_id": "P1",
        "cooperative_id": "co1",
        "product": "chili",
        "area_mu": 20,
        "expected_yield": 30000,
        "expected_harvest_from": "2020-07-20",
        "expected_harvest_to": "2020-09-10",
        "household_ids": ["h1", "h2"],
    },
    "harvest.recorded": {
        "lot_id": "L1",
        "cooperative_id": "co1",
        "product": "chili",
        "grade": "A",
        "quantity": 1200,
        "available_from": "2020-08-01",
        "expires_on": "2020-08-10",
        "contributions": [{"household_id": "h1", "quantity": 700}, {"household_id": "h2", "quantity": 500}],
    },
    "order.placed": {
        "order_id": "O1",
        "buyer_id": "b1",
        "product": "chili",
        "min_grade": "B",
        "quantity": 500,
        "limit_price_fen": 850,
        "deliver_from": "2020-08-01",
        "deliver_to": "2020-08-31",
        "regions": ["沿河"],
    },
    "order.cancelled": {"order_id": "O1", "buyer_id": "b1"},
    "buyer.registered": {"buyer_id": "b1", "name": "Tongren school canteens"},
    "commitment.made": {
        "commitment_id": "C1",
        "buyer_id": "yuping",
        "product": "oil_tea_fruit",
        "min_grade": "C",
        "floor_price_fen": 400,
        "reference_market": "Tongren",
        "valid_from": "2020-10-01",
        "valid_to": "2020-12-31",
        "eligible_counties": ["沿河"],
        "cap_quantity": 100000,
    },
    "market_price.observed": {
        "product": "chili",
        "grade": "A",
        "market": "Tongren",
        "price_fen": 820,
        "observed_on": "2020-08-01",
    },
    "plan.recorded": {
        "plan_id": "K1",
        "county": "沿河",
        "township": "客田镇",
        "product": "chili",
        "area_mu": 2000,
        "target_household_income_fen": 2_400_000,
    },
    "delivery.confirmed": {"lot_id": "L1", "outlet_id": "O1", "quantity": 500},
    "payment.made": {"lot_id": "L1", "outlet_id": "O1", "amount_fen": 425_000},
    "price_feed.registered": {"market": "Tongren", "name": "Tongren wholesale market"},
    "settlement_desk.registered": {"desk_id": "yanhe-desk", "name": "沿河县结算台"},
    **{
        f"{prefix}.key_rotated": {"party_id": "fengjia"}
        for prefix in ("cooperative", "buyer", "price_feed", "settlement_desk", "pairing_office")
    },
    **{
        f"{prefix}.key_revoked": {"party_id": "fengjia", "reason": "the office PC was stolen"}
        for prefix in ("cooperative", "buyer", "price_feed", "settlement_desk", "pairing_office")
    },
    "pairing_office.registered": {"office_id": "tongren", "name": "Tongren pairing office (铜仁市结对帮扶办公室)"},
    "pairing.registered": {
        "pairing_id": "tongxin-fengjia",
        "kind": "1+1",
        "helper": "Tongxin community, Dejiang",
        "helper_kind": "village",
        "helped": "Fengjia",
        "helped_kind": "village",
        "helped_township": "Ketian",
        "team": "Dejiang industry team",
    },
    "support.delivered": {
        "delivery_id": "S1",
        "pairing_id": "yuping-yanhe",
        "kind": "seedlings",
        "quantity": "1000000",
        "value_fen": 350000000,
        "delivered_on": "2020-03-10",
        "note": "oil-tea seedlings",
        "to_village": "Tangba",
    },
    "project.registered": {
        "project_id": "ketian-chili",
        "name": "Ketian 2,000 mu chili",
        "owner_team": "chili team",
        "target": "2,000 mu",
        "due_on": "2020-10-31",
        "milestones": [{"milestone_id": "planted", "name": "2,000 mu planted", "due_on": "2020-05-31"}],
    },
    "project.milestone_reached": {
        "project_id": "ketian-chili",
        "milestone_id": "planted",
        "reached_on": "2020-05-20",
        "evidence": "township survey",
    },
    "supervision.round": {"round_id": "2020-q3", "as_of": "2020-09-30"},
    "support.promised": {
        "promise_id": "sheds",
        "pairing_id": "tongxin-fengjia",
        "kind": "equipment",
        "quantity": "2",
        "value_fen": 600000,
        "due_on": "2020-08-31",
        "note": "two drying sheds",
    },
    "problem.opened": {
        "problem_id": "road-1",
        "township": "Ketian",
        "owner_team": "infrastructure team",
        "subject": "the road to Fengjia",
        "reason": "washed out by the June rains",
    },
    "problem.rectified": {"problem_id": "road-1", "action": "gravel laid"},
    "problem.closed": {"problem_id": "road-1", "reason": "repaired", "evidence": "township photo 2020-07-10"},
}


def line(input_type: str, payload: dict | None = None, **payload_changes) -> str:
    """A scenario line of `input_type`, its payload the valid one with `payload_changes`."""
    return json.dumps(
        {"type": input_type, "payload": {**(payload or VALID_PAYLOADS[input_type]), **payload_changes}}, ensure_ascii=False
    )


def error_of(text: str, line_no: int = 7) -> LineError:
    result = parse_line(line_no, text)
    assert isinstance(result, LineError), result
    return result


def test_there_is_a_valid_example_of_every_line_type():
    assert set(VALID_PAYLOADS) == set(INPUT_TYPES)


@pytest.mark.parametrize("input_type", sorted(VALID_PAYLOADS))
def test_a_valid_line_of_each_type_parses_into_its_model(input_type):
    result = parse_line(3, line(input_type))
    assert isinstance(result, ScenarioLine), result
    assert (result.line_no, result.type) == (3, input_type)
    assert type(result.model) is INPUT_TYPES[input_type]
    assert json.loads(json.dumps(result.payload)) == result.payload


def test_a_parsed_payload_is_json_ready_with_quantities_as_exact_text():
    result = parse_line(1, line("harvest.recorded"))
    assert result.payload["quantity"] == "1200"
    assert result.payload["contributions"][0] == {"household_id": "h1", "quantity": "700"}
    assert result.payload["available_from"] == "2020-08-01"


def test_a_json_number_with_a_fraction_is_kept_as_an_exact_decimal():
    text = '{"type": "delivery.confirmed", "payload": {"lot_id": "L1", "outlet_id": "O1", "quantity": 12.5}}'
    result = parse_line(1, text)
    assert result.model.quantity == Decimal("12.5")
    assert result.payload["quantity"] == "12.5"


def test_a_json_number_that_a_float_cannot_hold_is_kept_exactly():
    text = '{"type": "delivery.confirmed", "payload": {"lot_id": "L1", "outlet_id": "O1", "quantity": 0.3}}'
    assert parse_line(1, text).model.quantity == Decimal("0.3")


def test_a_line_that_is_not_json_is_named_by_its_number():
    error = error_of('{"type": "order.cancelled", "payload": {', line_no=7)
    assert (error.line_no, error.field) == (7, "(line)")
    assert error.reason.startswith("not valid JSON")
    assert str(error).startswith("line 7: (line): not valid JSON")


@pytest.mark.parametrize("text", ["[]", '"order.cancelled"', "12"])
def test_a_line_that_is_not_an_object_is_refused(text):
    assert error_of(text).field == "(line)"


def test_a_line_of_an_unknown_type_names_the_type_field():
    error = error_of(json.dumps({"type": "order.teleported", "payload": {}}))
    assert error.field == "type"
    assert "'order.teleported'" in error.reason and "order.placed" in error.reason


def test_a_line_without_a_type_names_the_type_field():
    assert error_of(json.dumps({"payload": {"order_id": "O1"}})).field == "type"


def test_a_line_with_an_unknown_top_level_key_is_refused():
    error = error_of(json.dumps({"type": "order.cancelled", "payload": {"order_id": "O1"}, "priority": "high"}))
    assert error.field == "priority"
    assert "unknown field" in error.reason


def test_a_line_whose_payload_is_not_an_object_names_the_payload():
    error = error_of(json.dumps({"type": "order.cancelled", "payload": "O1"}))
    assert (error.field, error.reason) == ("payload", "must be an object")


def test_a_missing_field_is_named_under_payload():
    payload = {key: value for key, value in VALID_PAYLOADS["order.placed"].items() if key != "limit_price_fen"}
    error = error_of(line("order.placed", payload))
    assert (error.field, error.reason) == ("payload.limit_price_fen", "Field required")


def test_a_wrong_field_deep_in_the_payload_is_named_by_its_path():
    contributions = [{"household_id": "h1", "quantity": 0}, {"household_id": "h2", "quantity": 500}]
    error = error_of(line("harvest.recorded", contributions=contributions))
    assert error.field == "payload.contributions.0.quantity"
    assert "greater than 0" in error.reason


def test_a_badly_formed_date_is_named_with_the_reason():
    error = error_of(line("harvest.recorded", available_from="2020/08/01"))
    assert error.field == "payload.available_from"
    assert "YYYY-MM-DD" in error.reason


def test_a_price_given_as_text_is_refused():
    error = error_of(line("order.placed", limit_price_fen="850"))
    assert error.field == "payload.limit_price_fen"


def test_an_unknown_payload_field_is_named():
    error = error_of(line("order.cancelled", reason="changed mind"))
    assert (error.field, error.reason) == ("payload.reason", "Extra inputs are not permitted")


def test_a_window_out_of_order_is_named_as_the_payload():
    error = error_of(line("harvest.recorded", available_from="2020-08-11", expires_on="2020-08-10"))
    assert "available_from must not be after expires_on" in error.reason
    assert error.field == "payload"


def test_a_window_out_of_order_is_refused_with_the_reason():
    error = error_of(line("harvest.recorded", available_from="2020-08-11", expires_on="2020-08-10"))
    assert "available_from must not be after expires_on" in error.reason


# ---------------------------------------------------------------- whole files


def test_a_scenario_file_skips_blank_and_comment_lines_and_keeps_the_files_line_numbers(tmp_path):
    scenario = tmp_path / "yanhe.jsonl"
    scenario.write_text(
        "\n".join(
            [
                "# Fengjia village joins, then sells chili",  # 1
                line("cooperative.registered"),  # 2
                "",  # 3
                "   ",  # 4
                line("harvest.recorded"),  # 5
                "    # an indented comment",  # 6
                '{"type": "order.placed", "payload": ',  # 7
                line("order.cancelled"),  # 8
            ]
        )
        + "\n",
        encoding="utf-8",
    )
    results = read_scenario(scenario)
    assert [result.line_no for result in results] == [2, 5, 7, 8]
    assert [type(result) for result in results] == [ScenarioLine, ScenarioLine, LineError, ScenarioLine]
    assert str(results[2]).startswith("line 7: (line):")


def test_a_scenario_file_keeps_chinese_names(tmp_path):
    scenario = tmp_path / "yanhe.jsonl"
    scenario.write_text(line("cooperative.registered") + "\n", encoding="utf-8")
    [registered] = read_scenario(scenario)
    assert registered.payload["county"] == "沿河"


def test_an_empty_scenario_file_has_no_lines(tmp_path):
    scenario = tmp_path / "empty.jsonl"
    scenario.write_text("", encoding="utf-8")
    assert read_scenario(scenario) == []
