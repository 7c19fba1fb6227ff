"""`farmlink audit` against the real store and topics after the demo: clean, and every kind of
tampering detected and located."""

import asyncio
import json
import uuid
from decimal import Decimal

import asyncpg
import pytest
from aiokafka import AIOKafkaProducer

from contracts.topics import MARKET_EVENTS
from events.access import service_principal
from events.hashchain import canonical_json, hashed_content, link_hash
from farmlink.operations import processes
from farmlink.audit.run import audit
from farmlink.operations.caughtup import wait_until_caught_up
from farmlink.cli import DEMO_SCENARIO
from farmlink.producers.publisher import publish_lines
from farmlink.producers.scenario import read_scenario
from tests.kafka_helpers import login

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
async def demo_log(infrastructure):
    """The demo published on a clean system, services stopped afterwards so the log stands still."""
    from farmlink.operations import infra

    processes.stop_all(say=lambda _: None)
    infra.reset_data(progress=lambda _: None)
    processes.start_all(say=lambda _: None)
    summary = await publish_lines(infrastructure.bootstrap, read_scenario(DEMO_SCENARIO))
    assert not summary.rejected
    await wait_until_caught_up(infrastructure.bootstrap, infrastructure.dsn)
    processes.stop_all(say=lambda _: None)
    yield infrastructure


@pytest.fixture
async def db(demo_log):
    conn = await asyncpg.connect(demo_log.dsn)
    yield conn
    await conn.close()


async def run(system, **options):
    return await audit(system.bootstrap, system.dsn, **options)


async def test_a_clean_demo_run_audits_clean_from_postgres_and_from_kafka_with_the_same_state_hash(demo_log):
    from_store = await run(demo_log)
    from_kafka = await run(demo_log, source="kafka")
    assert from_store.findings == [] and from_kafka.findings == []
    assert from_store.reexecution.fill_count == 21
    assert from_store.state_hash == from_kafka.state_hash
    again = await run(demo_log)
    assert again.state_hash == from_store.state_hash, "replaying twice gives identical state hashes"


def test_the_audit_command_exits_0_after_the_demo_and_writes_the_report(demo_log, tmp_path):
    from typer.testing import CliRunner

    from farmlink.cli import app

    report = tmp_path / "audit.html"
    result = CliRunner().invoke(app, ["audit", "--json", "--report", str(report)])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.output.strip().splitlines()[-1])
    assert summary["clean"] and summary["findings"] == [] and summary["fills"] == 21 and summary["reconciled_with_kafka"]
    page = report.read_text(encoding="utf-8")
    assert 'data-chart="revenue"' in page and "Audit clean" in page


async def test_an_edited_payload_is_found_at_its_stream_version_and_position(demo_log, db):
    row = await db.fetchrow(
        "SELECT global_position, stream_id, stream_version, event_id::text, payload::text FROM market.events ORDER BY global_position LIMIT 1"
    )
    await db.execute(
        "UPDATE market.events SET payload = jsonb_set(payload, '{price_fen}', '1') WHERE global_position = $1",
        row["global_position"],
    )
    try:
        result = await run(demo_log, reconcile_kafka=False)
    finally:
        await db.execute(
            "UPDATE market.events SET payload = $2::jsonb WHERE global_position = $1", row["global_position"], row["payload"]
        )
    chain = [f for f in result.findings if f.check == "hash_chain"]
    assert [(f.schema, f.stream_id, f.stream_version, f.global_position, f.event_id) for f in chain] == [
        ("market", row["stream_id"], row["stream_version"], row["global_position"], row["event_id"])
    ]
    assert "edited" in chain[0].message


