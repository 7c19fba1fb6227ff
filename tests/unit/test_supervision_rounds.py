"""Supervision rounds are recorded facts: the pairing service runs the ledger's rules over the facts before a
round's cut-off and records what they opened and cured; the audit re-derives the ledger from the log and reports
any difference (a recorded problem edited, deleted or slipped in, a fact the round saw gone)."""

import asyncio
from dataclasses import replace
from datetime import date

import pytest

from contracts.inputs import SupervisionRound
from events.consumer import Delivery
from farmlink.audit.model import AuditLog, Record
from farmlink.audit.supervision import check_supervision
from farmlink.office.ledger import derive
from events.unit import MemoryUnitOfWork
from services.pairing import rounds
from services.pairing.facts import FACT_TYPES
from tests.unit.test_ledger import Log, pay, season

pytestmark = pytest.mark.unit


def service_round(log: Log, round_id: str, as_of: str, facts: list[Record] | None = None) -> MemoryUnitOfWork:
    """What the pairing service records for a round that saw `facts` (default: every fact before it), appended
    to the log as the service appends it: the round, what it saw, and the problems it found and cured."""
    seen = [r for r in log.records if r.event_type in FACT_TYPES] if facts is None else facts
    uow = MemoryUnitOfWork("pairing", "service:pairing", lambda envelope: None)
    known = {r.payload["problem_id"]: r for r in log.records if r.event_type == "ProblemFound"}
    uow.load("problem_ids", {"all": sorted(known)})
    for problem_id, record in known.items():
        cured = any(r.event_type == "ProblemCured" and r.payload["problem_id"] == problem_id for r in log.records)
        closed = any(r.event_type == "ProblemClosed" and r.payload["problem_id"] == problem_id for r in log.records)
        state = "closed" if cured or closed else "open"
        uow.load(
            rounds.PROBLEMS.name,
            {problem_id: {"problem_id": problem_id, "kind": record.payload["kind"], "state": state, "opened_in": "-"}},
        )
    uow.load("round_facts", {round_id: seen})
    log.round(round_id, as_of)
    for event in rounds.evaluate(uow, round_id, date.fromisoformat(as_of)):
        log.add("pairing", event.payload.event_type, event.payload.model_dump(mode="json"))  # type: ignore[attr-defined]
    return uow


def audit_log(log: Log) -> AuditLog:
    by_schema: dict[str, list[Record]] = {}
    for record in log.records:
        by_schema.setdefault(record.schema, []).append(record)
    return AuditLog("test", by_schema)


def recorded(log: Log, event_type: str) -> list[Record]:
    return [r for r in log.records if r.event_type == event_type]


def late_payment_season() -> Log:
    log = season()
    service_round(log, "september", "2020-09-25")
    pay(log, 40000)
    service_round(log, "october", "2020-10-25")
    return log


def test_a_round_records_the_problem_its_rules_find_with_the_evidence_and_what_it_saw():
    log = season()
    service_round(log, "september", "2020-09-25")
    [found] = recorded(log, "ProblemFound")
    assert found.payload["problem_id"] == "unpaid-fill:F1" and found.payload["owner_team"] == "Dejiang team"
    assert found.payload["evidence"] == ["e4"]  # the fill
    [evaluated] = recorded(log, "SupervisionRoundEvaluated")
    assert evaluated.payload["seen"] == [
        {"schema_name": "cooperative", "through_position": 3, "facts": 2},
        {"schema_name": "matching", "through_position": 4, "facts": 1},
        {"schema_name": "pairing", "through_position": 2, "facts": 1},
    ]
    assert (evaluated.payload["opened"], evaluated.payload["cured"]) == (1, 0)


def test_the_next_round_records_the_problem_cured_citing_the_payment():
    log = late_payment_season()
    [cured] = recorded(log, "ProblemCured")
    payment = next(r.event_id for r in log.records if r.event_type == "PaymentMade")
    assert (cured.payload["round_id"], cured.payload["problem_id"], cured.payload["evidence"]) == (
        "october",
        "unpaid-fill:F1",
        [payment],
    )


def test_a_round_that_finds_an_open_problem_again_records_nothing_new():
    log = season()
    service_round(log, "september", "2020-09-25")
    service_round(log, "october", "2020-10-25")
    assert len(recorded(log, "ProblemFound")) == 1 and recorded(log, "ProblemCured") == []


def test_the_ledger_of_recorded_rounds_is_what_the_log_shows_and_the_audit_finds_nothing():
    log = late_payment_season()
    [problem] = derive(audit_log(log)).problems.values()
    assert (problem.opened_in, problem.state, problem.closed_in) == ("september", "closed", "october")
    assert check_supervision(audit_log(log)) == []


def test_a_round_sees_only_the_facts_before_its_cutoff():
    log = season()
    pay(log, 40000)
    facts = [r for r in log.records if r.event_type in FACT_TYPES and r.event_type != "PaymentMade"]
    service_round(log, "september", "2020-09-25", facts)  # the payment came after the cut-off
    assert [r.payload["problem_id"] for r in recorded(log, "ProblemFound")] == ["unpaid-fill:F1"]
    assert check_supervision(audit_log(log)) == []  # the audit derives the round over what it recorded it saw


