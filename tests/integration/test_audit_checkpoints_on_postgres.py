"""Incremental audits and digests on real PostgreSQL: a season written into schemas of its own, audited
in full with a checkpoint and a digest, then grown, then tampered with before the checkpoint."""

from __future__ import annotations

import asyncpg
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from events.hashchain import hashed_content, link_hash
from farmlink.audit.checks import check_hash_chains
from farmlink.audit.ledger import digest_of, extends
from farmlink.audit.log import load_from_postgres
from farmlink.audit.run import audit, checkpoint_of
from farmlink.operations.bench.audit_bench import load_synthetic

pytestmark = pytest.mark.integration

PREFIX = "t13_"
KEY = Ed25519PrivateKey.from_private_bytes(bytes(range(1, 33)))
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


async def full(system, **options):
    return await audit(system.bootstrap, system.dsn, reconcile_kafka=False, schema_prefix=PREFIX, workers=2, **options)


@pytest.fixture(scope="module")
async def grown(infrastructure):
    """A clean audit of a 2,000-event season with its checkpoint and digest, then the same season grown to 3,000 events."""
    await load_synthetic(infrastructure.dsn, 2000, say=lambda _: None, prefix=PREFIX)
    first = await full(infrastructure, want_books=True)
    assert first.clean, first.findings[:3]
    checkpoint = checkpoint_of(first, KEY)
    digest = digest_of(await load_from_postgres(infrastructure.dsn, prefix=PREFIX))
    await load_synthetic(infrastructure.dsn, 3000, say=lambda _: None, prefix=PREFIX)
    yield infrastructure, checkpoint, digest
    conn = await asyncpg.connect(infrastructure.dsn)
    try:
        for schema in ("cooperative", "buyer", "market", "matching", "settlement"):
            await conn.execute(f'DROP SCHEMA IF EXISTS "{PREFIX}{schema}" CASCADE')
    finally:
        await conn.close()


async def test_an_incremental_audit_of_the_grown_log_gives_the_full_audits_verdict_and_state_hash(grown):
    system, checkpoint, _ = grown
    whole = await full(system)
    since = await full(system, since=checkpoint)
    assert whole.clean and since.clean
    assert since.state_hash == whole.state_hash
    assert since.since is not None and since.since["events_after"] == whole.log.count() - checkpoint.events > 0


async def test_the_grown_log_extends_the_digest_taken_before_it_grew(grown):
    system, _, digest = grown
    log = await load_from_postgres(system.dsn, prefix=PREFIX)
    assert log.count() > digest.events
    assert extends(log, digest, check_hash_chains(log)) == []


async def test_tampering_before_the_checkpoint_is_found_by_the_incremental_audit_and_breaks_the_digest(grown):
    system, checkpoint, digest = grown
    conn = await asyncpg.connect(system.dsn)
    table = f'"{PREFIX}cooperative".events'
    row = await conn.fetchrow(
        f"SELECT * FROM {table} WHERE event_type = 'HarvestRecorded' AND global_position <= $1 ORDER BY global_position LIMIT 1",
        checkpoint.positions["cooperative"],
    )
    try:
        await conn.execute(
            f"UPDATE {table} SET payload = jsonb_set(payload, '{{grade}}', '\"C\"') WHERE global_position = $1",
            row["global_position"],
        )
        since = await full(system, since=checkpoint)
        assert any(f.check == "hash_chain" and f.global_position == row["global_position"] for f in since.findings)
        log = await load_from_postgres(system.dsn, prefix=PREFIX)
        assert any(str(row["global_position"]) in f.where for f in extends(log, digest, check_hash_chains(log)))

        # the forger reseals the stream: the chain holds again, but its head at the checkpoint moved
        stream = await conn.fetch(
            f"SELECT *, payload::text AS body FROM {table} WHERE stream_id = $1 ORDER BY stream_version", row["stream_id"]
        )
        prev = ""
        for event in stream:
            import orjson

            content = hashed_content(
                **{
                    key: (
                        orjson.loads(event["body"]) if key == "payload" else str(event[key]) if key == "event_id" else event[key]
                    )
                    for key in HASHED
                }
            )
            digest_now = link_hash(prev, content)
            await conn.execute(
                f"UPDATE {table} SET prev_hash = $2, hash = $3 WHERE global_position = $1",
                event["global_position"],
                prev,
                digest_now,
            )
            prev = digest_now
        since = await full(system, since=checkpoint)
        assert not [f for f in since.findings if f.check == "hash_chain"]
        assert any(f.check == "checkpoint" and f.stream_id == row["stream_id"] for f in since.findings)
        log = await load_from_postgres(system.dsn, prefix=PREFIX)
        assert any("Merkle root" in f.message for f in extends(log, digest, check_hash_chains(log)))
    finally:
        await conn.close()