async def test_an_inflated_support_delivery_in_the_pairing_log_is_found_by_its_chain_and_its_signature(demo_log, db):
    row = await db.fetchrow(
        "SELECT global_position, stream_id, stream_version, event_id::text, payload::text FROM pairing.events "
        "WHERE event_type = 'SupportDelivered' ORDER BY global_position LIMIT 1"
    )
    await db.execute(
        "UPDATE pairing.events SET payload = jsonb_set(payload, '{value_fen}', '999999999') WHERE global_position = $1",
        row["global_position"],
    )
    try:
        result = await run(demo_log, reconcile_kafka=False)
    finally:
        await db.execute(
            "UPDATE pairing.events SET payload = $2::jsonb WHERE global_position = $1", row["global_position"], row["payload"]
        )
    located = {(f.check, f.schema, f.stream_id, f.stream_version, f.event_id) for f in result.findings}
    assert ("hash_chain", "pairing", row["stream_id"], row["stream_version"], row["event_id"]) in located
    [signature] = [f for f in result.findings if f.check == "signature"]
    assert signature.event_id == row["event_id"] and "payload.value_fen: recorded 999999999" in signature.message


async def test_a_deleted_event_is_found(demo_log, db):
    row = await db.fetchrow(
        "SELECT * FROM cooperative.events WHERE stream_id LIKE 'cooperative-%' ORDER BY global_position LIMIT 1"
    )
    await db.execute("DELETE FROM cooperative.events WHERE global_position = $1", row["global_position"])
    try:
        result = await run(demo_log)
    finally:
        columns = list(row.keys())
        await db.execute(
            f"INSERT INTO cooperative.events ({', '.join(columns)}) VALUES ({', '.join(f'${i + 1}' for i in range(len(columns)))})",
            *row.values(),
        )
    missing = [f for f in result.findings if f.check == "reconciliation" and f.event_id == str(row["event_id"])]
    assert missing and "not in the store" in missing[0].message
    assert any(f.check == "invariant" or f.check == "reconciliation" for f in result.findings)


async def test_two_swapped_events_are_found(demo_log, db):
    rows = await db.fetch(
        "SELECT global_position, payload::text FROM matching.events WHERE stream_id = 'market-chili' ORDER BY stream_version LIMIT 2"
    )
    first, second = rows
    await db.execute(
        "UPDATE matching.events SET payload = $2::jsonb WHERE global_position = $1", first["global_position"], second["payload"]
    )
    await db.execute(
        "UPDATE matching.events SET payload = $2::jsonb WHERE global_position = $1", second["global_position"], first["payload"]
    )
    try:
        result = await run(demo_log, reconcile_kafka=False)
    finally:
        await db.execute(
            "UPDATE matching.events SET payload = $2::jsonb WHERE global_position = $1",
            first["global_position"],
            first["payload"],
        )
        await db.execute(
            "UPDATE matching.events SET payload = $2::jsonb WHERE global_position = $1",
            second["global_position"],
            second["payload"],
        )
    chain = [f for f in result.findings if f.check == "hash_chain"]
    assert [(f.stream_id, f.global_position) for f in chain] == [("market-chili", first["global_position"])]


async def test_a_forged_fill_with_a_resealed_hash_chain_is_found_by_re_execution(demo_log, db):
    last = await db.fetchrow(
        "SELECT * FROM matching.events WHERE stream_id = 'market-chili' ORDER BY stream_version DESC LIMIT 1"
    )
    real_fill = json.loads(
        await db.fetchval(
            "SELECT payload::text FROM matching.events WHERE event_type = 'FillMade' AND stream_id = 'market-chili' LIMIT 1"
        )
    )
    forged = {
        **real_fill,
        "fill_id": str(uuid.uuid4()),
        "position": 99,
        "quantity": "500",
        "revenue_fen": real_fill["unit_price_fen"] * 500,
    }
    event_id = uuid.uuid4()
    content = hashed_content(
        event_id=event_id,
        event_type="FillMade",
        schema_version=1,
        stream_id="market-chili",
        stream_version=last["stream_version"] + 1,
        occurred_at=last["occurred_at"],
        producer="service:matching",
        correlation_id="forged",
        causation_id=None,
        payload=forged,
    )
    digest = link_hash(last["hash"], content)
    position = await db.fetchval(
        """INSERT INTO matching.events (event_id, stream_id, stream_version, event_type, schema_version, occurred_at, producer,
                                         correlation_id, causation_id, payload, prev_hash, hash)
           VALUES ($1, 'market-chili', $2, 'FillMade', 1, $3, 'service:matching', 'forged', NULL, $4::jsonb, $5, $6)
           RETURNING global_position""",
        event_id,
        last["stream_version"] + 1,
        last["occurred_at"],
        canonical_json(forged),
        last["hash"],
        digest,
    )
    try:
        result = await run(demo_log)
    finally:
        await db.execute("DELETE FROM matching.events WHERE global_position = $1", position)
    at_forgery = [f for f in result.findings if f.global_position == position and f.schema == "matching"]
    checks = {f.check for f in at_forgery}
    assert "re_execution" in checks, at_forgery
    assert "reconciliation" in checks, "the forged fill never reached Kafka"
    assert not [f for f in result.findings if f.check == "hash_chain"], "the forger resealed the chain"