def test_a_fact_is_before_a_cutoff_only_below_its_partitions_offset():
    row = {"topic": "farmlink.matching.fills", "kafka_partition": 2, "kafka_offset": 7}
    assert rounds._before(row, {"farmlink.matching.fills/2": 8}) and not rounds._before(row, {"farmlink.matching.fills/2": 7})
    assert not rounds._before(row, {"farmlink.matching.fills/1": 100})  # a partition the cut-off does not name held nothing
    assert rounds._before(row, None)  # a round without a cut-off sees every fact kept


def tamper(log: Log, event_type: str, change) -> None:
    index = next(i for i, r in enumerate(log.records) if r.event_type == event_type)
    edited = change(log.records[index])
    if edited is None:
        del log.records[index]
    else:
        log.records[index] = edited


def test_an_edited_recorded_problem_is_found():
    log = late_payment_season()
    tamper(log, "ProblemFound", lambda r: replace(r, payload={**r.payload, "owner_team": "nobody"}))
    [finding] = check_supervision(audit_log(log))
    assert finding.check == "supervision" and finding.code == "AUD010"
    assert "owner_team: recorded 'nobody', the log shows 'Dejiang team'" in finding.message


def test_a_deleted_recorded_problem_is_found():
    log = late_payment_season()
    tamper(log, "ProblemFound", lambda r: None)
    messages = [f.message for f in check_supervision(audit_log(log))]
    assert messages == ["the log shows round september found problem unpaid-fill:F1; it recorded no such event"]


def test_a_deleted_cure_and_a_cure_the_log_does_not_show_are_found():
    log = late_payment_season()
    tamper(log, "ProblemCured", lambda r: replace(r, payload={**r.payload, "round_id": "september"}))
    messages = sorted(f.message for f in check_supervision(audit_log(log)))
    assert messages == [
        "round september recorded problem unpaid-fill:F1 cured; the log does not show it",
        "the log shows round october cured problem unpaid-fill:F1; it recorded no such event",
    ]


def test_a_fact_a_round_saw_that_is_gone_from_the_log_is_found():
    log = late_payment_season()
    tamper(log, "PaymentMade", lambda r: None)
    messages = [f.message for f in check_supervision(audit_log(log))]
    assert "round october saw 1 facts of settlement up to position 8; the log holds 0" in messages


class KeptSoFar:
    """A hand-written stand-in for the pairing schema: the facts the service has kept, and its progress, which
    moves on to `later` once it has been looked at."""

    def __init__(self, facts: list[dict], progress: int, later: int | None = None):
        self.facts, self.progress, self.later, self.looks = facts, progress, later, 0

    async def fetch(self, query: str, *args):
        if "FROM fact_progress" in query:
            self.looks += 1
            offset = self.progress if self.looks == 1 or self.later is None else self.later
            return [{"topic": "farmlink.settlement.events", "kafka_partition": 0, "next_offset": offset}]
        if "FROM facts" in query:
            return self.facts
        return []


def kept_fact(offset: int) -> dict:
    return {
        "event_id": f"e{offset}",
        "schema_name": "settlement",
        "global_position": offset + 1,
        "event_type": "PaymentMade",
        "occurred_at": None,
        "payload": "{}",
        "topic": "farmlink.settlement.events",
        "kafka_partition": 0,
        "kafka_offset": offset,
    }


def a_round(cutoff: dict[str, int] | None):
    return SupervisionRound(round_id="october", as_of="2020-10-25", cutoff=cutoff)


def test_a_round_waits_until_the_facts_kept_reach_its_cutoff_and_then_sees_only_those_below_it():
    uow = MemoryUnitOfWork("pairing", "service:pairing", lambda envelope: None)
    kept = KeptSoFar([kept_fact(0), kept_fact(1), kept_fact(2)], progress=1, later=3)
    asyncio.run(rounds.load_rounds(kept, uow, [a_round({"farmlink.settlement.events/0": 2})]))
    assert kept.looks == 2  # behind at the first look, caught up at the next
    assert [f.event_id for f in uow.get("round_facts", "october")] == ["e0", "e1"]  # e2 came after the cut-off


def test_a_round_whose_facts_stay_behind_its_cutoff_is_tried_again_not_rejected(monkeypatch):
    monkeypatch.setattr(rounds, "WAIT_S", 0)
    uow = MemoryUnitOfWork("pairing", "service:pairing", lambda envelope: None)
    with pytest.raises(rounds.RoundNotReady, match="farmlink.settlement.events/0"):
        asyncio.run(
            rounds.load_rounds(KeptSoFar([kept_fact(0)], progress=1), uow, [a_round({"farmlink.settlement.events/0": 2})])
        )


def test_an_event_the_service_cannot_read_counts_as_read_so_no_round_waits_for_it():
    delivery = Delivery("farmlink.settlement.events", 0, 4, None, b"not json", [])
    decoded = rounds.decode_fact(delivery)
    uow = MemoryUnitOfWork("pairing", "service:pairing", lambda envelope: None)
    rounds.keep_fact(uow, decoded)
    uow.keep()
    [(table, rows)] = uow.rows.values()
    assert table.name == "fact_progress" and list(rows.values()) == [
        {"topic": "farmlink.settlement.events", "kafka_partition": 0, "next_offset": 5}
    ]
