"""The buyer's rules: orders placed once, cancelled once, and floor commitments that make sense."""

from datetime import date
from decimal import Decimal

import pytest
from pydantic import ValidationError

from contracts.inputs import Commitment, OrderCancellationRequest, OrderPlacement
from events.consumer import Rejection
from services.buyer.domain import KnownOrder, cancel_order, make_commitment, place_order
from tests import payloads

pytestmark = pytest.mark.unit


def placement(**changes) -> OrderPlacement:
    return OrderPlacement.model_validate(
        {
            "order_id": "O1",
            "buyer_id": "canteen-1",
            "product": "chili",
            "min_grade": "B",
            "quantity": "500",
            "limit_price_fen": 850,
            "deliver_from": "2020-08-01",
            "deliver_to": "2020-08-31",
            "regions": ["沿河"],
            **changes,
        }
    )


def commitment(**changes) -> dict:
    """Yuping buys Yanhe's oil-tea fruit at the market price, never below 4 yuan a kg (tests/payloads.py), from 沿河."""
    return payloads.commitment(**{"eligible_counties": ["沿河"], **changes})


def rejection_of(decide, *args) -> str:
    with pytest.raises(Rejection) as caught:
        decide(*args)
    return str(caught.value)


# ---------------------------------------------------------------- orders


def test_a_new_order_is_placed_as_given():
    event = place_order(placement(), already_placed=False, buyer_known=True)
    assert (event.order_id, event.buyer_id, event.product, event.quantity, event.limit_price_fen) == (
        "O1",
        "canteen-1",
        "chili",
        Decimal("500"),
        850,
    )
    assert (event.deliver_from, event.deliver_to, event.regions) == (date(2020, 8, 1), date(2020, 8, 31), ("沿河",))


def test_an_order_cannot_be_placed_twice():
    assert rejection_of(place_order, placement(), True, True) == "payload.order_id: order O1 was already placed"


def test_cancelling_an_unknown_order_is_rejected():
    assert (
        rejection_of(cancel_order, OrderCancellationRequest(order_id="O9", buyer_id="canteen-1"), None)
        == "payload.order_id: unknown order O9"
    )


def test_cancelling_an_order_twice_is_rejected():
    cancelled = KnownOrder(order_id="O1", buyer_id="canteen-1", product="chili", cancelled=True)
    reason = rejection_of(cancel_order, OrderCancellationRequest(order_id="O1", buyer_id="canteen-1"), cancelled)
    assert reason == "payload.order_id: order O1 is already cancelled"


def test_a_cancellation_carries_the_product_and_buyer_of_the_known_order():
    known = KnownOrder(order_id="O1", buyer_id="canteen-1", product="black_fungus", cancelled=False)
    event = cancel_order(OrderCancellationRequest(order_id="O1", buyer_id="canteen-1"), known)
    assert (event.order_id, event.buyer_id, event.product) == ("O1", "canteen-1", "black_fungus")


# ---------------------------------------------------------------- floor commitments


def test_a_new_commitment_is_made_as_offered():
    event = make_commitment(Commitment.model_validate(commitment(cap_quantity="100000")), already_made=False, buyer_known=True)
    assert (event.commitment_id, event.buyer_id, event.floor_price_fen, event.cap_quantity) == (
        "C1",
        "yuping",
        400,
        Decimal("100000"),
    )
    assert (event.eligible_counties, event.eligible_cooperatives, event.max_quantity_per_mu) == (("沿河",), (), None)


def test_a_commitment_cannot_be_made_twice():
    reason = rejection_of(make_commitment, Commitment.model_validate(commitment()), True, True)
    assert reason == "payload.commitment_id: commitment C1 was already made"


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"floor_price_fen": 0}, ("floor_price_fen",)),
        ({"floor_price_fen": -400}, ("floor_price_fen",)),
        ({"cap_quantity": "0"}, ("cap_quantity",)),
        ({"max_quantity_per_mu": "0"}, ("max_quantity_per_mu",)),
    ],
    ids=["floor-zero", "floor-negative", "cap-zero", "per-mu-zero"],
)
def test_a_commitment_without_a_positive_floor_or_cap_is_refused(changes, field):
    with pytest.raises(ValidationError) as caught:
        Commitment.model_validate(commitment(**changes))
    assert [error["loc"] for error in caught.value.errors()] == [field]


def test_a_commitment_valid_from_after_valid_to_is_refused():
    with pytest.raises(ValidationError, match="valid_from must not be after valid_to"):
        Commitment.model_validate(commitment(valid_from="2021-01-01", valid_to="2020-12-31"))


def test_a_commitment_valid_for_a_single_day_is_accepted():
    assert Commitment.model_validate(commitment(valid_from="2020-10-01", valid_to="2020-10-01")).valid_to == date(2020, 10, 1)