async def test_a_price_changed_on_a_kafka_copy_is_found_at_its_topic_partition_and_offset(demo_log, db):
    row = await db.fetchrow(
        "SELECT * FROM market.events WHERE event_type = 'MarketPriceObserved' ORDER BY global_position LIMIT 1"
    )
    envelope = {
        "event_id": str(row["event_id"]),
        "event_type": row["event_type"],
        "schema_version": row["schema_version"],
        "stream_id": row["stream_id"],
        "stream_version": row["stream_version"],
        "occurred_at": row["occurred_at"].isoformat(),
        "producer": row["producer"],
        "correlation_id": row["correlation_id"],
        "causation_id": row["causation_id"],
        "payload": {**json.loads(row["payload"]), "price_fen": 1},
        "global_position": row["global_position"],
        "prev_hash": row["prev_hash"],
        "hash": row["hash"],
    }
    # The tamperer holds the market service's credentials: the only principal that may write its event topic.
    producer = AIOKafkaProducer(bootstrap_servers=demo_log.bootstrap, **login(service_principal("market")))
    await producer.start()
    sent = await producer.send_and_wait(
        MARKET_EVENTS, canonical_json(envelope).encode(), key=envelope["payload"]["product"].encode()
    )
    await producer.stop()
    result = await run(demo_log)
    place = f"{MARKET_EVENTS}[{sent.partition}]@{sent.offset}"
    at_copy = [f for f in result.findings if f.where.startswith(place)]
    assert at_copy and "differs from the stored event (payload)" in at_copy[0].message
    assert any("reached its topic 2 times" in f.message for f in result.findings if f.event_id == str(row["event_id"]))


def test_the_audit_command_exits_1_and_names_the_tampered_copy(demo_log):
    from typer.testing import CliRunner

    from farmlink.cli import app

    result = CliRunner().invoke(app, ["audit", "--json"])
    assert result.exit_code == 1
    findings = json.loads(result.output.strip().splitlines()[-1])["findings"]
    assert any(f["check"] == "reconciliation" and f["where"].startswith(MARKET_EVENTS) for f in findings)


# ---------------------------------------------------------------- signed inputs


async def _reseal(db, schema: str, row, payload: dict) -> None:
    """Rewrite one event's payload and recompute its hash, as a forger with database access would
    (the event is the only one of its stream, so no later link needs resealing)."""
    content = hashed_content(
        event_id=row["event_id"],
        event_type=row["event_type"],
        schema_version=row["schema_version"],
        stream_id=row["stream_id"],
        stream_version=row["stream_version"],
        occurred_at=row["occurred_at"],
        producer=row["producer"],
        correlation_id=row["correlation_id"],
        causation_id=row["causation_id"],
        payload=payload,
    )
    await db.execute(
        f"UPDATE {schema}.events SET payload = $2::jsonb, hash = $3 WHERE global_position = $1",
        row["global_position"],
        canonical_json(payload),
        link_hash(row["prev_hash"], content),
    )


async def _restore(db, schema: str, row) -> None:
    await db.execute(
        f"UPDATE {schema}.events SET payload = $2::jsonb, hash = $3 WHERE global_position = $1",
        row["global_position"],
        row["payload"],
        row["hash"],
    )


