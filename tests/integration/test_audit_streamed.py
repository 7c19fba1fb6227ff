"""The audit from PostgreSQL streams the log (farmlink/audit/streamed.py) and must find exactly what the audit of the
same log held in memory finds (`run.audit_log`, the reference the unit tests pin down): the same findings in the same
order, the same state hash, on a clean synthetic season and on one tampered several ways at once, with worker
processes and without; and it must hold only a fraction of the log while it does."""

import tracemalloc
from contextlib import asynccontextmanager

import pytest

from events.stored import NEW_EVENT_COLUMNS as COLUMNS
from farmlink.audit.chains import check_hash_chains
from farmlink.audit.log import load_from_postgres
from farmlink.audit.run import audit_log
from farmlink.audit.store_questions import check_stored_chains
from farmlink.audit import streamed
from farmlink.audit.streamed import audit_stored
from tests.report_helpers import season_in_postgres

pytestmark = pytest.mark.integration


@asynccontextmanager
async def season(infrastructure, unique: str, events: int):
    """A synthetic season of `events` events in schemas of this test (dropped afterwards), and a pool on them."""
    prefix = f"streamed_{unique}_"
    async with season_in_postgres(infrastructure.dsn, prefix, events) as pool:
        yield prefix, pool


async def tamper(pool, prefix: str) -> None:
    """Five edits at once, each caught by other checks: a fill's revenue raised, a journal entry deleted, a harvest
    copied into the buyer schema under its own event id and message id, a payment raised, a cooperative event's
    stream version moved past the next one's position."""
    m, c, b, s = (f'"{prefix}{name}".events' for name in ("matching", "cooperative", "buyer", "settlement"))
    await pool.execute(f"""UPDATE {m} SET payload = jsonb_set(payload, '{{revenue_fen}}',
        to_jsonb((payload->>'revenue_fen')::bigint + 100))
        WHERE global_position = (SELECT min(global_position) FROM {m} WHERE event_type = 'FillMade')""")
    await pool.execute(f"""DELETE FROM {m} WHERE global_position =
        (SELECT global_position FROM {m} WHERE event_type = 'InputJournaled' ORDER BY global_position OFFSET 40 LIMIT 1)""")
    columns = ", ".join(column for column in COLUMNS if column != "global_position")
    await pool.execute(f"""INSERT INTO {b} ({columns}) SELECT {columns} FROM {c}
        WHERE global_position = (SELECT global_position FROM {c} WHERE event_type = 'HarvestRecorded'
                                 ORDER BY global_position OFFSET 3 LIMIT 1)""")
    await pool.execute(f"""UPDATE {s} SET payload = jsonb_set(payload, '{{amount_fen}}',
        to_jsonb((payload->>'amount_fen')::bigint + 7))
        WHERE global_position = (SELECT min(global_position) FROM {s} WHERE event_type = 'PaymentMade')""")
    await pool.execute(f"""UPDATE {c} SET stream_version = stream_version + 1
        WHERE global_position = (SELECT max(global_position) FROM {c} WHERE event_type = 'PlantingRecorded')""")


async def both(dsn: str, prefix: str, workers: int):
    held = await audit_log(await load_from_postgres(dsn, prefix=prefix), "postgres", snapshots=None, workers=workers)
    streamed = await audit_stored(dsn, prefix=prefix, workers=workers)
    return held, streamed


def same(held, streamed) -> None:
    assert [f.as_dict() for f in streamed.findings] == [f.as_dict() for f in held.findings]
    assert streamed.state_hash == held.state_hash
    assert streamed.log.count() == held.log.count()
    assert (streamed.reexecution.input_count, streamed.reexecution.fill_count) == (
        held.reexecution.input_count,
        held.reexecution.fill_count,
    )


