"""The contracts agree with each other: every event type registered with its topic and key, input messages and their
producers, and one table of input kinds that the services and the matcher's journal follow."""

import pytest

from contracts.envelope import Envelope
from contracts.inputs import INPUT_OWNER, INPUT_TYPES, MATCHER_INPUT_TYPES, SERVICE_INPUT_TOPIC, InputMessage, producer_of
from contracts.registry import EVENT_MODELS, EVENT_TOPIC, LATEST_VERSION, MODELS_BY_TYPE, event_key
from contracts.topics import TOPICS
from tests.payloads import errors_of, locations

pytestmark = pytest.mark.unit


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
