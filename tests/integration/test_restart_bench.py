"""`farmlink bench restart` in smoke mode against the real PostgreSQL: every case restarts a fresh
process that makes its fill, from a snapshot, after the longest tail, and without snapshots."""

import pytest

from farmlink.operations.bench.restart_bench import run_restart_bench

pytestmark = pytest.mark.integration


async def test_restart_bench_smoke_restarts_from_a_snapshot_after_a_tail_and_without(infrastructure):
    lines: list[str] = []
    figures = await run_restart_bench(infrastructure.dsn, smoke=True, say=lines.append)
    inputs, every = figures["inputs"], figures["snapshot_every"]
    assert figures["journal"]["snapshots"] == inputs // every
    cases = figures["cases"]
    assert set(cases) == {"snapshot", "tail", "none"}
    assert [run["snapshot_journal_seq"] for run in cases["snapshot"]] == [inputs]
    assert [run["tail_entries_replayed"] for run in cases["snapshot"]] == [0]
    assert [(run["snapshot_journal_seq"], run["tail_entries_replayed"]) for run in cases["tail"]] == [(inputs - every, every)]
    assert [(run["snapshot_journal_seq"], run["tail_entries_replayed"]) for run in cases["none"]] == [(None, inputs)]
    for runs in cases.values():
        for run in runs:
            assert run["new_fills"] == 1 and run["journal_seq"] == inputs
            assert 0 <= run["load_book_s"] <= run["batch_s"] < run["first_fill_committed_s"]
    assert any("goal <= 10 s" in line for line in lines)
