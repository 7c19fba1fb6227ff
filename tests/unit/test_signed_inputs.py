"""Who may submit what: cooperatives and buyers sign their inputs, and the services check the
producer, the signature, and the key registered for the cooperative or buyer the input names."""

import uuid

import pytest

from contracts.inputs import BuyerRegistration, CooperativeRegistration, InputMessage, OrderCancellationRequest
from contracts.signing import new_private_key, public_key_of, sign
from events.consumer import Rejection
from services.buyer import domain as buyer
from services.cooperative import domain as cooperative

pytestmark = pytest.mark.unit

FENGJIA_KEY, OTHER_KEY = new_private_key(), new_private_key()
HARVEST = {
    "lot_id": "L1",
    "cooperative_id": "fengjia",
    "product": "chili",
    "grade": "A",
    "quantity": "1",
    "available_from": "2020-08-01",
    "expires_on": "2020-08-02",
    "contributions": [{"household_id": "h1", "quantity": "1"}],
}


def message(kind: str, payload: dict, producer: str, key=None, **changes) -> InputMessage:
    fields = dict(message_id=uuid.uuid4().hex, type=kind, producer=producer, correlation_id="c1", payload=payload)
    signature = sign(key, fields) if key is not None else None
    return InputMessage(**{**fields, "signature": signature, **changes})


def rejection(decide, *args) -> str:
    with pytest.raises(Rejection) as caught:
        decide(*args)
    return str(caught.value)


def test_a_harvest_signed_with_its_cooperatives_registered_key_is_authentic_and_its_evidence_is_the_message_as_received():
    sent = message("harvest.recorded", HARVEST, "cooperative:fengjia", FENGJIA_KEY)
    evidence = cooperative.authenticate(sent, "fengjia", public_key_of(FENGJIA_KEY))
    assert evidence.model_dump() == sent.model_dump()


def test_an_unsigned_harvest_is_rejected_naming_the_signature():
    reason = rejection(
        cooperative.authenticate,
        message("harvest.recorded", HARVEST, "cooperative:fengjia"),
        "fengjia",
        public_key_of(FENGJIA_KEY),
    )
    assert reason.startswith("signature: missing")


def test_a_harvest_signed_with_another_key_does_not_verify_with_the_registered_one():
    sent = message("harvest.recorded", HARVEST, "cooperative:fengjia", OTHER_KEY)
    reason = rejection(cooperative.authenticate, sent, "fengjia", public_key_of(FENGJIA_KEY))
    assert reason == "signature: does not verify with the key registered for cooperative fengjia"


def test_a_harvest_whose_payload_changed_after_signing_does_not_verify():
    sent = message("harvest.recorded", HARVEST, "cooperative:fengjia", FENGJIA_KEY)
    tampered = sent.model_copy(update={"payload": {**HARVEST, "quantity": "100"}})
    assert rejection(cooperative.authenticate, tampered, "fengjia", public_key_of(FENGJIA_KEY)).startswith(
        "signature: does not verify"
    )


def test_another_cooperative_cannot_submit_for_fengjia_even_with_a_good_signature_of_its_own():
    sent = message("harvest.recorded", HARVEST, "cooperative:other", OTHER_KEY)
    reason = rejection(cooperative.authenticate, sent, "fengjia", public_key_of(FENGJIA_KEY))
    assert reason == "producer: cooperative:other cannot submit for cooperative fengjia; expected cooperative:fengjia"


def test_an_input_for_an_unregistered_cooperative_is_rejected_as_unknown():
    sent = message("harvest.recorded", HARVEST, "cooperative:fengjia", FENGJIA_KEY)
    assert rejection(cooperative.authenticate, sent, "fengjia", None) == "payload.cooperative_id: unknown cooperative fengjia"


def registration(key) -> CooperativeRegistration:
    return CooperativeRegistration(
        cooperative_id="fengjia",
        name="Fengjia",
        county="Yanhe",
        township="Ketian",
        village="Fengjia",
        households=[{"household_id": "h1", "registered_poor": True}],
        public_key=public_key_of(key) if key is not None else None,
    )


def test_a_registration_is_signed_with_the_key_it_registers():
    report = registration(FENGJIA_KEY)
    sent = message("cooperative.registered", report.model_dump(mode="json"), "cooperative:fengjia", FENGJIA_KEY)
    assert cooperative.authenticate_registration(sent, report).signature == sent.signature


def test_a_forged_registration_signed_with_another_key_than_the_one_it_carries_is_rejected():
    report = registration(FENGJIA_KEY)
    sent = message("cooperative.registered", report.model_dump(mode="json"), "cooperative:fengjia", OTHER_KEY)
    reason = rejection(cooperative.authenticate_registration, sent, report)
    assert reason == "signature: does not verify with the public key in the registration"


def test_a_registration_without_a_public_key_is_rejected_by_the_service_rule():
    report = registration(None)
    sent = message("cooperative.registered", report.model_dump(mode="json"), "cooperative:fengjia", FENGJIA_KEY)
    assert rejection(cooperative.authenticate_registration, sent, report).startswith("payload.public_key:")
    assert rejection(cooperative.register, report, False, {}).startswith("payload.public_key:")


def test_a_buyer_registers_once_with_a_key_and_orders_only_once_registered():
    report = BuyerRegistration(buyer_id="canteen", name="Tongren school canteens", public_key=public_key_of(OTHER_KEY))
    sent = message("buyer.registered", report.model_dump(mode="json"), "buyer:canteen", OTHER_KEY)
    buyer.authenticate_registration(sent, report)
    assert buyer.register_buyer(report, False).public_key == public_key_of(OTHER_KEY)
    assert rejection(buyer.register_buyer, report, True) == "payload.buyer_id: buyer canteen is already registered"
    order = message("order.placed", {"order_id": "O1", "buyer_id": "canteen"}, "buyer:canteen", OTHER_KEY)
    assert rejection(buyer.authenticate, order, "canteen", None).startswith("payload.buyer_id: unknown buyer canteen")


def test_only_the_buyer_who_placed_an_order_can_cancel_it():
    known = buyer.KnownOrder(order_id="O1", buyer_id="canteen", product="chili", cancelled=False)
    reason = rejection(buyer.cancel_order, OrderCancellationRequest(order_id="O1", buyer_id="mart"), known)
    assert reason == "payload.buyer_id: order O1 belongs to buyer canteen, not mart"


def test_a_buyer_cannot_sign_for_another_buyer():
    sent = message("order.cancelled", {"order_id": "O1", "buyer_id": "canteen"}, "buyer:mart", OTHER_KEY)
    assert rejection(buyer.authenticate, sent, "canteen", public_key_of(OTHER_KEY)).startswith(
        "producer: buyer:mart cannot submit"
    )
