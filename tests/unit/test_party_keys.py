"""Every party signs: price feeds and settlement desks register their keys like cooperatives and
buyers; a rotation (signed with the current key) replaces the key and a revocation ends it, from
its place in the log on; and the audit, reading only the log, applies the same rules.

The services' own handlers run on in-memory units of work (as `farmlink simulate` runs them), so
these are the live rules, without Kafka or PostgreSQL; the end-to-end test runs them live."""

import dataclasses

import pytest

from contracts.signing import new_private_key, public_key_of
from farmlink.audit.model import AuditLog
from farmlink.audit.signatures import check_signatures
from tests.memory_services import Party
from services.cooperative import app as cooperative
from services.market import app as market
from services.settlement import app as settlement

pytestmark = pytest.mark.unit

PRICE = {"product": "oil_tea_fruit", "grade": "A", "market": "Tongren", "price_fen": 450, "observed_on": "2020-10-01"}


def test_a_price_from_a_market_whose_feed_never_registered_is_refused():
    feed = Party(market, "price-feed:Tongren")
    accepted, reason = feed.send("market_price.observed", PRICE, new_private_key())
    assert not accepted
    assert reason.startswith(
        "payload.market: unknown price-feed Tongren; a market's price feed registers (price_feed.registered)"
    )


def test_a_registered_feed_reports_prices_signed_with_its_key_and_the_audit_verifies_them():
    feed, key = Party(market, "price-feed:Tongren"), new_private_key()
    assert feed.send(
        "price_feed.registered", {"market": "Tongren", "name": "Tongren market", "public_key": public_key_of(key)}, key
    )[0]
    assert feed.send("market_price.observed", PRICE, key)[0]
    assert check_signatures(feed.audit_log()) == []


def test_a_feed_cannot_report_another_markets_price_nor_sign_with_another_key():
    feed, key = Party(market, "price-feed:Tongren"), new_private_key()
    feed.send("price_feed.registered", {"market": "Tongren", "name": "Tongren market", "public_key": public_key_of(key)}, key)
    accepted, reason = feed.send("market_price.observed", {**PRICE, "market": "Zunyi"}, key)
    assert not accepted and reason.startswith("producer: price-feed:Tongren cannot submit for price-feed Zunyi")
    accepted, reason = feed.send("market_price.observed", PRICE, new_private_key())
    assert not accepted and reason == "signature: does not verify with the key registered for price-feed Tongren"


def test_registering_the_same_feed_again_with_the_same_key_changes_nothing_but_another_key_is_refused():
    feed, key = Party(market, "price-feed:Tongren"), new_private_key()
    registration = {"market": "Tongren", "name": "Tongren market", "public_key": public_key_of(key)}
    assert feed.send("price_feed.registered", registration, key)[0]
    assert feed.send("price_feed.registered", registration, key)[0]
    assert [e.event_type for e in feed.uow.envelopes] == ["PriceFeedRegistered"]
    other = new_private_key()
    accepted, reason = feed.send("price_feed.registered", {**registration, "public_key": public_key_of(other)}, other)
    assert not accepted and "already registered with another key; a new key comes by price_feed.key_rotated" in reason


def test_after_a_rotation_the_new_key_signs_and_the_old_one_is_refused_and_the_audit_agrees():
    feed, old, new = Party(market, "price-feed:Tongren"), new_private_key(), new_private_key()
    feed.send("price_feed.registered", {"market": "Tongren", "name": "Tongren market", "public_key": public_key_of(old)}, old)
    assert feed.send("market_price.observed", PRICE, old)[0]
    assert feed.send("price_feed.key_rotated", {"party_id": "Tongren", "public_key": public_key_of(new)}, old)[0]
    accepted, reason = feed.send("market_price.observed", {**PRICE, "price_fen": 460}, old)
    assert not accepted and reason == "signature: does not verify with the key registered for price-feed Tongren"
    assert feed.send("market_price.observed", {**PRICE, "price_fen": 470}, new)[0]
    assert [e.event_type for e in feed.uow.envelopes] == [
        "PriceFeedRegistered",
        "MarketPriceObserved",
        "PriceFeedKeyRotated",
        "MarketPriceObserved",
    ]
    assert check_signatures(feed.audit_log()) == []


