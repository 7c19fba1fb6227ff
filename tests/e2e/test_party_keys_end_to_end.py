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

from tests import payloads
from tests.e2e.inputs import scenario_file
from tests.payloads import chili_order, fengjia, fengjia_lot

pytestmark = pytest.mark.e2e

REGISTRATION = fengjia(("fj-1", True))


def price(fen: int) -> dict:
    return payloads.price(price_fen=fen)


def plan(plan_id: str) -> dict:
    return payloads.plan(plan_id=plan_id)


async def test_keys_rotate_and_revoke_from_their_place_in_the_log_on_and_the_audit_agrees(clean_system, tmp_path):
    keyring = Keyring(Path(tempfile.mkdtemp(prefix="farmlink-party-keys-")))
    season = scenario_file(
        tmp_path / "season.jsonl",
        ("cooperative.registered", REGISTRATION),
        ("buyer.registered", {"buyer_id": "tongren-mart", "name": "Tongren mart"}),
        ("price_feed.registered", {"market": "Tongren", "name": "Tongren wholesale market"}),
        ("harvest.recorded", fengjia_lot("lot-1")),
        ("order.placed", chili_order("o1")),
        ("market_price.observed", price(450)),
        ("plan.recorded", plan("K1")),  # the settlement desk `main`: registered by publish itself (the file names none)
        ("cooperative.key_rotated", {"party_id": "fengjia"}),  # publish makes the new key and signs with the old one
        ("price_feed.key_rotated", {"party_id": "Tongren"}),
        ("settlement_desk.key_rotated", {"party_id": "main"}),
        ("harvest.recorded", fengjia_lot("lot-2")),
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
        "payload": fengjia_lot("stolen-lot"),
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
        ("order.placed", chili_order("o2")),
        ("price_feed.key_revoked", {"party_id": "Tongren", "reason": "feed retired"}),
        ("market_price.observed", price(470)),
        ("harvest.recorded", fengjia_lot("lot-3")),  # Fengjia, with its new key: still accepted
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
