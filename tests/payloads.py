"""Valid input payloads for the contract tests (each change given replaces a field), and where pydantic says they fail."""

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


def errors_of(model: type, data: dict) -> list[dict]:
    with pytest.raises(ValidationError) as caught:
        model.model_validate(data)
    return caught.value.errors()


def locations(model: type, data: dict) -> list[tuple]:
    return [error["loc"] for error in errors_of(model, data)]
