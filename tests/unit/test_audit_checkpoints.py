"""Incremental audits from a signed checkpoint: the same verdict and state hash as a full audit, and
tampering before the checkpoint is still found (in memory, on one process: the unit tier)."""

from __future__ import annotations

import asyncio
import dataclasses
from functools import lru_cache

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from events.hashchain import GENESIS, hashed_content, link_hash
from farmlink.audit.checkpoint import Checkpoint, CheckpointError, load_or_create_key
from farmlink.audit.model import AuditLog, Record
from farmlink.audit.run import AuditResult, audit_log, checkpoint_of
from farmlink.operations.bench.synthetic import generate

pytestmark = pytest.mark.unit

HASHED = (
    "event_id",
    "event_type",
    "schema_version",
    "stream_id",
    "stream_version",
    "occurred_at",
    "producer",
    "correlation_id",
    "causation_id",
    "payload",
)
KEY = Ed25519PrivateKey.from_private_bytes(bytes(range(32)))


@lru_cache(maxsize=None)
def _season(events: int):
    return generate(events)


def season(events: int) -> AuditLog:
    """A fresh copy of a synthetic season's log (the same seed: the shorter is the start of the longer)."""
    return _season(events).audit_log()


def run(log: AuditLog, **options) -> AuditResult:
    return asyncio.run(audit_log(log, "postgres", workers=1, **options))


@lru_cache(maxsize=None)
def checkpoint_after(events: int) -> Checkpoint:
    return checkpoint_of(run(season(events), want_books=True), KEY)


def reseal_stream(log: AuditLog, schema: str, stream_id: str) -> None:
    """Recompute one stream's chain over what its rows now hold: a forger covering their tracks."""
    rows = log.by_schema[schema]
    prev = GENESIS
    for index, record in sorted(
        ((i, r) for i, r in enumerate(rows) if r.stream_id == stream_id), key=lambda item: item[1].stream_version
    ):
        digest = link_hash(prev, hashed_content(**{key: getattr(record, key) for key in HASHED}))
        rows[index] = dataclasses.replace(record, prev_hash=prev, hash=digest)
        prev = digest


def a_harvest_before(log: AuditLog, checkpoint: Checkpoint) -> tuple[int, Record]:
    rows = log.by_schema["cooperative"]
    return next(
        (i, r)
        for i, r in enumerate(rows)
        if r.event_type == "HarvestRecorded" and r.global_position <= checkpoint.positions["cooperative"]
    )


def test_an_incremental_audit_gives_the_verdict_and_state_hash_of_a_full_audit():
    full = run(season(3000))
    incremental = run(season(3000), since=checkpoint_after(2000))
    assert full.clean and incremental.clean
    assert incremental.state_hash == full.state_hash
    assert (incremental.reexecution.input_count, incremental.reexecution.fill_count) == (
        full.reexecution.input_count,
        full.reexecution.fill_count,
    )
    assert incremental.since is not None and incremental.since["events_after"] == season(3000).count() - season(2000).count()


def test_an_incremental_audit_of_the_checkpointed_log_itself_audits_nothing_new_and_agrees():
    incremental = run(season(2000), since=checkpoint_after(2000))
    assert incremental.clean and incremental.state_hash == checkpoint_after(2000).state_hash
    assert incremental.since is not None and incremental.since["events_after"] == 0


def test_an_event_edited_before_the_checkpoint_is_found_by_its_hash_chain():
    log = season(3000)
    index, harvest = a_harvest_before(log, checkpoint_after(2000))
    log.by_schema["cooperative"][index] = dataclasses.replace(
        harvest, payload={**harvest.payload, "grade": "A" if harvest.payload["grade"] != "A" else "B"}
    )
    findings = run(log, since=checkpoint_after(2000)).findings
    assert any(f.check == "hash_chain" and f.event_id == harvest.event_id for f in findings)


def test_an_event_edited_and_resealed_before_the_checkpoint_is_found_against_the_checkpoints_heads():
    log = season(3000)
    index, harvest = a_harvest_before(log, checkpoint_after(2000))
    log.by_schema["cooperative"][index] = dataclasses.replace(harvest, payload={**harvest.payload, "village": "forged"})
    reseal_stream(log, "cooperative", harvest.stream_id)
    findings = run(log, since=checkpoint_after(2000)).findings
    assert not [f for f in findings if f.check == "hash_chain"]  # the chain was resealed ...
    [moved] = [f for f in findings if f.check == "checkpoint"]  # ... but its head at the checkpoint moved
    assert moved.stream_id == harvest.stream_id and "changed, deleted or inserted" in moved.message and moved.code == "AUD008"


def test_an_event_deleted_before_the_checkpoint_is_found():
    log = season(3000)
    rows = log.by_schema["buyer"]
    first = checkpoint_after(2000).positions["buyer"]
    victim = next(r for r in rows if r.event_type == "OrderPlaced" and r.global_position <= first)
    rows.remove(victim)
    findings = run(log, since=checkpoint_after(2000)).findings
    assert any(f.check == "checkpoint" and "events were deleted or inserted" in f.message for f in findings)
    assert any(f.check in ("checkpoint", "hash_chain") and f.stream_id == victim.stream_id for f in findings)


def test_an_event_slipped_in_before_the_checkpoint_is_found():
    log = season(3000)
    rows = log.by_schema["market"]
    position = checkpoint_after(2000).positions["market"]
    template = next(r for r in rows if r.global_position == position)
    forged = dataclasses.replace(
        template,
        event_id="6f0c1a7e-0000-4000-8000-000000000001",
        stream_id="market-price-forged",
        stream_version=1,
        global_position=position,
        prev_hash=GENESIS,
    )
    forged = dataclasses.replace(forged, hash=link_hash(GENESIS, hashed_content(**{key: getattr(forged, key) for key in HASHED})))
    rows.insert(rows.index(template), forged)
    findings = run(log, since=checkpoint_after(2000)).findings
    assert any(
        f.check == "checkpoint" and f.stream_id == "market-price-forged" and "does not know" in f.message for f in findings
    )


def test_a_changed_checkpoint_or_one_signed_by_another_key_is_refused(tmp_path):
    path = tmp_path / "checkpoint.json"
    checkpoint_after(2000).write(path)
    assert Checkpoint.read(path, KEY).state_hash == checkpoint_after(2000).state_hash
    with pytest.raises(CheckpointError, match="not by this auditor's key"):
        Checkpoint.read(path, Ed25519PrivateKey.generate())
    path.write_bytes(path.read_bytes().replace(b'"fill_count":', b'"fill_count":1', 1))
    with pytest.raises(CheckpointError, match="does not verify"):
        Checkpoint.read(path, KEY)


def test_no_checkpoint_vouches_for_a_log_with_findings():
    log = season(2000)
    index, harvest = a_harvest_before(log, checkpoint_after(2000))
    log.by_schema["cooperative"][index] = dataclasses.replace(harvest, payload={**harvest.payload, "village": "forged"})
    with pytest.raises(ValueError, match="vouches only for a clean log"):
        checkpoint_of(run(log, want_books=True), KEY)


def test_the_auditor_key_is_made_once_private_and_read_back(tmp_path):
    path = tmp_path / "auditor.key"
    made = load_or_create_key(path)
    assert path.stat().st_mode & 0o777 == 0o600
    assert load_or_create_key(path).public_key().public_bytes_raw() == made.public_key().public_bytes_raw()
