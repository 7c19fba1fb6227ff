"""The supervision ledger is derived from the log: each rule opens a problem at a supervision round with the
evidence that opened it, and closes it when the log shows it cured; inspectors open, rectify and close by hand."""

from datetime import datetime, timedelta, timezone

import pytest

from farmlink.audit.model import AuditLog, Record
from farmlink.office.ledger import derive

pytestmark = pytest.mark.unit

START = datetime(2020, 3, 1, tzinfo=timezone.utc)


class Log:
    """Events recorded one after another (each a second after the last), in any schema."""

    def __init__(self) -> None:
        self.records: list[Record] = []

    def add(self, schema: str, event_type: str, payload: dict) -> str:
        n = len(self.records) + 1
        event_id = f"e{n}"
        self.records.append(
            Record(schema, n, event_id, event_type, 1, f"s{n}", 1, START + timedelta(seconds=n), "p", "c", None, payload, "", "")
        )
        return event_id

    def round(self, round_id: str, as_of: str) -> None:
        self.add("pairing", "SupervisionRoundHeld", {"round_id": round_id, "as_of": as_of})

    def ledger(self):
        by_schema: dict[str, list[Record]] = {}
        for record in self.records:
            by_schema.setdefault(record.schema, []).append(record)
        return derive(AuditLog("test", by_schema))


def season() -> Log:
    log = Log()
    log.add(
        "cooperative",
        "CooperativeRegistered",
        {
            "village": "Fengjia",
            "township": "Ketian",
            "households": [{"household_id": "fj-1", "registered_poor": True}, {"household_id": "fj-2", "registered_poor": False}],
        },
    )
    log.add(
        "pairing",
        "PairingRegistered",
        {
            "pairing_id": "tongxin-fengjia",
            "helped_kind": "village",
            "helped": "Fengjia",
            "helped_township": "Ketian",
            "team": "Dejiang team",
        },
    )
    log.add(
        "cooperative", "HarvestRecorded", {"lot_id": "L1", "expires_on": "2020-08-20", "village": "Fengjia", "township": "Ketian"}
    )
    log.add("matching", "FillMade", {"fill_id": "F1", "lot_id": "L1", "outlet_id": "o1", "revenue_fen": 40000})
    return log


def pay(log: Log, fen: int, household: str = "fj-1") -> str:
    return log.add(
        "settlement",
        "PaymentMade",
        {"lot_id": "L1", "outlet_id": "o1", "amount_fen": fen, "household_income_fen": {household: fen}},
    )


def test_a_fill_not_paid_in_full_thirty_days_after_its_lots_expiry_opens_a_problem_for_the_villages_pairing_team():
    log = season()
    pay(log, 10000)
    log.round("r1", "2020-09-20")
    [problem] = log.ledger().problems.values()
    assert (problem.problem_id, problem.kind, problem.township, problem.owner_team, problem.state, problem.opened_in) == (
        "unpaid-fill:F1",
        "unpaid-fill",
        "Ketian",
        "Dejiang team",
        "open",
        "r1",
    )
    assert problem.reason == "10000 of 40000 fen paid as of 2020-09-20, over 30 days after the lot's expiry (2020-08-20)"
    assert problem.opened_evidence == ["e4", "e5"]  # the fill and the payment so far


def test_a_fill_within_its_thirty_days_opens_nothing():
    log = season()
    log.round("r1", "2020-09-18")
    assert log.ledger().problems == {}


def test_the_rest_of_the_payment_closes_the_problem_at_the_next_round_with_the_payments_as_evidence():
    log = season()
    first = pay(log, 10000)
    log.round("r1", "2020-09-20")
    second = pay(log, 30000)
    log.round("r2", "2020-10-20")
    [problem] = log.ledger().problems.values()
    assert (problem.state, problem.closed_in, problem.closed_how, problem.closed_evidence) == (
        "closed",
        "r2",
        "cured",
        [first, second],
    )


