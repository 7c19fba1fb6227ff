"""The event-store benchmarks run end to end in smoke mode against the real PostgreSQL, both sides."""

import pytest

pytestmark = pytest.mark.integration

pytest.importorskip("eventsourcing.postgres", reason='the peer: pip install "eventsourcing[postgres]==9.5.6" (bench extra)')

from farmlink.operations.bench.store_bench import run_append_bench, run_replay_bench  # noqa: E402


async def test_append_bench_smoke_measures_both_sides_in_every_case(infrastructure):
    lines: list[str] = []
    figures = await run_append_bench(infrastructure.dsn, smoke=True, say=lines.append)
    assert set(figures["cases"]) == {"single", "four", "batch"}
    for name, case in figures["cases"].items():
        assert case["ours_events_per_s"] > 0 and case["peer_events_per_s"] > 0, name
        assert case["ours_events"] > 0 and case["peer_events"] > 0, name
        assert case["ratio"] > 0, name
        assert isinstance(case["met"], bool)
        # Every event we counted was committed, with its outbox row (warm-up rows come on top).
        assert case["checked_rows"]["ours_events"] >= case["ours_events"]
        assert case["checked_rows"]["ours_outbox"] == case["checked_rows"]["ours_events"]
        assert case["checked_rows"]["peer_events"] >= case["peer_events"]
    assert figures["cases"]["batch"]["ours_events"] % 100 == 0
    assert figures["server"]["ours_session_synchronous_commit"] != "off"
    assert "off" not in figures["server"]["peer_session_synchronous_commit"]
    assert any("met" in line for line in lines)


async def test_replay_bench_smoke_folds_the_same_projection_on_both_sides(infrastructure):
    lines: list[str] = []
    figures = await run_replay_bench(infrastructure.dsn, smoke=True, say=lines.append)
    assert figures["events"] == 5_000
    assert figures["ours_events_per_s"] > 0 and figures["peer_events_per_s"] > 0
    assert figures["ratio"] > 0
    assert figures["projection"]["events"] == 5_000 and figures["projection"]["price_fen_sum"] > 0
    assert all(rate > 0 for rate in figures["experiments_events_per_s"].values())
    assert isinstance(figures["goals_met"], bool)
    assert any("met" in line for line in lines)
