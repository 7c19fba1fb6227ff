"""Input payloads for the tests, built in ONE place: a valid payload of each input type (each change given replaces a
field), the Fengjia story the end-to-end tests tell (README.md's curl session), and where pydantic says a payload fails.

Random streams of inputs come from the one workload generator (farmlink/operations/workload.py); hypothesis draws
payloads from the models' JSON Schemas (tests/strategies.py)."""

from decimal import Decimal

import pytest
from pydantic import ValidationError

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


def price(**changes) -> dict:
    """A valid market_price.observed payload: grade-A chili at the Tongren market."""
    return {"product": "chili", "grade": "A", "market": "Tongren", "price_fen": 450, "observed_on": "2020-08-02", **changes}


def plan(**changes) -> dict:
    """A valid plan.recorded payload: Ketian's 2,000 mu of chili at 24,000 yuan a household."""
    return {
        "plan_id": "plan-ketian-chili",
        "county": "Yanhe",
        "township": "Ketian",
        "product": "chili",
        "area_mu": "2000",
        "target_household_income_fen": 2400000,
        **changes,
    }


# ---------------------------------------------------------------- the Fengjia story of the end-to-end tests


def fengjia(*households: tuple[str, bool]) -> dict:
    """Fengjia cooperative (Ketian, Yanhe) registering these (household_id, registered_poor) households."""
    return {
        "cooperative_id": "fengjia",
        "name": "Fengjia",
        "county": "Yanhe",
        "township": "Ketian",
        "village": "Fengjia",
        "households": [{"household_id": household_id, "registered_poor": poor} for household_id, poor in households],
    }


def fengjia_lot(lot_id: str, quantity: str = "100") -> dict:
    """Fengjia's grade-A chili, all from household fj-1, on the market from 2020-08-01 to 2020-08-20."""
    return harvest(
        lot_id=lot_id,
        cooperative_id="fengjia",
        quantity=quantity,
        expires_on="2020-08-20",
        contributions=[{"household_id": "fj-1", "quantity": quantity}],
    )


def chili_order(order_id: str, buyer_id: str = "tongren-mart", quantity: str = "80", limit_price_fen: int = 500) -> dict:
    """A buyer's order for grade-B-or-better chili delivered in August 2020, from any region."""
    return order(order_id=order_id, buyer_id=buyer_id, quantity=quantity, limit_price_fen=limit_price_fen, regions=[])


def errors_of(model: type, data: dict) -> list[dict]:
    with pytest.raises(ValidationError) as caught:
        model.model_validate(data)
    return caught.value.errors()


def locations(model: type, data: dict) -> list[tuple]:
    return [error["loc"] for error in errors_of(model, data)]