def test_a_payment_recorded_after_the_round_does_not_count_for_it():
    log = season()
    log.round("r1", "2020-09-20")
    pay(log, 40000)
    assert log.ledger().problems["unpaid-fill:F1"].state == "open"


def test_a_registered_poor_household_without_income_in_a_planned_township_is_a_problem_until_it_earns():
    log = season()
    plan = log.add("settlement", "PlanRecorded", {"township": "Ketian"})
    log.round("r1", "2020-06-30")
    ledger = log.ledger()
    assert set(ledger.problems) == {"no-income:fj-1"}  # fj-2 is not registered-poor
    assert ledger.problems["no-income:fj-1"].opened_evidence == ["e1", plan]
    pay(log, 40000)
    log.round("r2", "2020-07-31")
    assert log.ledger().problems["no-income:fj-1"].state == "closed"


def test_a_household_in_a_township_without_a_plan_opens_no_income_problem():
    log = season()
    log.round("r1", "2020-06-30")
    assert "no-income:fj-1" not in log.ledger().problems


def test_a_milestone_past_due_and_not_reached_is_owned_by_the_projects_team_and_closes_when_reached():
    log = season()
    log.add(
        "pairing",
        "ProjectRegistered",
        {
            "project_id": "chili",
            "owner_team": "chili team",
            "pairing_id": "tongxin-fengjia",
            "milestones": [{"milestone_id": "planted", "name": "planted", "due_on": "2020-05-31"}],
        },
    )
    log.round("r1", "2020-05-31")
    assert log.ledger().problems == {}  # due that day, not past due
    log.round("r2", "2020-06-01")
    problem = log.ledger().problems["milestone-overdue:chili/planted"]
    assert (problem.owner_team, problem.township, problem.opened_in) == ("chili team", "Ketian", "r2")
    reached = log.add("pairing", "ProjectMilestoneReached", {"project_id": "chili", "milestone_id": "planted"})
    log.round("r3", "2020-06-15")
    problem = log.ledger().problems["milestone-overdue:chili/planted"]
    assert (problem.state, problem.closed_evidence) == ("closed", [reached])


def test_an_inspectors_problem_keeps_its_rectification_record_and_closes_only_by_an_inspector():
    log = season()
    log.add(
        "pairing",
        "ProblemOpened",
        {
            "problem_id": "road-1",
            "township": "Ketian",
            "owner_team": "infrastructure team",
            "subject": "road to Fengjia",
            "reason": "washed out",
        },
    )
    log.add("pairing", "ProblemRectified", {"problem_id": "road-1", "action": "gravel laid"})
    log.round("r1", "2020-07-01")
    assert log.ledger().problems["road-1"].state == "open"  # rounds never close an inspector's problem
    log.add("pairing", "ProblemClosed", {"problem_id": "road-1", "reason": "repaired", "evidence": "photo 2020-07-10"})
    problem = log.ledger().problems["road-1"]
    assert (problem.state, problem.closed_how, problem.rectifications) == ("closed", "inspector", ["gravel laid"])


def test_an_inspector_may_close_a_rules_problem_with_a_reason_and_a_closure_of_nothing_is_an_anomaly():
    log = season()
    log.round("r1", "2020-09-20")
    log.add(
        "pairing",
        "ProblemClosed",
        {"problem_id": "unpaid-fill:F1", "reason": "buyer bankrupt; county fund paid", "evidence": "memo"},
    )
    log.add("pairing", "ProblemClosed", {"problem_id": "no-such", "reason": "x", "evidence": "y"})
    ledger = log.ledger()
    assert ledger.problems["unpaid-fill:F1"].closed_how == "inspector"
    assert ledger.anomalies == ["pairing/s7@1 (position 7, event e7): closes problem no-such, which is never opened"]


def test_the_ledger_is_the_same_whenever_it_is_derived():
    log = season()
    pay(log, 10000)
    log.round("r1", "2020-09-20")
    assert log.ledger().rows() == log.ledger().rows()


