"""The matcher benchmark in smoke mode: it runs, it reports figures, and the engine it times makes
exactly the fills of matching-rules.md read literally. No timing is asserted."""

import pytest

from farmlink.operations.bench.matcher_bench import engine_fills, reference_fills, run_matcher_bench, synthetic_journal

pytestmark = pytest.mark.unit


def test_smoke_bench_makes_the_reference_fills_and_reports_positive_figures():
    said = []
    figures = run_matcher_bench(smoke=True, say=said.append)
    assert figures["identical_fills"] is True
    assert figures["checked_fills"] > 0
    assert figures["inputs"] == 20_000
    for name in ("inputs_per_s", "fills", "resting_lots", "open_outlets", "bytes_held", "bytes_per_resting"):
        assert figures[name] > 0, name
    assert any("inputs/s" in line for line in said)


def test_a_shorter_synthetic_journal_is_the_start_of_a_longer_one():
    assert synthetic_journal(1_500) == synthetic_journal(3_000)[:1_500]


def test_the_bench_checks_the_engine_against_the_one_reference_model():
    from matcher import reference

    assert reference_fills is reference.reference_fills
    journal = synthetic_journal(2_000)
    assert engine_fills(journal) == reference.reference_fills(journal)
