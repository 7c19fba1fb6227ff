"""Signed inputs on the real services: a forged harvest on real Kafka ends on the dead-letter
topic with its reason, the valid inputs around it are processed, and the audit stays clean."""

import tempfile
import uuid
from pathlib import Path

import pytest

from contracts.topics import COOPERATIVE_INPUT, DEAD_LETTER
from events.relay import idempotent_producer
from farmlink.audit.run import audit
from farmlink.operations.caughtup import wait_until_caught_up
from farmlink.producers.keyring import Keyring
from farmlink.producers.publisher import input_message, publish_lines
from farmlink.producers.scenario import read_scenario
from tests.kafka_helpers import login, read_topic

from tests.e2e.inputs import scenario_file
from tests.payloads import chili_order, fengjia, fengjia_lot

pytestmark = pytest.mark.e2e

REGISTRATION = fengjia(("fj-1", True), ("fj-2", False))


async def test_a_forged_harvest_is_dead_lettered_with_its_reason_and_the_valid_inputs_around_it_are_processed(
    clean_system, tmp_path
):
    before = scenario_file(
        tmp_path / "before.jsonl",
        ("cooperative.registered", REGISTRATION),
        ("buyer.registered", {"buyer_id": "tongren-mart", "name": "Tongren mart"}),
        ("order.placed", chili_order("o1")),
    )
    summary = await publish_lines(clean_system.bootstrap, read_scenario(before))
    assert summary.accepted == 3 and not summary.rejected

    # someone who is not Fengjia signs a lot in Fengjia's name with a key of their own
    forger = Keyring(Path(tempfile.mkdtemp(prefix="farmlink-forger-keys-")))
    forged = (
        input_message("harvest.recorded", fengjia_lot("forged-lot", "1000"), f"forgery-{uuid.uuid4().hex}", forger)
        .model_dump_json()
        .encode()
    )
    producer = idempotent_producer(clean_system.bootstrap, **login())
    await producer.start()
    try:
        await producer.send_and_wait(COOPERATIVE_INPUT, forged, key=b"chili")
    finally:
        await producer.stop()

    after = scenario_file(tmp_path / "after.jsonl", ("harvest.recorded", fengjia_lot("real-lot", "100")))
    summary = await publish_lines(clean_system.bootstrap, read_scenario(after))
    assert summary.accepted == 1 and not summary.rejected
    await wait_until_caught_up(clean_system.bootstrap, clean_system.dsn)

    records = await read_topic(clean_system.bootstrap, DEAD_LETTER, expected=1, partitions=1)
    [dead] = [r for r in records if r.value == forged]
    headers = dict(dead.headers)
    assert headers["dlq.reason"] == b"signature: does not verify with the key registered for cooperative fengjia"
    assert headers["dlq.topic"] == COOPERATIVE_INPUT.encode()

    result = await audit(clean_system.bootstrap, clean_system.dsn)
    assert result.findings == []
    assert result.reexecution.fill_count == 1, "the real lot filled the order; the forged one never reached the matcher"
