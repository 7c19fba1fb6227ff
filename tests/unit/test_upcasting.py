"""Upcasting: an old version of an event is read as the current one, one step at a time."""

from datetime import date

import pytest
from pydantic import ValidationError

from contracts.market import MarketPriceObserved
from contracts.registry import LATEST_VERSION
from events import upcasting
from events.upcasting import UPCASTERS, decode, upcast

pytestmark = pytest.mark.unit

LATEST = {"LotGraded": 3}


def v1_to_v2(payload: dict) -> dict:
    """v2 renamed `kg` to `quantity`."""
    rest = {key: value for key, value in payload.items() if key != "kg"}
    return {**rest, "quantity": payload["kg"]}


def v2_to_v3(payload: dict) -> dict:
    """v3 added the grade, C when unknown."""
    return {**payload, "grade": "C"}


STEPS = {("LotGraded", 1): v1_to_v2, ("LotGraded", 2): v2_to_v3}


def test_a_v1_payload_is_upcast_through_v2_to_v3():
    assert upcast("LotGraded", 1, {"lot_id": "L1", "kg": "12.5"}, latest=LATEST, upcasters=STEPS) == (
        3,
        {"lot_id": "L1", "quantity": "12.5", "grade": "C"},
    )


def test_a_v2_payload_takes_only_the_last_step():
    assert upcast("LotGraded", 2, {"lot_id": "L1", "quantity": "1"}, latest=LATEST, upcasters=STEPS) == (
        3,
        {"lot_id": "L1", "quantity": "1", "grade": "C"},
    )


def test_the_steps_run_in_version_order():
    ran = []
    steps = {
        ("LotGraded", 1): lambda payload: ran.append(1) or payload,
        ("LotGraded", 2): lambda payload: ran.append(2) or payload,
    }
    upcast("LotGraded", 1, {}, latest=LATEST, upcasters=steps)
    assert ran == [1, 2]


def test_a_payload_at_the_latest_version_is_left_as_it_is():
    payload = {"lot_id": "L1", "quantity": "1", "grade": "A"}
    assert upcast("LotGraded", 3, payload, latest=LATEST, upcasters={}) == (3, payload)


def test_an_event_type_without_a_known_latest_version_is_left_as_it_is():
    assert upcast("SomethingElse", 4, {"a": 1}, latest=LATEST, upcasters=STEPS) == (4, {"a": 1})


def test_a_missing_upcaster_is_a_lookup_error_naming_the_step():
    with pytest.raises(LookupError, match="no upcaster from LotGraded v2 to v3"):
        upcast("LotGraded", 1, {"kg": "1"}, latest=LATEST, upcasters={("LotGraded", 1): v1_to_v2})


def test_registering_an_upcaster_records_it_for_its_type_and_version(monkeypatch):
    registry: dict = {}
    monkeypatch.setattr(upcasting, "UPCASTERS", registry)

    @upcasting.register("LotGraded", 1)
    def step(payload: dict) -> dict:
        return payload

    assert registry == {("LotGraded", 1): step}


@pytest.mark.parametrize("event_type", sorted(LATEST_VERSION))
def test_every_event_type_above_v1_can_be_upcast_from_every_earlier_version(event_type):
    missing = [version for version in range(1, LATEST_VERSION[event_type]) if (event_type, version) not in UPCASTERS]
    assert not missing, f"{event_type}: no upcaster from v{missing}"


def observed_price(**changes) -> dict:
    return {"product": "chili", "grade": "A", "market": "Tongren", "price_fen": 850, "observed_on": "2020-08-01", **changes}


def test_decode_reads_a_current_payload_as_its_model():
    event = decode("MarketPriceObserved", 1, observed_price())
    assert isinstance(event, MarketPriceObserved)
    assert (event.price_fen, event.observed_on) == (850, date(2020, 8, 1))


def test_decode_validates_the_payload():
    with pytest.raises(ValidationError):
        decode("MarketPriceObserved", 1, observed_price(price_fen="850"))


def test_decode_refuses_an_unknown_event_type():
    with pytest.raises(LookupError, match="unknown event type LotTeleported v1"):
        decode("LotTeleported", 1, {})


def test_decode_refuses_a_version_newer_than_any_it_knows():
    with pytest.raises(LookupError, match="MarketPriceObserved v3"):
        decode("MarketPriceObserved", 3, observed_price())
