"""What people and buyer systems read: the fill record, floor activations, and how inputs are keyed."""

import json

import pytest

from farmlink.producers.publisher import input_key
from farmlink.buyers.reports import FILL_FIELDS, fill_output, floor_activations
from farmlink.producers.scenario import ScenarioLine, parse_line

pytestmark = pytest.mark.unit


def fill_made(**changes) -> dict:
    """A recorded FillMade payload, as read back from the matching store."""
    return {
        "fill_id": "chili-1",
        "product": "chili",
        "position": 1,
        "journal_seq": 4,
        "lot_id": "L1",
        "cooperative_id": "co1",
        "grade": "A",
        "outlet_kind": "order",
        "outlet_id": "O1",
        "buyer_id": "canteen-1",
        "quantity": "1200.000",
        "unit_price_fen": 850,
        "price_basis": "order_limit",
        "revenue_fen": 1_020_000,
        "household_income_fen": {"h2": 425_000, "h10": 170_000, "h1": 425_000},
        "floor_price_fen": None,
        "market_price_fen": None,
        "price_as_of": None,
        **changes,
    }


def floor_fill(**changes) -> dict:
    return fill_made(
        outlet_kind="commitment",
        outlet_id="C1",
        buyer_id="yuping",
        product="oil_tea_fruit",
        quantity="12.50",
        unit_price_fen=450,
        price_basis="market",
        revenue_fen=5625,
        floor_price_fen=400,
        market_price_fen=450,
        price_as_of="2020-10-02",
        **changes,
    )


# ---------------------------------------------------------------- fill_output


def test_a_fill_is_output_with_exactly_the_contracts_nine_fields_in_order():
    assert list(fill_output(fill_made())) == [
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
    assert FILL_FIELDS == tuple(fill_output(fill_made()))


@pytest.mark.parametrize(
    ("stored", "shown"), [("1200.000", "1200"), ("1.2E+3", "1200"), ("12.50", "12.5"), ("0.001", "0.001"), (1200, "1200")]
)
def test_a_fill_quantity_is_plain_decimal_text(stored, shown):
    assert fill_output(fill_made(quantity=stored))["quantity"] == shown


def test_a_fills_households_are_sorted_by_id():
    assert list(fill_output(fill_made())["household_income_fen"]) == ["h1", "h10", "h2"]


def test_a_fill_output_keeps_its_values():
    record = fill_output(fill_made())
    assert (record["lot_id"], record["outlet_id"], record["unit_price_fen"], record["price_basis"], record["revenue_fen"]) == (
        "L1",
        "O1",
        850,
        "order_limit",
        1_020_000,
    )


def test_the_same_fill_always_gives_the_same_line():
    reordered = dict(reversed(list(fill_made().items())))
    assert json.dumps(fill_output(fill_made())) == json.dumps(fill_output(reordered))


# ---------------------------------------------------------------- floor_activations


def test_floor_activations_list_only_commitment_fills():
    activations = floor_activations([fill_made(), floor_fill(), fill_made(lot_id="L2"), floor_fill(lot_id="L3")])
    assert [(a["lot_id"], a["commitment_id"]) for a in activations] == [("L1", "C1"), ("L3", "C1")]


def test_a_floor_activation_shows_the_floor_against_the_market_and_which_set_the_price():
    [activation] = floor_activations([floor_fill()])
    assert activation == {
        "lot_id": "L1",
        "commitment_id": "C1",
        "buyer_id": "yuping",
        "price_as_of": "2020-10-02",
        "market_price_fen": 450,
        "floor_price_fen": 400,
        "unit_price_fen": 450,
        "price_basis": "market",
        "quantity": "12.5",
    }


def test_no_commitment_fills_means_no_floor_activations():
    assert floor_activations([fill_made(), fill_made(lot_id="L2")]) == []


# ---------------------------------------------------------------- input_key


def scenario_line(input_type: str, payload: dict) -> ScenarioLine:
    return ScenarioLine(line_no=1, type=input_type, payload=payload, model=None)


@pytest.mark.parametrize(
    ("payload", "key"),
    [
        ({"product": "chili", "order_id": "O1", "cooperative_id": "co1", "lot_id": "L1", "plan_id": "K1"}, "chili"),
        ({"order_id": "O1", "cooperative_id": "co1", "lot_id": "L1", "plan_id": "K1"}, "O1"),
        ({"cooperative_id": "co1", "lot_id": "L1", "plan_id": "K1"}, "co1"),
        ({"lot_id": "L1", "plan_id": "K1"}, "L1"),
        ({"plan_id": "K1"}, "K1"),
    ],
    ids=["product", "order_id", "cooperative_id", "lot_id", "plan_id"],
)
def test_an_input_is_keyed_by_its_product_else_by_its_entity_id_in_that_order(payload, key):
    assert input_key(scenario_line("any", payload)) == key


def test_an_input_without_any_key_field_is_keyed_by_its_type():
    assert input_key(scenario_line("order.cancelled", {"reason": "x"})) == "order.cancelled"


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ('{"type": "order.cancelled", "payload": {"order_id": "O1", "buyer_id": "b1"}}', "O1"),
        ('{"type": "delivery.confirmed", "payload": {"lot_id": "L1", "outlet_id": "O1", "quantity": 5}}', "L1"),
        ('{"type": "payment.made", "payload": {"lot_id": "L1", "outlet_id": "O1", "amount_fen": 5}}', "L1"),
        (
            '{"type": "market_price.observed", "payload": {"product": "chili", "grade": "A", "market": "Tongren",'
            ' "price_fen": 820, "observed_on": "2020-08-01"}}',
            "chili",
        ),
    ],
    ids=["cancellation", "delivery", "payment", "market-price"],
)
def test_a_parsed_scenario_line_is_keyed_like_its_payload_says(text, key):
    assert input_key(parse_line(1, text)) == key