@pytest.mark.parametrize("workers", [1, 2])
async def test_a_clean_season_streams_to_the_same_verdict_and_state_hash(infrastructure, unique, workers):
    async with season(infrastructure, unique, 3_000) as (prefix, _):
        held, streamed = await both(infrastructure.dsn, prefix, workers)
    assert held.clean and streamed.clean
    same(held, streamed)


@pytest.mark.parametrize("workers", [1, 2])
async def test_a_season_tampered_five_ways_streams_to_the_same_findings_in_the_same_order(infrastructure, unique, workers):
    async with season(infrastructure, unique, 3_000) as (prefix, pool):
        await tamper(pool, prefix)
        held, streamed = await both(infrastructure.dsn, prefix, workers)
    checks = {f.check for f in held.findings}
    assert {"hash_chain", "duplicate_event", "signature", "re_execution", "invariant", "reconciliation"} <= checks
    same(held, streamed)


async def test_what_is_written_while_the_audit_runs_is_not_in_it_the_next_audit_finds_it(infrastructure, unique, monkeypatch):
    """The audit reads one snapshot of the store (exported by its transaction, imported by its workers): five edits
    committed by another connection after its workers started and it asked the store its first questions are not in
    it."""
    async with season(infrastructure, unique, 3_000) as (prefix, pool):
        asked = streamed.ask_for_the_pass

        async def ask_then_tamper(conn, prefix_, answers):
            await asked(conn, prefix_, answers)
            await tamper(pool, prefix)

        monkeypatch.setattr(streamed, "ask_for_the_pass", ask_then_tamper)
        during = await audit_stored(infrastructure.dsn, prefix=prefix, workers=2)
        monkeypatch.undo()
        after = await audit_stored(infrastructure.dsn, prefix=prefix, workers=2)
    assert during.clean, during.findings[:3]
    assert not after.clean and after.state_hash != during.state_hash


async def test_the_stores_hash_chains_streamed_break_where_the_held_log_says(infrastructure, unique):
    """`verify-digest` checks the chains as the store streams by (check_stored_chains): the findings of
    `check_hash_chains` over the log held, on a season tampered five ways."""
    async with season(infrastructure, unique, 3_000) as (prefix, pool):
        await tamper(pool, prefix)
        held = check_hash_chains(await load_from_postgres(infrastructure.dsn, prefix=prefix))
        streamed = await check_stored_chains(infrastructure.dsn, prefix)
    assert len(held) >= 3
    assert [f.as_dict() for f in streamed] == [f.as_dict() for f in held]


async def peaks(infrastructure, unique: str, events: int) -> tuple[int, int]:
    """In this process (the products' shares run in the workers), by tracemalloc: the memory the log takes read whole,
    and the streamed audit's peak."""
    async with season(infrastructure, f"{unique}{events}", events) as (prefix, _):
        tracemalloc.start()
        try:
            log = await load_from_postgres(infrastructure.dsn, prefix=prefix)
            held = tracemalloc.get_traced_memory()[0]
            del log
            tracemalloc.reset_peak()
            base = tracemalloc.get_traced_memory()[0]
            result = await audit_stored(infrastructure.dsn, prefix=prefix, workers=2)
            peak = tracemalloc.get_traced_memory()[1] - base
        finally:
            tracemalloc.stop()
    assert result.clean
    return held, peak


async def test_the_streamed_audit_grows_with_the_log_at_a_fraction_of_the_rate_a_held_log_does(infrastructure, unique):
    """A held log grows with its events; the streamed audit holds a few batches (the same at any size) and per stream,
    lot and fill only a head, contributions or totals."""
    small, large = await peaks(infrastructure, unique, 5_000), await peaks(infrastructure, unique, 20_000)
    print(
        f"held: {small[0] / 1e6:.1f} -> {large[0] / 1e6:.1f} MB; streamed peak: {small[1] / 1e6:.1f} -> {large[1] / 1e6:.1f} MB"
    )
    assert large[1] - small[1] < (large[0] - small[0]) / 3
