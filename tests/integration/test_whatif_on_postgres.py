"""`farmlink what-if` against the real PostgreSQL: a synthetic season (farmlink/operations/bench/synthetic.py)
written into schemas of this test the way `farmlink bench audit` loads it, then the command itself (typer's CliRunner) reads it as the
auditor's read-only role, replays it unchanged (the identity check) and with a changed floor, and leaves every
stored event as it was."""

import asyncio
import json

import asyncpg
import pytest
from typer.testing import CliRunner

from events.access import AUDITOR
from events.migrations import migrate
from farmlink.audit.log import SCHEMAS
from events.stored import NEW_EVENT_COLUMNS as COLUMNS
from farmlink.cli import app
from farmlink.office.whatif import Changes, as_json, what_if
from tests.report_helpers import in_memory, synthetic

pytestmark = pytest.mark.integration

EVENTS = 3_000


async def _load(dsn: str, prefix: str, reader: str) -> None:
    pool = await asyncpg.create_pool(dsn, min_size=1, max_size=2)
    try:
        log = synthetic(EVENTS)
        for schema in SCHEMAS:
            await migrate(pool, prefix + schema, readers=(reader,))  # the auditor's role may read, nothing more
            async with pool.acquire() as conn:
                await conn.copy_records_to_table(
                    "events", schema_name=prefix + schema, records=log.rows.get(schema, []), columns=COLUMNS
                )
    finally:
        await pool.close()


async def _drop(dsn: str, prefix: str) -> None:
    conn = await asyncpg.connect(dsn)
    try:
        for schema in SCHEMAS:
            await conn.execute(f'DROP SCHEMA IF EXISTS "{prefix}{schema}" CASCADE')
    finally:
        await conn.close()


async def _fingerprint(dsn: str, prefix: str) -> dict[str, tuple[int, str | None]]:
    """Per schema: how many events, and an md5 over every stored row in order (any write would change one)."""
    conn = await asyncpg.connect(dsn)
    try:
        found = {}
        for schema in SCHEMAS:
            row = await conn.fetchrow(f"""SELECT count(*), md5(string_agg(global_position::text || hash || payload::text, '|'
                                          ORDER BY global_position)) FROM "{prefix}{schema}".events""")
            found[schema] = (row[0], row[1])
        return found
    finally:
        await conn.close()


@pytest.fixture
def season(infrastructure, unique):
    """The synthetic season in schemas `whatif_<unique>_<service>`, dropped afterwards; the prefix."""
    prefix = f"whatif_{unique}_"
    asyncio.run(_load(infrastructure.dsn, prefix, infrastructure.role_of(AUDITOR)))
    yield prefix
    asyncio.run(_drop(infrastructure.dsn, prefix))


def what_if_command(*args: str) -> dict:
    result = CliRunner().invoke(app, ["what-if", *args, "--format", "json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_the_identity_replay_of_the_stored_season_equals_every_recorded_income(infrastructure, season):
    answer = what_if_command("--schema-prefix", season)
    log = synthetic(EVENTS)
    assert answer["identical"] is True and answer["changes"] == []
    assert answer["totals"]["fills_recorded"] == answer["totals"]["fills_replayed"] == log.fills
    assert answer["totals"]["difference_fen"] == 0
    assert all(h["difference_fen"] == 0 and h["fills_changed"] == 0 for h in answer["households"])
    assert answer == as_json(what_if(in_memory(EVENTS), Changes()))  # read from PostgreSQL as it was written


def test_a_changed_floor_read_from_postgres_gives_what_the_same_log_gives_in_memory_and_writes_nothing(infrastructure, season):
    before = asyncio.run(_fingerprint(infrastructure.dsn, season))
    answer = what_if_command("--schema-prefix", season, "--floor", "oil_tea_fruit=900")
    assert answer["identical"] is False
    assert answer["changes"] and {c["product"] for c in answer["changes"]} == {"oil_tea_fruit"}
    assert {c["replayed"] for c in answer["changes"]} == {900}
    assert answer["totals"]["difference_fen"] > 0
    assert answer == as_json(what_if(in_memory(EVENTS), Changes.parse(floor=["oil_tea_fruit=900"])))
    assert asyncio.run(_fingerprint(infrastructure.dsn, season)) == before


def test_a_product_without_commitments_in_the_stored_log_is_refused_with_exit_2(infrastructure, season):
    result = CliRunner().invoke(app, ["what-if", "--schema-prefix", season, "--floor", "live_pig=400"])
    assert result.exit_code == 2
    assert "--floor live_pig=400: the log holds no commitment for live_pig" in result.output
