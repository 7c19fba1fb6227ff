"""`farmlink what-if`'s comparison (sorted, summed, placed, nothing written) and the command's tables, JSON and CSV."""

from __future__ import annotations

import copy
import csv
import dataclasses
import io
import json

import pytest
from typer.testing import CliRunner

from farmlink.audit.model import AuditLog
from farmlink.operations.bench.synthetic import generate
from farmlink.cli import app
from farmlink.office.whatif import CSV_COLUMNS, Changes, what_if
from tests.unit.whatif_market import chili_market

pytestmark = pytest.mark.unit


# ================================================================ the comparison and nothing written


def test_households_and_villages_come_sorted_by_county_township_village_and_household():
    log = generate(3_000).audit_log()
    result = what_if(log, Changes.parse(floor=["oil_tea_fruit=900"]))
    keys = [(h.county, h.township, h.village, h.household_id) for h in result.households]
    assert keys == sorted(keys)
    assert [(v.county, v.township, v.village) for v in result.villages] == sorted({k[:3] for k in keys})


def test_each_village_sums_its_households_and_the_totals_sum_the_villages():
    result = what_if(generate(3_000).audit_log(), Changes.parse(floor=["oil_tea_fruit=900"]))
    assert not result.identical
    for v in result.villages:
        members = [h for h in result.households if (h.county, h.township, h.village) == (v.county, v.township, v.village)]
        assert (v.households, v.registered_poor) == (len(members), sum(h.registered_poor for h in members))
        assert (v.recorded_fen, v.replayed_fen) == (sum(h.recorded_fen for h in members), sum(h.replayed_fen for h in members))
        assert v.fills_changed <= sum(h.fills_changed for h in members)
    assert result.totals.replayed_fen == sum(v.replayed_fen for v in result.villages)
    assert result.totals.difference_fen == sum(v.difference_fen for v in result.villages)
    assert all(isinstance(h.difference_fen, int) for h in result.households)


def test_households_are_placed_by_their_cooperatives_registration():
    result = what_if(chili_market(), Changes())
    assert [
        (h.household_id, h.cooperative_id, h.county, h.township, h.village, h.registered_poor) for h in result.households
    ] == [
        ("h1", "co1", "沿河", "官舟", "白果", True),
        ("h2", "co1", "沿河", "官舟", "白果", False),
        ("h3", "co2", "沿河", "官舟", "黄土", True),
    ]
    assert [(v.village, v.households, v.registered_poor) for v in result.villages] == [("白果", 2, 1), ("黄土", 1, 1)]


def test_the_recorded_log_is_left_exactly_as_it_was():
    log = chili_market()
    before = copy.deepcopy(log.by_schema)
    what_if(log, Changes.parse(floor=["chili=900"], cap=["C1=none"], valid_to=["chili=2020-08-31"]))
    assert log.by_schema == before


# ================================================================ the command (the log read from PostgreSQL is replaced by one in memory)


@pytest.fixture
def command(monkeypatch):
    """`farmlink what-if` over chili_market(); DATABASE_URL points nowhere, so nothing could be written even by mistake."""
    monkeypatch.setenv("DATABASE_URL", "postgresql://nobody@127.0.0.1:1/none")
    monkeypatch.setenv("DATABASE_URL_AUDITOR", "postgresql://farmlink_auditor@127.0.0.1:1/none")
    read: list[tuple[str, str]] = []

    async def load_log(dsn: str, prefix: str = "") -> AuditLog:
        read.append((dsn, prefix))
        return chili_market()

    monkeypatch.setattr("farmlink.office.whatif.load_log", load_log)
    runner = CliRunner()
    return lambda *args: (runner.invoke(app, ["what-if", *args]), read)


def test_the_command_prints_villages_households_totals_and_that_nothing_was_written(command):
    result, read = command("--floor", "chili=850")
    assert result.exit_code == 0, result.output
    assert read == [("postgresql://farmlink_auditor@127.0.0.1:1/none", "")]  # the auditor's read-only role
    assert "terms changed" in result.output and "+30000" in result.output
    assert "totals: 3 households earned 1730000 fen as recorded, 1760000 fen as replayed (+30000 fen" in result.output
    assert "nothing was written" in result.output


def test_the_command_gives_one_json_object_for_machines(command):
    result, _ = command("--floor", "chili=850", "--format", "json")
    assert result.exit_code == 0, result.output
    answer = json.loads(result.stdout)
    assert (answer["format"], answer["format_version"], answer["nothing_written"], answer["identical"]) == (
        "farmlink.what-if",
        1,
        True,
        False,
    )
    assert [(h["household_id"], h["difference_fen"]) for h in answer["households"]] == [("h1", 0), ("h2", 0), ("h3", 30_000)]
    assert answer["totals"]["difference_fen"] == 30_000


def test_the_command_gives_csv_with_a_row_per_household_village_and_the_total(command):
    result, _ = command("--floor", "chili=850", "--format", "csv", "--changed-only")
    assert result.exit_code == 0, result.output
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    assert tuple(rows[0]) == CSV_COLUMNS
    assert [(r["level"], r["household_id"] or r["village"], r["difference_fen"]) for r in rows] == [
        ("household", "h3", "30000"),
        ("village", "黄土", "30000"),
        ("total", "", "30000"),
    ]


def test_the_command_without_terms_is_the_identity_replay(command):
    result, _ = command("--format", "jsonl")
    assert result.exit_code == 0, result.output
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert lines[-1]["section"] == "totals" and lines[-1]["identical"] is True and lines[-1]["difference_fen"] == 0


@pytest.mark.parametrize(
    ("args", "named"),
    [
        (["--floor", "tea=460"], "--floor tea=460"),
        (["--floor", "chili=4.6"], "--floor chili=4.6"),
        (["--valid-to", "chili=2020-07-01"], "--valid-to chili=2020-07-01"),
        (["--schema-prefix", "Bad-"], "--schema-prefix Bad-"),
    ],
)
def test_the_command_refuses_a_bad_option_with_exit_2_naming_it(command, args, named):
    result, _ = command(*args)
    assert result.exit_code == 2
    assert named in result.output


def test_the_command_exits_1_when_the_identity_replay_differs_from_the_log(command, monkeypatch):
    log = chili_market()
    rows = log.by_schema["matching"]
    index, fill = next((i, r) for i, r in enumerate(rows) if r.event_type == "FillMade")
    incomes = {
        household: fen + 100 for household, fen in fill.payload["household_income_fen"].items()
    }  # a yuan more each, forged
    rows[index] = dataclasses.replace(fill, payload={**fill.payload, "household_income_fen": incomes})

    async def load_log(dsn: str, prefix: str = "") -> AuditLog:
        return log

    monkeypatch.setattr("farmlink.office.whatif.load_log", load_log)
    result, _ = command()
    assert result.exit_code == 1
    assert "the identity replay differs from the recorded fills: run `farmlink audit`" in result.output