def test_support_promised_and_not_delivered_by_its_date_is_the_pairing_teams_problem_until_it_is_delivered():
    log = season()
    log.add(
        "pairing",
        "SupportPromised",
        {
            "promise_id": "sheds",
            "pairing_id": "tongxin-fengjia",
            "kind": "equipment",
            "value_fen": 500000,
            "due_on": "2020-06-30",
            "note": "two drying sheds",
        },
    )
    log.add("pairing", "SupportDelivered", {"pairing_id": "tongxin-fengjia", "kind": "equipment", "value_fen": 200000})
    log.round("r1", "2020-06-30")
    assert log.ledger().problems == {}  # due that day
    log.round("r2", "2020-07-01")
    problem = log.ledger().problems["support-undelivered:sheds"]
    assert (problem.owner_team, problem.township, problem.reason) == (
        "Dejiang team",
        "Ketian",
        "200000 of 500000 fen delivered as of 2020-07-01; due 2020-06-30",
    )
    rest = log.add("pairing", "SupportDelivered", {"pairing_id": "tongxin-fengjia", "kind": "equipment", "value_fen": 300000})
    log.round("r3", "2020-07-15")
    problem = log.ledger().problems["support-undelivered:sheds"]
    assert (problem.state, problem.closed_evidence[-1]) == ("closed", rest)


def floor_season(cap: str | None) -> Log:
    log = Log()
    log.add(
        "pairing",
        "PairingRegistered",
        {"pairing_id": "yuping", "helped_kind": "township", "helped": "Tangba", "helped_township": None, "team": "Yuping team"},
    )
    log.add(
        "buyer",
        "CommitmentMade",
        {
            "commitment_id": "floor",
            "product": "oil_tea_fruit",
            "min_grade": "B",
            "valid_from": "2020-10-01",
            "valid_to": "2020-12-31",
            "eligible_counties": ["Yanhe"],
            "eligible_cooperatives": [],
            "cap_quantity": cap,
        },
    )
    log.add(
        "cooperative",
        "HarvestRecorded",
        {
            "lot_id": "OT1",
            "product": "oil_tea_fruit",
            "grade": "A",
            "quantity": "1000",
            "available_from": "2020-10-10",
            "expires_on": "2020-10-20",
            "county": "Yanhe",
            "township": "Tangba",
            "village": "Tangba paired village",
            "cooperative_id": "tangba",
        },
    )
    log.add(
        "matching", "FillMade", {"fill_id": "F1", "lot_id": "OT1", "outlet_id": "floor", "quantity": "400", "revenue_fen": 160000}
    )
    return log


def test_an_eligible_lot_that_expired_partly_unsold_while_the_floor_had_room_stays_open_until_an_inspector_closes_it():
    log = floor_season(cap="5000")
    log.round("r1", "2020-10-31")
    problem = log.ledger().problems["floor-unused:floor/OT1"]
    assert (problem.owner_team, problem.township) == ("Yuping team", "Tangba")
    assert problem.reason == "600 unsold when the lot expired on 2020-10-20, while floor had room (4600 of its cap 5000 left)"
    log.round("r2", "2020-11-30")
    assert log.ledger().problems["floor-unused:floor/OT1"].state == "open"  # nothing in the log can cure an expired lot
    log.add(
        "pairing",
        "ProblemClosed",
        {"problem_id": "floor-unused:floor/OT1", "reason": "Tangba had reached its per-mu limit", "evidence": "planting records"},
    )
    assert log.ledger().problems["floor-unused:floor/OT1"].closed_how == "inspector"


def test_a_floor_whose_cap_was_used_up_or_a_lot_it_could_not_take_opens_nothing():
    full = floor_season(cap="400")
    full.round("r1", "2020-10-31")
    assert full.ledger().problems == {}
    low_grade = floor_season(cap=None)
    low_grade.records[2].payload["grade"] = "C"
    low_grade.round("r1", "2020-10-31")
    assert low_grade.ledger().problems == {}
