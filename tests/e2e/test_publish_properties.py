"""A sample of every payload the input contract accepts, published through the live services:
each line is accepted or rejected with a reason naming its line, and nothing raises. The
payloads are drawn from the input models themselves (tests/strategies.py): the longest ids and
names, Chinese text, names with spaces, boundary decimals and fen, every input type."""

import asyncio

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from farmlink.producers.publisher import publish_lines
from farmlink.producers.scenario import ScenarioLine, parse_line
from tests.strategies import INPUT_TYPE_NAMES, payloads
from tests.unit.test_publisher_properties import as_line

pytestmark = pytest.mark.e2e

registrations_first = st.tuples(*(st.tuples(st.just(kind), payloads(kind)) for kind in INPUT_TYPE_NAMES))
"""One line of every input type, in the order of INPUT_KINDS (registrations before what uses them)."""


@settings(max_examples=3, deadline=None, phases=[Phase.generate], suppress_health_check=list(HealthCheck))
@given(st.lists(registrations_first, min_size=3, max_size=3))
def test_every_valid_line_is_published_and_gets_an_outcome_from_the_live_services(clean_system, rounds):
    lines = [
        parse_line(n, as_line(kind, payload)) for n, (kind, payload) in enumerate((pair for r in rounds for pair in r), start=1)
    ]
    valid = [line for line in lines if isinstance(line, ScenarioLine)]
    outcomes: list[tuple[int, str | None]] = []

    summary = asyncio.run(
        publish_lines(clean_system.bootstrap, valid, on_line=lambda line, reason: outcomes.append((line.line_no, reason)))
    )

    assert summary.accepted + len(summary.rejected) == len(valid)
    assert summary.accepted >= len(rounds), "unsigned lines (a market price, a plan) are accepted whatever their values"
    assert sorted(n for n, _ in outcomes) == [line.line_no for line in valid], "every line has exactly one outcome"
    for line_no, reason in outcomes:
        assert reason is None or reason.startswith(f"line {line_no}: "), reason
