"""The pairing office on the real services: pairings, support and projects published through Kafka, recorded
by the pairing service in PostgreSQL, read back by `farmlink pairings` beside the helped village's fills and
income (before the day the pairing began and since), and audited clean."""

from datetime import date

import pytest

from farmlink.audit.run import audit
from farmlink.operations.caughtup import wait_until_caught_up
from farmlink.cli.pairings import read
from farmlink.producers.publisher import publish_lines
from farmlink.producers.scenario import read_scenario

from tests.e2e.inputs import scenario_file
from tests.payloads import chili_order, fengjia, fengjia_lot

pytestmark = pytest.mark.e2e


async def test_a_pairing_its_support_and_its_projects_are_reported_beside_the_helped_villages_income(clean_system, tmp_path):
    season = scenario_file(
        tmp_path / "pairing.jsonl",
        ("cooperative.registered", fengjia(("fj-1", True), ("fj-2", True))),
        ("buyer.registered", {"buyer_id": "tongren-mart", "name": "Tongren mart"}),
        # the pairing office `main` is registered by publish itself: the file names no office
        (
            "pairing.registered",
            {
                "pairing_id": "tongxin-fengjia",
                "kind": "1+1",
                "helper": "Tongxin community, Dejiang",
                "helper_kind": "village",
                "helped": "Fengjia",
                "helped_kind": "village",
                "helped_township": "Ketian",
                "team": "Dejiang industry team",
                "registered_on": "2020-07-01",
            },
        ),
        (
            "support.delivered",
            {
                "delivery_id": "fund-1",
                "pairing_id": "tongxin-fengjia",
                "kind": "money",
                "quantity": "2000000",
                "value_fen": 2000000,
                "delivered_on": "2020-03-20",
                "note": "chili fund",
                "to_cooperative_id": "fengjia",
            },
        ),
        (
            "support.delivered",
            {
                "delivery_id": "experts-1",
                "pairing_id": "tongxin-fengjia",
                "kind": "experts",
                "quantity": "20",
                "value_fen": 0,
                "delivered_on": "2020-04-01",
                "note": "two technicians",
                "to_village": "Fengjia",
            },
        ),
        (
            "project.registered",
            {
                "project_id": "fengjia-chili",
                "name": "Fengjia chili",
                "owner_team": "Dejiang industry team",
                "target": "30 mu",
                "due_on": "2020-10-31",
                "pairing_id": "tongxin-fengjia",
                "product": "chili",
                "milestones": [
                    {"milestone_id": "planted", "name": "planted", "due_on": "2020-05-31"},
                    {"milestone_id": "sold", "name": "first sale", "due_on": "2020-08-31"},
                ],
            },
        ),
        (
            "project.milestone_reached",
            {"project_id": "fengjia-chili", "milestone_id": "planted", "reached_on": "2020-05-20", "evidence": "planting survey"},
        ),
        ("harvest.recorded", fengjia_lot("lot-1", "100")),
        ("order.placed", chili_order("o1")),
        ("payment.made", {"lot_id": "lot-1", "outlet_id": "o1", "amount_fen": 40000}),
        (
            "project.milestone_reached",
            {
                "project_id": "fengjia-chili",
                "milestone_id": "harvest",
                "reached_on": "2020-08-20",
                "evidence": "no such milestone",
            },
        ),
    )
    summary = await publish_lines(clean_system.bootstrap, read_scenario(season))
    assert summary.accepted == 10
    assert summary.rejected == ["line 11: payload.milestone_id: project fengjia-chili has no milestone harvest"]
    await wait_until_caught_up(clean_system.bootstrap, clean_system.dsn)

    view = await read(date(2020, 9, 1))
    [pairing] = view["pairings"]
    assert {
        k: pairing[k]
        for k in (
            "pairing_id",
            "kind",
            "helped",
            "support_fen",
            "support_by_kind",
            "households",
            "registered_poor",
            "registered_poor_with_income",
            "fills",
            "household_income_fen",
            "registered_on",
            "fills_before",
            "fills_after",
            "income_before_fen",
            "income_after_fen",
        )
    } == {
        "pairing_id": "tongxin-fengjia",
        "kind": "1+1",
        "helped": "Fengjia, Ketian",
        "support_fen": 2000000,
        "support_by_kind": {"experts": 0, "money": 2000000},
        "households": 2,
        "registered_poor": 2,
        "registered_poor_with_income": 1,
        "fills": 1,
        "household_income_fen": 40000,
        "registered_on": "2020-07-01",
        "fills_before": 0,  # the pairing began before the lot came to market: its fill and its payment count after
        "fills_after": 1,
        "income_before_fen": 0,
        "income_after_fen": 40000,
    }
    [project] = view["projects"]
    assert (project["milestones"], project["overdue"], project["state"]) == ("1/2", "sold", "overdue")

    result = await audit(clean_system.bootstrap, clean_system.dsn)
    assert result.findings == []
