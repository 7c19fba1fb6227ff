"""Per-party topics: the name mapping of a free-text party id, the party principal's ACLs, and which party
each record the feeds service reads belongs to."""

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from contracts.topics import PARTY_TOPIC_PREFIX, TOPICS, party_name, party_token, party_topic
from events.access import BUYER_INPUT, COOPERATIVE_INPUT, OFFERS, PARTY_REGISTRAR, BY_NAME, party_acl_bindings, party_principal
from events.consumer import PRODUCER_HEADER, Delivery
from farmlink.operations.parties import PartyError, parse_party
from services.feeds.app import access_changes, parties_of

pytestmark = pytest.mark.unit

LEGAL_TOPIC = re.compile(r"^[a-zA-Z0-9._-]{1,249}$")
PARTY_IDS = st.text(alphabet=st.characters(blacklist_categories=("Cs", "Cc", "Zs", "Zl", "Zp")), min_size=1, max_size=128)


def test_a_readable_id_keeps_its_words_then_a_hash():
    assert party_topic("buyer", "Tongren school canteens").startswith("farmlink.party.buyer.tongren-school-canteens-")
    assert re.fullmatch(r"tongren-school-canteens-[0-9a-f]{16}", party_token("Tongren school canteens"))


def test_an_id_without_ascii_letters_is_its_hash_alone():
    assert re.fullmatch(r"[0-9a-f]{16}", party_token("铜仁学校食堂"))


def test_ids_that_slug_alike_get_different_tokens():
    alike = ["yanhe-no-1", "Yanhe No.1", "yanhe no 1", "YANHE_NO_1", "yanhe--no--1"]
    assert len({party_token(i) for i in alike}) == len(alike)
    assert len({party_token(i)[:-17] for i in alike}) == 1  # the same readable part, told apart by the hash


def test_the_mapping_is_a_function_of_the_id_alone():
    assert party_topic("cooperative", "Ketian goat coop") == party_topic("cooperative", "Ketian goat coop")
    assert party_topic("buyer", "x") != party_topic("cooperative", "x")


@given(PARTY_IDS)
def test_every_id_maps_to_a_legal_kafka_topic_name_without_dots_in_its_token(party_id):
    for kind in ("buyer", "cooperative"):
        assert LEGAL_TOPIC.fullmatch(party_topic(kind, party_id))
    assert re.fullmatch(r"[a-z0-9-]+", party_token(party_id))
    assert len(party_token(party_id)) <= 40 + 1 + 16


@given(st.lists(PARTY_IDS, min_size=2, max_size=50, unique=True))
def test_distinct_ids_get_distinct_topics(ids):
    assert len({party_topic("buyer", i) for i in ids}) == len(ids)


def test_no_party_topic_is_one_of_farmlinks_own_topics_and_only_two_kinds_have_one():
    assert not any(t.name.startswith(PARTY_TOPIC_PREFIX) for t in TOPICS)
    with pytest.raises(ValueError, match="price-feed"):
        party_name("price-feed", "Tongren")


def test_a_buyer_principal_reads_its_own_topic_and_the_offers_and_writes_buyer_input():
    principal = party_principal("buyer", "Tongren school canteens")
    assert principal.name == party_name("buyer", "Tongren school canteens")
    assert set(principal.read) == {party_topic("buyer", "Tongren school canteens"), OFFERS}
    assert principal.write == (BUYER_INPUT,)
    bindings = {
        (a.resource_type, a.resource_name, a.pattern_type, a.operation)
        for a in party_acl_bindings("buyer", "Tongren school canteens")
    }
    assert ("GROUP", f"{principal.name}.", "PREFIXED", "READ") in bindings
    assert all(a[2] == "LITERAL" for a in bindings if a[0] == "TOPIC"), "a party gets no prefixed topic grant"


def test_a_cooperative_principal_reads_only_its_own_topic():
    principal = party_principal("cooperative", "Ketian goat coop")
    assert principal.read == (party_topic("cooperative", "Ketian goat coop"),)
    assert principal.write == (COOPERATIVE_INPUT,)


def test_only_the_registrar_may_alter_the_cluster():
    assert [p.name for p in BY_NAME.values() if p.cluster] == [PARTY_REGISTRAR]


