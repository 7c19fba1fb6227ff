"""The report's rows are sums of the audited log: fills per product and month, commitments, coverage; the export holds every row."""

import csv
import json
from collections import Counter
from decimal import Decimal

import pytest

from farmlink.audit.report_collect import coverage, iter_fills, read_journal, report_data
from farmlink.audit.report_export import write_exports
from farmlink.audit.report_rows import FillRow, HouseholdIncome
from tests.report_helpers import Result, finding_at_event, in_memory

pytestmark = pytest.mark.unit


@pytest.fixture(scope="module")
def log():
    return in_memory(1_000)


def fill_events(log):
    return [r for r in log.by_schema["matching"] if r.event_type == "FillMade"]


def test_fills_are_summed_per_product_and_month_without_losing_a_fen(log):
    data = report_data(Result(log))
    events = fill_events(log)
    assert events, "the synthetic season has fills"
    assert sum(m.fills for m in data.months) == len(events)
    assert sum(m.revenue_fen for m in data.months) == sum(e.payload["revenue_fen"] for e in events)
    assert sum((m.quantity for m in data.months), Decimal(0)) == sum((Decimal(e.payload["quantity"]) for e in events), Decimal(0))
    assert sum(m.floor_activations for m in data.months) == sum(e.payload["price_basis"] == "floor" for e in events)
    assert all(len(m.month) == 7 for m in data.months)  # every fill has a business date in this log


def test_a_fill_is_dated_by_the_later_of_its_lot_and_its_outlet():
    log = in_memory(1_000)
    keys = {"HarvestRecorded": "lot_id", "OrderPlaced": "order_id", "CommitmentMade": "commitment_id"}
    facts = {}
    for entry in (r for r in log.by_schema["matching"] if r.event_type == "InputJournaled"):
        if (key := keys.get(entry.payload["source_event_type"])) is not None:
            facts[entry.payload["fact"][key]] = entry.payload["fact"]
    for fill in iter_fills(log, read_journal(log)):
        outlet = facts[fill.outlet_id]
        start = outlet.get("deliver_from") or outlet.get("valid_from")
        assert str(fill.business_date) == max(facts[fill.lot_id]["available_from"], start)


def test_each_commitment_keeps_its_fills_and_counts_its_floor_activations(log):
    data = report_data(Result(log))
    by_outlet = Counter(e.payload["outlet_id"] for e in fill_events(log) if e.payload["outlet_kind"] == "commitment")
    floors = Counter(e.payload["outlet_id"] for e in fill_events(log) if e.payload["price_basis"] == "floor")
    assert data.commitments
    for commitment in data.commitments:
        assert len(commitment.fills) == by_outlet[commitment.commitment_id]
        assert commitment.activations == floors[commitment.commitment_id]
        assert all(p.observed_on for p in commitment.prices)


def test_a_floor_activation_counts_what_it_paid_above_the_market():
    at_floor = FillRow(
        1,
        "e1",
        "f1",
        "oil_tea_fruit",
        None,
        "lot-1",
        "coop-1",
        "B",
        "commitment",
        "c-1",
        "b-1",
        Decimal("2500.5"),
        400,
        "floor",
        1_000_200,
        400,
        360,
        None,
    )
    at_market = FillRow(
        2,
        "e2",
        "f2",
        "oil_tea_fruit",
        None,
        "lot-2",
        "coop-1",
        "A",
        "commitment",
        "c-1",
        "b-1",
        Decimal(10),
        520,
        "market",
        5_200,
        400,
        520,
        None,
    )
    assert at_floor.above_market_fen == Decimal("100020.0")  # (400 - 360) fen x 2,500.5 kg
    assert at_market.above_market_fen == 0


def test_coverage_counts_registered_poor_households_with_and_without_income_per_village_and_county():
    households = [
        HouseholdIncome("h1", "c1", "Fengjia", "Ketian", "Yanhe", True, 1200),
        HouseholdIncome("h2", "c1", "Fengjia", "Ketian", "Yanhe", True, 0),
        HouseholdIncome("h3", "c1", "Fengjia", "Ketian", "Yanhe", False, 500),
        HouseholdIncome("h4", "c2", "Tangba village", "Tangba", "Yanhe", True, 300),
        HouseholdIncome("h5", "c3", "Tianping village", "Tianping", "Yuping", True, 0),
    ]
    villages, counties = coverage(households)
    fengjia = next(v for v in villages if v.village == "Fengjia")
    assert (fengjia.households, fengjia.registered_poor, fengjia.with_income, fengjia.without_income, fengjia.paid_fen) == (
        3,
        2,
        1,
        1,
        1700,
    )
    assert [(c.county, c.registered_poor, c.with_income, c.without_income) for c in counties] == [
        ("Yanhe", 3, 2, 1),
        ("Yuping", 1, 0, 1),
    ]


def test_the_log_names_its_counties_and_a_finding_cites_its_event(log):
    finding = finding_at_event(log, "matching", 40)
    data = report_data(Result(log, [finding], {"read postgres": 1.5}))
    assert data.county_names == ["Yanhe", "Yuping"]
    cited = data.cited[finding.event_id]
    assert (cited.schema, cited.global_position, cited.event_type) == ("matching", 41, log.by_schema["matching"][40].event_type)
    assert [(p.name, p.seconds) for p in data.summary.phases] == [("read postgres", 1.5)]


def test_the_export_holds_every_fill_household_commitment_and_village(log, tmp_path):
    finding = finding_at_event(log, "settlement", 3)
    data = report_data(Result(log, [finding]))
    written = write_exports(tmp_path, data, iter_fills(log, read_journal(log)))

    def rows(name):
        with (tmp_path / name).open(encoding="utf-8") as f:
            return list(csv.DictReader(f))

    fills = rows("fills.csv")
    assert len(fills) == written["fills.csv"] == len(fill_events(log))
    assert sum(int(f["revenue_fen"]) for f in fills) == sum(e.payload["revenue_fen"] for e in fill_events(log))
    assert {f["event_id"] for f in fills} == {e.event_id for e in fill_events(log)}
    assert len(rows("households.csv")) == len(data.households)
    assert len(rows("commitments.csv")) == len(data.commitments)
    assert len(rows("villages.csv")) == len(data.villages) and len(rows("counties.csv")) == 2
    assert json.loads((tmp_path / "findings.json").read_text(encoding="utf-8"))[0]["event_id"] == finding.event_id
    summary = json.loads((tmp_path / "summary.json").read_text(encoding="utf-8"))
    assert summary["counties"] == ["Yanhe", "Yuping"] and summary["events_audited"] == log.count()
