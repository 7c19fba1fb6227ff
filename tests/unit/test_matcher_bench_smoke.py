"""The matcher benchmark in smoke mode: it runs, it reports figures, and the engine it times makes
exactly the fills of matching-rules.md read literally. No timing is asserted."""

import importlib.util
from collections import defaultdict
from decimal import localcontext
from pathlib import Path

import pytest

from farmlink.bench.matcher_bench import reference_fills, run_matcher_bench, synthetic_journal

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


def test_the_bench_reference_agrees_with_the_reference_of_the_property_tests():
    path = Path(__file__).with_name("test_matcher_properties.py")
    spec = importlib.util.spec_from_file_location("_matcher_properties_for_bench", path)
    properties = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(properties)
    journal = synthetic_journal(2_000)
    references = defaultdict(properties.Reference)
    with localcontext() as context:
        context.prec = 60
        for fact in journal:
            references[fact.product].process(fact)
    assert {product: reference.fills for product, reference in references.items()} == reference_fills(journal)
