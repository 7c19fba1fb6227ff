"""Settlement rules: deliveries within a fill, payments within its revenue, each payment split to the fen."""

from decimal import Decimal

import pytest

from contracts.inputs import DeliveryConfirmation, PaymentReport
from events.consumer import Rejection
from services.settlement.domain import FillAccount, confirm_delivery, make_payment

pytestmark = pytest.mark.unit

D = Decimal


def fill(*, delivered: str = "0", paid_fen: int = 0, quantity: str = "500", revenue_fen: int = 425_000) -> FillAccount:
    """500 kg of lot L1 went to order O1 at 8.50 yuan a kg."""
    return FillAccount(
        lot_id="L1",
        outlet_id="O1",
        buyer_id="canteen-1",
        product="chili",
        cooperative_id="co1",
        quantity=D(quantity),
        revenue_fen=revenue_fen,
        delivered=D(delivered),
        paid_fen=paid_fen,
    )


def payment(amount_fen: int) -> PaymentReport:
    return PaymentReport(lot_id="L1", outlet_id="O1", amount_fen=amount_fen)


def delivery(quantity: str) -> DeliveryConfirmation:
    return DeliveryConfirmation(lot_id="L1", outlet_id="O1", quantity=quantity)


def rejection_of(decide, *args) -> str:
    with pytest.raises(Rejection) as caught:
        decide(*args)
    return str(caught.value)


CONTRIBUTIONS = {"h1": D("100"), "h2": D("50")}


# ---------------------------------------------------------------- payments


def test_a_payment_for_no_fill_is_rejected():
    reason = rejection_of(make_payment, payment(1000), None, CONTRIBUTIONS)
    assert reason == "payload.outlet_id: there is no fill of lot L1 to outlet O1"


def test_a_payment_over_the_fills_revenue_is_rejected():
    reason = rejection_of(make_payment, payment(425_001), fill(), CONTRIBUTIONS)
    assert reason.startswith("payload.amount_fen: 425001 more would pay 425001 fen")
    assert "revenue of 425000 fen" in reason


def test_payments_over_the_revenue_in_all_are_rejected():
    reason = rejection_of(make_payment, payment(200_001), fill(paid_fen=225_000), CONTRIBUTIONS)
    assert reason.startswith("payload.amount_fen: 200001 more would pay 425001 fen")


def test_the_last_payment_may_bring_the_total_exactly_to_the_revenue():
    assert make_payment(payment(200_000), fill(paid_fen=225_000), CONTRIBUTIONS).amount_fen == 200_000


def test_a_payment_is_split_to_households_by_largest_remainder():
    event = make_payment(payment(50_000), fill(), CONTRIBUTIONS)
    assert event.household_income_fen == {"h1": 33_333, "h2": 16_667}
    assert sum(event.household_income_fen.values()) == event.amount_fen


@pytest.mark.parametrize("amount_fen", [1, 2, 3, 7, 99_999, 425_000])
def test_the_split_always_adds_up_to_the_amount_paid(amount_fen):
    contributions = {"h1": D("0.7"), "h2": D("333.3"), "h3": D("166")}
    assert sum(make_payment(payment(amount_fen), fill(), contributions).household_income_fen.values()) == amount_fen


def test_a_payment_names_the_fill_it_pays_for():
    event = make_payment(payment(50_000), fill(), CONTRIBUTIONS)
    assert (event.lot_id, event.outlet_id, event.buyer_id, event.product, event.cooperative_id) == (
        "L1",
        "O1",
        "canteen-1",
        "chili",
        "co1",
    )


# ---------------------------------------------------------------- deliveries


def test_a_delivery_within_the_fill_is_confirmed():
    event = confirm_delivery(delivery("200"), fill(delivered="300"))
    assert (event.lot_id, event.outlet_id, event.buyer_id, event.product, event.quantity) == (
        "L1",
        "O1",
        "canteen-1",
        "chili",
        D("200"),
    )


def test_a_delivery_over_the_fills_quantity_is_rejected():
    reason = rejection_of(confirm_delivery, delivery("500.001"), fill())
    assert reason == "payload.quantity: 500.001 more would deliver 500.001, over the fill's 500"


def test_deliveries_over_the_fills_quantity_in_all_are_rejected():
    reason = rejection_of(confirm_delivery, delivery("201"), fill(delivered="300"))
    assert reason == "payload.quantity: 201 more would deliver 501, over the fill's 500"


def test_a_delivery_for_no_fill_is_rejected():
    reason = rejection_of(confirm_delivery, delivery("1"), None)
    assert reason == "payload.outlet_id: there is no fill of lot L1 to outlet O1"
