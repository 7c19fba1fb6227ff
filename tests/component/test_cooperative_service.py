"""The cooperative service on FastStream's in-memory TestKafkaBroker, with its real PostgreSQL schema."""

import json
import tempfile
import uuid
from pathlib import Path

import asyncpg
import pytest
from faststream.kafka import TestKafkaBroker

from farmlink.producers.keyring import Keyring
from contracts.topics import COOPERATIVE_INPUT, COOPERATIVE_EVENTS, DEAD_LETTER, RECEIPTS
from services.cooperative import app as cooperative
from tests.signed_inputs import KEYRING, signed

pytestmark = pytest.mark.component


def message(kind: str, payload: dict) -> bytes:
    """An input signed by its cooperative, as `farmlink publish` sends it."""
    return signed(kind, payload)


REGISTRATION = {
    "cooperative_id": "fengjia",
    "name": "Fengjia village cooperative",
    "county": "Yanhe",
    "township": "Ketian",
    "village": "Fengjia",
    "households": [{"household_id": "fj-01", "registered_poor": True}, {"household_id": "fj-02", "registered_poor": False}],
}
HARVEST = {
    "lot_id": "fj-chili-1",
    "cooperative_id": "fengjia",
    "product": "chili",
    "grade": "A",
    "quantity": "120.5",
    "available_from": "2020-08-01",
    "expires_on": "2020-08-15",
    "contributions": [{"household_id": "fj-01", "quantity": "100"}, {"household_id": "fj-02", "quantity": "20.5"}],
}


@pytest.fixture
async def service(infrastructure):
    """The cooperative service on a schema of its own and without a relay: we read its outbox directly."""
    runtime = cooperative.runtime
    runtime.schema = f"test_cooperative_{uuid.uuid4().hex[:8]}"
    await runtime.open(with_relay=False)
    async with TestKafkaBroker(runtime.broker) as broker:
        yield broker, runtime
    owner = await asyncpg.connect(runtime.config.dsn)  # the service's own role may not drop its schema
    await owner.execute(f'DROP SCHEMA "{runtime.schema}" CASCADE')
    await owner.close()
    await runtime.close()
    runtime.schema = runtime.name
    runtime.pool = runtime.store = None


async def outbox(runtime) -> list[tuple[str, dict | bytes]]:
    rows = await runtime.pool.fetch(f'SELECT topic, value FROM "{runtime.schema}".outbox ORDER BY outbox_id')
    return [(r["topic"], json.loads(r["value"]) if r["topic"] != DEAD_LETTER else r["value"]) for r in rows]


async def test_a_registered_cooperatives_harvest_is_recorded_with_place_and_registered_poor_flags(service):
    broker, runtime = service
    await broker.publish(message("cooperative.registered", REGISTRATION), COOPERATIVE_INPUT)
    await broker.publish(message("harvest.recorded", HARVEST), COOPERATIVE_INPUT)
    [lot] = await runtime.store.read_stream("lot-fj-chili-1")
    assert lot.event_type == "HarvestRecorded"
    assert (lot.payload["county"], lot.payload["township"], lot.payload["village"]) == ("Yanhe", "Ketian", "Fengjia")
    assert [c["registered_poor"] for c in lot.payload["contributions"]] == [True, False]
    topics = [topic for topic, _ in await outbox(runtime)]
    assert topics == [COOPERATIVE_EVENTS, RECEIPTS, COOPERATIVE_EVENTS, RECEIPTS]


async def test_a_lot_recorded_twice_is_rejected_not_double_counted(service):
    broker, runtime = service
    await broker.publish(message("cooperative.registered", REGISTRATION), COOPERATIVE_INPUT)
    await broker.publish(message("harvest.recorded", HARVEST), COOPERATIVE_INPUT)
    await broker.publish(message("harvest.recorded", HARVEST), COOPERATIVE_INPUT)
    assert len(await runtime.store.read_stream("lot-fj-chili-1")) == 1
    rows = await outbox(runtime)
    receipts = [value for topic, value in rows if topic == RECEIPTS]
    assert receipts[-1]["status"] == "rejected" and "already recorded" in receipts[-1]["reason"]
    assert [topic for topic, _ in rows].count(DEAD_LETTER) == 1