async def test_a_lot_whose_quantity_and_signed_payload_were_both_raised_and_resealed_is_found_by_its_signature(demo_log, db):
    row = await db.fetchrow(
        "SELECT * FROM cooperative.events WHERE event_type = 'HarvestRecorded' ORDER BY global_position LIMIT 1"
    )
    payload = json.loads(row["payload"])
    signed = payload["signed_input"]
    raised = str(Decimal(payload["quantity"]) * 2)
    forged_contributions = [{**c, "quantity": str(Decimal(c["quantity"]) * 2)} for c in signed["payload"]["contributions"]]
    forged = {
        **payload,
        "quantity": raised,
        "contributions": [{**c, "quantity": str(Decimal(c["quantity"]) * 2)} for c in payload["contributions"]],
        "signed_input": {**signed, "payload": {**signed["payload"], "quantity": raised, "contributions": forged_contributions}},
    }
    await _reseal(db, "cooperative", row, forged)
    try:
        result = await run(demo_log, reconcile_kafka=False)
    finally:
        await _restore(db, "cooperative", row)
    assert not [f for f in result.findings if f.check == "hash_chain"], "the forger resealed the chain"
    [finding] = [f for f in result.findings if f.check == "signature"]
    assert (finding.schema, finding.stream_id, finding.global_position) == (
        "cooperative",
        row["stream_id"],
        row["global_position"],
    )
    assert finding.message.startswith("signature: does not verify with the key cooperative:")


async def test_a_recorded_fact_that_departs_from_its_signed_input_is_found_and_the_audit_command_exits_1(demo_log, db):
    row = await db.fetchrow("SELECT * FROM buyer.events WHERE event_type = 'OrderPlaced' ORDER BY global_position LIMIT 1")
    payload = json.loads(row["payload"])
    await _reseal(db, "buyer", row, {**payload, "limit_price_fen": payload["limit_price_fen"] + 100})
    try:
        result = await run(demo_log, reconcile_kafka=False)
        from typer.testing import CliRunner

        from farmlink.cli import app

        import asyncio  # the command runs its own event loop: give it a thread of its own

        command = await asyncio.to_thread(CliRunner().invoke, app, ["audit", "--no-reconcile"])
    finally:
        await _restore(db, "buyer", row)
    [finding] = [f for f in result.findings if f.check == "signature"]
    assert finding.global_position == row["global_position"]
    assert "differs from the signed input at payload.limit_price_fen" in finding.message
    assert command.exit_code == 1 and "signature" in command.output


async def test_a_changed_signature_is_found(demo_log, db):
    row = await db.fetchrow(
        "SELECT * FROM cooperative.events WHERE event_type = 'PlantingRecorded' ORDER BY global_position LIMIT 1"
    )
    payload = json.loads(row["payload"])
    signature = payload["signed_input"]["signature"]
    flipped = ("B" if signature[0] != "B" else "C") + signature[1:]
    await _reseal(db, "cooperative", row, {**payload, "signed_input": {**payload["signed_input"], "signature": flipped}})
    try:
        result = await run(demo_log, reconcile_kafka=False)
    finally:
        await _restore(db, "cooperative", row)
    [finding] = [f for f in result.findings if f.check == "signature"]
    assert finding.global_position == row["global_position"] and finding.message.startswith("signature: does not verify")


async def test_the_clean_demo_has_a_verified_signature_on_every_event_of_every_party(demo_log):
    from farmlink.audit.log import load_from_postgres
    from farmlink.audit.signatures import SCHEMAS, SIGNED_EVENTS, check_signatures

    log = await load_from_postgres(demo_log.dsn)
    signed = [r for schema in SCHEMAS for r in log.by_schema[schema] if r.event_type in SIGNED_EVENTS]
    lines = read_scenario(DEMO_SCENARIO)
    assert len(signed) == len(lines) and all(r.payload.get("signed_input") for r in signed)
    assert {r.schema for r in signed} == {"cooperative", "buyer", "market", "settlement", "pairing"}
    assert check_signatures(log) == []


def _cli(*args: str):
    from typer.testing import CliRunner

    from farmlink.cli import app

    return CliRunner().invoke(app, list(args))