def test_the_parties_command_takes_kind_colon_id():
    assert parse_party("buyer:Tongren school canteens") == ("buyer", "Tongren school canteens")
    for bad in ("Tongren", "buyer:", "price-feed:Tongren"):
        with pytest.raises(PartyError, match="buyer:<buyer_id>"):
            parse_party(bad)


# -- which party a record belongs to (services/feeds) ------------------------------------------------


def _delivery(topic: str, value: bytes, headers=()) -> Delivery:
    return Delivery(topic=topic, partition=0, offset=7, key=b"k", value=value, headers=list(headers))


def test_a_receipt_goes_to_the_party_its_producer_header_names_and_nowhere_without_one():
    from contracts.inputs import Receipt

    receipt = Receipt(correlation_id="c", message_id="m", service="buyer", status="accepted")
    named = _delivery("farmlink.receipts", receipt.model_dump_json().encode(), [(PRODUCER_HEADER, b"buyer:Yuping:canteen")])
    assert parties_of(named, receipt) == [("buyer", "Yuping:canteen")]
    assert parties_of(_delivery("farmlink.receipts", b"{}"), receipt) == []
    desk = _delivery("farmlink.receipts", b"{}", [(PRODUCER_HEADER, b"settlement-desk:main")])
    assert parties_of(desk, receipt) == []


def test_a_batch_asks_the_registrar_for_its_topics_and_registrations_in_record_order_and_skips_bad_bytes():
    import uuid
    from datetime import datetime, timezone

    from contracts.buyer import BuyerRegistered
    from contracts.envelope import Envelope
    from contracts.parties import BuyerKeyRevoked

    def envelope(event, n: int) -> bytes:
        return (
            Envelope(
                event_id=uuid.uuid4(),
                event_type=event.event_type,
                schema_version=event.schema_version,
                stream_id="buyer-b",
                stream_version=n,
                occurred_at=datetime(2020, 5, 1, tzinfo=timezone.utc),
                producer="service:buyer",
                correlation_id="c",
                payload=event.model_dump(mode="json"),
            )
            .model_dump_json()
            .encode()
        )

    key = "A" * 43
    registered = BuyerRegistered(buyer_id="b", name="B", public_key=key)
    revoked = BuyerKeyRevoked(party_id="b", public_key=key, reason="leaked")
    topics, changes = access_changes(
        [
            _delivery("farmlink.buyer.events", envelope(registered, 1)),
            _delivery("farmlink.buyer.events", b"not json"),
            _delivery("farmlink.buyer.events", envelope(revoked, 2)),
        ]
    )
    assert topics == {party_topic("buyer", "b")}
    assert changes == [("register", "buyer", "b"), ("revoke", "buyer", "b")]


def test_a_rejected_receipt_naming_an_unknown_party_makes_no_topic_and_is_copied_only_where_the_party_has_one(monkeypatch):
    from contracts.inputs import Receipt
    from events.consumer import Decoded
    from events.unit import MemoryUnitOfWork
    from services.feeds import app as feeds

    rejected = Receipt(correlation_id="c", message_id="m", service="buyer", status="rejected", reason="bad signature")
    accepted = Receipt(correlation_id="c", message_id="n", service="buyer", status="accepted")

    def receipt(model: Receipt, producer: bytes) -> Delivery:
        return _delivery("farmlink.receipts", model.model_dump_json().encode(), [(PRODUCER_HEADER, producer)])

    forged = receipt(rejected, b"buyer:nobody-registered-this")
    topics, _ = access_changes([forged, receipt(accepted, b"buyer:known")])
    assert topics == {party_topic("buyer", "known")}, "only the accepted receipt proves its party"

    monkeypatch.setattr(feeds.registrar, "known_topics", {party_topic("buyer", "known")})
    monkeypatch.setattr(feeds.registrar, "_listed", True)
    uow = MemoryUnitOfWork("feeds", "service:feeds", lambda envelope: None)
    for delivery, model in ((forged, rejected), (receipt(rejected, b"buyer:known"), rejected)):
        feeds.forward(uow, Decoded((delivery, model), message_id=model.message_id, correlation_id="c"))
        uow.keep()
    assert [topic for topic, *_ in uow.messages] == [party_topic("buyer", "known")]