async def test_a_poison_message_is_dead_lettered_and_the_next_valid_one_is_processed(service):
    broker, runtime = service
    await broker.publish(b"\xff\xfenot json at all", COOPERATIVE_INPUT)
    await broker.publish(message("cooperative.registered", REGISTRATION), COOPERATIVE_INPUT)
    rows = await outbox(runtime)
    assert rows[0] == (DEAD_LETTER, b"\xff\xfenot json at all")
    assert len(await runtime.store.read_stream("cooperative-fengjia")) == 1


async def test_a_harvest_whose_contributions_do_not_add_up_is_rejected_naming_the_field(service):
    broker, runtime = service
    await broker.publish(message("cooperative.registered", REGISTRATION), COOPERATIVE_INPUT)
    await broker.publish(message("harvest.recorded", {**HARVEST, "quantity": "121"}), COOPERATIVE_INPUT)
    receipts = [value for topic, value in await outbox(runtime) if topic == RECEIPTS]
    assert receipts[-1]["status"] == "rejected"
    assert receipts[-1]["reason"].startswith("payload.contributions")
    assert await runtime.store.stream_version("lot-fj-chili-1") == 0


# ---------------------------------------------------------------- signed inputs


async def rejections(runtime) -> list[str]:
    return [value["reason"] for topic, value in await outbox(runtime) if topic == RECEIPTS and value["status"] == "rejected"]


@pytest.mark.parametrize(
    ("forgery", "reason"),
    [
        (
            {"signature": None},
            "signature: missing; cooperatives sign every input with the key registered for cooperative fengjia",
        ),
        (
            {"payload": {**HARVEST, "quantity": "1205", "contributions": [{"household_id": "fj-01", "quantity": "1205"}]}},
            "signature: does not verify with the key registered for cooperative fengjia",
        ),
        ({"producer": "cooperative:someone-else"}, "producer: cooperative:someone-else cannot submit for cooperative fengjia"),
    ],
    ids=["unsigned", "payload-changed-after-signing", "producer-mismatch"],
)
async def test_a_forged_harvest_is_dead_lettered_with_its_reason_and_nothing_is_recorded(service, forgery, reason):
    broker, runtime = service
    await broker.publish(message("cooperative.registered", REGISTRATION), COOPERATIVE_INPUT)
    forged = signed("harvest.recorded", HARVEST, **forgery)
    await broker.publish(forged, COOPERATIVE_INPUT)
    assert await runtime.store.stream_version("lot-fj-chili-1") == 0
    [receipt_reason] = await rejections(runtime)
    assert receipt_reason.startswith(reason)
    rows = await outbox(runtime)
    assert (DEAD_LETTER, forged) in rows, "the original bytes go to the dead-letter topic"


async def test_a_harvest_signed_with_another_cooperatives_key_is_rejected(service):
    broker, runtime = service
    other = Keyring(Path(tempfile.mkdtemp(prefix="farmlink-other-keys-")))
    await broker.publish(message("cooperative.registered", REGISTRATION), COOPERATIVE_INPUT)
    await broker.publish(signed("harvest.recorded", HARVEST, keyring=other), COOPERATIVE_INPUT)
    assert await rejections(runtime) == ["signature: does not verify with the key registered for cooperative fengjia"]
    await broker.publish(message("harvest.recorded", HARVEST), COOPERATIVE_INPUT)
    assert await runtime.store.stream_version("lot-fj-chili-1") == 1, "the real cooperative's signed lot is still taken"


async def test_a_forged_registration_signed_with_another_key_than_the_one_it_carries_is_rejected(service):
    broker, runtime = service
    other = Keyring(Path(tempfile.mkdtemp(prefix="farmlink-other-keys-")))
    registration = {**REGISTRATION, "public_key": KEYRING.public_key("cooperative:fengjia")}
    await broker.publish(signed("cooperative.registered", registration, keyring=other), COOPERATIVE_INPUT)
    assert await rejections(runtime) == ["signature: does not verify with the public key in the registration"]
    assert await runtime.store.stream_version("cooperative-fengjia") == 0


async def test_the_recorded_events_carry_the_signed_input_as_received(service):
    broker, runtime = service
    await broker.publish(message("cooperative.registered", REGISTRATION), COOPERATIVE_INPUT)
    sent = message("harvest.recorded", HARVEST)
    await broker.publish(sent, COOPERATIVE_INPUT)
    [registered] = await runtime.store.read_stream("cooperative-fengjia")
    [lot] = await runtime.store.read_stream("lot-fj-chili-1")
    assert registered.payload["public_key"] == KEYRING.public_key("cooperative:fengjia")
    assert lot.payload["signed_input"] == json.loads(sent)