def test_an_incremental_audit_from_a_checkpoint_agrees_with_the_full_audit_and_its_json_names_the_checkpoint(demo_log, tmp_path):
    checkpoint, key = tmp_path / "checkpoint.json", tmp_path / "auditor.key"
    full = _cli("audit", "--json", "--no-reconcile", "--checkpoint", str(checkpoint), "--key", str(key))
    assert full.exit_code == 0, full.output
    since = _cli("audit", "--json", "--no-reconcile", "--since", str(checkpoint), "--key", str(key))
    assert since.exit_code == 0, since.output
    whole, incremental = (json.loads(r.output.strip().splitlines()[-1]) for r in (full, since))
    assert incremental["state_hash"] == whole["state_hash"] and incremental["clean"]
    assert incremental["since_checkpoint"]["events_after"] == 0 and incremental["format_version"] == 1
    stranger = _cli("audit", "--no-reconcile", "--since", str(checkpoint), "--key", str(tmp_path / "someone-else.key"))
    assert stranger.exit_code == 2 and "not by this auditor's key" in stranger.output


async def test_the_log_extends_its_digest_until_an_event_before_it_is_edited(demo_log, db):
    made = await asyncio.to_thread(_cli, "audit", "digest", "--json")
    assert made.exit_code == 0, made.output
    digest = made.output.strip().splitlines()[-1]
    holds = await asyncio.to_thread(_cli, "audit", "verify-digest", digest)
    assert holds.exit_code == 0, holds.output
    assert "extends the digest" in holds.output and "matches" in holds.output and "root" in holds.output
    row = await db.fetchrow("SELECT global_position, payload::text FROM market.events ORDER BY global_position LIMIT 1")
    await db.execute(
        "UPDATE market.events SET payload = jsonb_set(payload, '{price_fen}', '1') WHERE global_position = $1",
        row["global_position"],
    )
    try:
        broken = await asyncio.to_thread(_cli, "audit", "verify-digest", digest, "--json")
    finally:
        await db.execute(
            "UPDATE market.events SET payload = $2::jsonb WHERE global_position = $1", row["global_position"], row["payload"]
        )
    assert broken.exit_code == 1, broken.output
    found = json.loads(broken.output.strip().splitlines()[-1])
    assert not found["extends"] and {f["code"] for f in found["findings"]} == {"AUD009"}


async def test_the_streamed_reconciliation_finds_what_the_held_one_finds_in_the_same_order(demo_log, db):
    """After the tampering above (a changed copy published on the market topic), with one stored event deleted and
    another's payload edited: `reconcile_stored` (a spool on disk, the store read a batch at a time) gives the
    findings of `reconcile` over the topics and the store held in memory, in the same order."""
    from farmlink.audit.log import load_from_postgres, read_kafka_copies
    from farmlink.audit.reconcile import reconcile
    from farmlink.audit.reconcile_stored import reconcile_stored
    from farmlink.audit.stored_log import stored_log

    deleted = await db.fetchrow("SELECT * FROM buyer.events ORDER BY global_position LIMIT 1")
    edited = await db.fetchrow(
        "SELECT global_position, payload::text FROM cooperative.events ORDER BY global_position DESC LIMIT 1"
    )
    await db.execute("DELETE FROM buyer.events WHERE global_position = $1", deleted["global_position"])
    await db.execute(
        "UPDATE cooperative.events SET payload = payload || '{\"note\": 1}' WHERE global_position = $1", edited["global_position"]
    )
    try:
        held = reconcile(await load_from_postgres(demo_log.dsn), await read_kafka_copies(demo_log.bootstrap))
        store = await stored_log(demo_log.dsn)
        positions = {schema: records.through for schema, records in store.by_schema.items()}
        streamed = await reconcile_stored(demo_log.bootstrap, demo_log.dsn, "", positions, [])
    finally:
        columns = list(deleted.keys())
        await db.execute(
            f"INSERT INTO buyer.events ({', '.join(columns)}) VALUES ({', '.join(f'${i + 1}' for i in range(len(columns)))})",
            *deleted.values(),
        )
        await db.execute(
            "UPDATE cooperative.events SET payload = $2::jsonb WHERE global_position = $1",
            edited["global_position"],
            edited["payload"],
        )
    messages = " / ".join(f.message for f in held)
    assert (
        "not in the store" in messages and "differs from the stored event" in messages and "reached its topic 2 times" in messages
    )
    assert [f.as_dict() for f in streamed] == [f.as_dict() for f in held]
