"""Every party signs, on the real services: cooperatives, buyers, a market's price feed and the
settlement desk register keys, rotate them (a new key signed by the old one) and revoke them;
an input signed with a rotated-out key or after a revocation is refused from that place in the
log on; and the audit of the whole log (PostgreSQL and Kafka) is clean."""

import json
import tempfile
import uuid
from pathlib import Path

import pytest

from contracts.signing import public_key_of, sign
from contracts.topics import COOPERATIVE_INPUT, DEAD_LETTER
from events.relay import idempotent_producer
from farmlink.audit.run import audit
from farmlink.operations.caughtup import wait_until_caught_up
from farmlink.producers.keyring import Keyring
from farmlink.producers.publisher import publish_lines
from farmlink.producers.scenario import read_scenario
from tests.kafka_helpers import login, read_topic

from tests.e2e.inputs import scenario_file

pytestmark = pytest.mark.e2e

REGISTRATION = {
    "cooperative_id": "fengjia",
    "name": "Fengjia",
    "county": "Yanhe",
    "township": "Ketian",
    "village": "Fengjia",
    "households": [{"household_id": "fj-1", "registered_poor": True}],
}


def lot(lot_id: str, quantity: str = "100") -> dict:
    return {
        "lot_id": lot_id,
        "cooperative_id": "fengjia",
        "product": "chili",
        "grade": "A",
        "quantity": quantity,
        "available_from": "2020-08-01",
        "expires_on": "2020-08-20",
        "contributions": [{"household_id": "fj-1", "quantity": quantity}],
    }


def order(order_id: str) -> dict:
    return {
        "order_id": order_id,
        "buyer_id": "tongren-mart",
        "product": "chili",
        "min_grade": "B",
        "quantity": "80",
        "limit_price_fen": 500,
        "deliver_from": "2020-08-01",
        "deliver_to": "2020-08-31",
        "regions": [],
    }


def price(fen: int) -> dict:
    return {"product": "chili", "grade": "A", "market": "Tongren", "price_fen": fen, "observed_on": "2020-08-02"}


def plan(plan_id: str) -> dict:
    return {
        "plan_id": plan_id,
        "county": "Yanhe",
        "township": "Ketian",
        "product": "chili",
        "area_mu": "2000",
        "target_household_income_fen": 2400000,
    }


async def test_keys_rotate_and_revoke_from_their_place_in_the_log_on_and_the_audit_agrees(clean_system, tmp_path):
    keyring = Keyring(Path(tempfile.mkdtemp(prefix="farmlink-party-keys-")))
    season = scenario_file(
        tmp_path / "season.jsonl",
        ("cooperative.registered", REGISTRATION),
        ("buyer.registered", {"buyer_id": "tongren-mart", "name": "Tongren mart"}),
        ("price_feed.registered", {"market": "Tongren", "name": "Tongren wholesale market"}),
        ("harvest.recorded", lot("lot-1")),
        ("order.placed", order("o1")),
        ("market_price.observed", price(450)),
        ("plan.recorded", plan("K1")),  # the settlement desk `main`: registered by publish itself (the file names none)
        ("cooperative.key_rotated", {"party_id": "fengjia"}),  # publish makes the new key and signs with the old one
        ("price_feed.key_rotated", {"party_id": "Tongren"}),
        ("settlement_desk.key_rotated", {"party_id": "main"}),
        ("harvest.recorded", lot("lot-2")),
        ("market_price.observed", price(460)),
        ("plan.recorded", plan("K2")),
    )
    old_cooperative_key = keyring.private_key("cooperative:fengjia")
    summary = await publish_lines(clean_system.bootstrap, read_scenario(season), keyring=keyring)
    assert summary.rejected == [] and summary.accepted == 13
    assert public_key_of(old_cooperative_key) != keyring.public_key("cooperative:fengjia")

    # a lot signed with the key Fengjia rotated out, sent as a thief holding it would
    fields = {
        "message_id": uuid.uuid4().hex,
        "type": "harvest.recorded",
        "producer": "cooperative:fengjia",
        "correlation_id": "thief",
        "payload": lot("stolen-lot"),
    }
    stolen = json.dumps({**fields, "signature": sign(old_cooperative_key, fields)}).encode()
    producer = idempotent_producer(clean_system.bootstrap, **login())
    await producer.start()
    try:
        await producer.send_and_wait(COOPERATIVE_INPUT, stolen, key=b"chili")
    finally:
        await producer.stop()

    revocations = scenario_file(
        tmp_path / "revocations.jsonl",
        ("buyer.key_revoked", {"party_id": "tongren-mart", "reason": "the purchasing PC was stolen"}),
        ("order.placed", order("o2")),
        ("price_feed.key_revoked", {"party_id": "Tongren", "reason": "feed retired"}),
        ("market_price.observed", price(470)),
        ("harvest.recorded", lot("lot-3")),  # Fengjia, with its new key: still accepted
    )
    summary = await publish_lines(clean_system.bootstrap, read_scenario(revocations), keyring=keyring)
    assert summary.accepted == 3
    assert summary.rejected == [
        "line 2: signature: the key of buyer:tongren-mart was revoked ('the purchasing PC was stolen', buyer-keys-tongren-mart v1); "
        "its inputs are refused from there on",
        "line 4: signature: the key of price-feed:Tongren was revoked ('feed retired', price-feed-keys-Tongren v2); "
        "its inputs are refused from there on",
    ]
    await wait_until_caught_up(clean_system.bootstrap, clean_system.dsn)

    records = await read_topic(clean_system.bootstrap, DEAD_LETTER, expected=3, partitions=1)
    [dead] = [r for r in records if r.value == stolen]
    assert dict(dead.headers)["dlq.reason"] == b"signature: does not verify with the key registered for cooperative fengjia"

    result = await audit(clean_system.bootstrap, clean_system.dsn)
    assert result.findings == []
    assert result.reexecution.fill_count == 1  # lot-1 filled o1; the stolen lot never reached the matcher