def test_a_rotation_must_be_signed_with_the_current_key():
    feed, key, thief = Party(market, "price-feed:Tongren"), new_private_key(), new_private_key()
    feed.send("price_feed.registered", {"market": "Tongren", "name": "Tongren market", "public_key": public_key_of(key)}, key)
    accepted, reason = feed.send("price_feed.key_rotated", {"party_id": "Tongren", "public_key": public_key_of(thief)}, thief)
    assert not accepted and reason.startswith("signature: does not verify")


def test_after_a_revocation_nothing_the_party_signs_is_accepted():
    coop, key = Party(cooperative, "cooperative:fengjia"), new_private_key()
    assert coop.send(
        "cooperative.registered",
        {
            "cooperative_id": "fengjia",
            "name": "Fengjia",
            "county": "Yanhe",
            "township": "Ketian",
            "village": "Fengjia",
            "households": [{"household_id": "fj-01", "registered_poor": True}],
            "public_key": public_key_of(key),
        },
        key,
    )[0]
    assert coop.send("cooperative.key_revoked", {"party_id": "fengjia", "reason": "the office PC was stolen"}, key)[0]
    accepted, reason = coop.send(
        "harvest.recorded",
        {
            "lot_id": "L1",
            "cooperative_id": "fengjia",
            "product": "chili",
            "grade": "A",
            "quantity": "5",
            "available_from": "2020-08-01",
            "expires_on": "2020-08-09",
            "contributions": [{"household_id": "fj-01", "quantity": "5"}],
        },
        key,
    )
    assert not accepted
    assert reason.startswith(
        "signature: the key of cooperative:fengjia was revoked ('the office PC was stolen', cooperative-keys-fengjia v1)"
    )
    accepted, _ = coop.send(
        "cooperative.key_rotated", {"party_id": "fengjia", "public_key": public_key_of(new_private_key())}, key
    )
    assert not accepted  # a revoked party cannot rotate its way back
    assert check_signatures(coop.audit_log()) == []


def test_the_audit_finds_an_input_recorded_after_its_partys_revocation():
    desk, key = Party(settlement, "settlement-desk:main", settlement.INPUTS), new_private_key()
    desk.send("settlement_desk.registered", {"desk_id": "main", "name": "county desk", "public_key": public_key_of(key)}, key)
    plan = {
        "plan_id": "K1",
        "county": "Yanhe",
        "township": "Ketian",
        "product": "chili",
        "area_mu": "2000",
        "target_household_income_fen": 2400000,
    }
    assert desk.send("plan.recorded", plan, key)[0]
    assert desk.send("settlement_desk.key_revoked", {"party_id": "main", "reason": "desk closed"}, key)[0]
    log = desk.audit_log()
    assert check_signatures(log) == []
    # the key's holder signs another plan; a forger puts it into the log after the revocation
    elsewhere = Party(settlement, "settlement-desk:main", settlement.INPUTS)
    elsewhere.send(
        "settlement_desk.registered", {"desk_id": "main", "name": "county desk", "public_key": public_key_of(key)}, key
    )
    elsewhere.send("plan.recorded", {**plan, "plan_id": "K2"}, key)
    records = log.by_schema["settlement"]
    forged = dataclasses.replace(elsewhere.audit_log().by_schema["settlement"][1], global_position=4)
    [finding] = check_signatures(AuditLog("memory", {"settlement": [*records, forged]}))
    assert "settlement-desk:main revoked its key at settlement/settlement-desk-keys-main@1" in finding.message


def test_the_audit_finds_a_price_signed_with_a_key_rotated_out_before_it():
    feed, old, new = Party(market, "price-feed:Tongren"), new_private_key(), new_private_key()
    feed.send("price_feed.registered", {"market": "Tongren", "name": "Tongren market", "public_key": public_key_of(old)}, old)
    feed.send("market_price.observed", PRICE, old)
    feed.send("price_feed.key_rotated", {"party_id": "Tongren", "public_key": public_key_of(new)}, old)
    records = feed.audit_log().by_schema["market"]
    # the earlier price, moved after the rotation: its signature is by the old key
    moved = dataclasses.replace(records[1], global_position=4)
    [finding] = check_signatures(AuditLog("memory", {"market": [records[0], records[2], moved]}))
    assert finding.message.startswith(
        "signature: does not verify with the key price-feed:Tongren registered at market/price-feed-keys-Tongren@1"
    )
