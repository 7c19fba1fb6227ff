"""The supervision ledger (问题清单、整改台账、销号管理) derived from the log: problems opened by the rules
(services/pairing/rules.py) at each supervision round, or by an inspector's signed input; their rectification
records; and their closing (销号) when the log shows them cured, or by an inspector with a signed reason.

A pure function of the log (`derive`), the same for every reader (`farmlink problems`, the audit). A round the
pairing service evaluated (`SupervisionRoundEvaluated`) sees exactly the facts it recorded having seen: per
schema, every fact the rules read up to a global position. A round recorded before the service evaluated rounds
sees what was recorded before it (events in `occurred_at` order). The pairing service records what each round
opened (`ProblemFound`) and cured (`ProblemCured`); `Ledger.changes` is what the log says it should have
recorded, and the audit compares the two (farmlink/audit/supervision.py). A closed problem stays closed.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from farmlink.audit.model import AuditLog, Record
from services.pairing.facts import FACT_TYPES, SCHEMA_ORDER, State, fold, keep
from services.pairing.rules import Problem, round_changes

ROUND_EVALUATED = "SupervisionRoundEvaluated"


@dataclass(frozen=True)
class Change:
    """What a round changed in the ledger: a problem opened (with its fields) or cured (with the curing events)."""

    round_id: str
    action: str  # found | cured
    problem_id: str
    fields: tuple[tuple[str, Any], ...]


@dataclass
class Ledger:
    problems: dict[str, Problem] = field(default_factory=dict)
    rounds: list[tuple[str, str]] = field(default_factory=list)  # (round id, as_of)
    anomalies: list[str] = field(default_factory=list)  # closures or records of problems never opened
    changes: list[Change] = field(default_factory=list)  # what the evaluated rounds opened and cured, in order
    unseen: list[tuple[Record, str]] = field(default_factory=list)  # an evaluated round's cut-off the log contradicts

    def rows(self, state: str = "all") -> list[dict[str, Any]]:
        items = [p for p in self.problems.values() if state == "all" or p.state == state]
        return [p.row() for p in sorted(items, key=lambda p: (p.township, p.owner_team, p.kind, p.problem_id))]


def found_change(round_id: str, problem: Problem) -> Change:
    fields = (
        ("kind", problem.kind),
        ("township", problem.township),
        ("owner_team", problem.owner_team),
        ("subject", problem.subject),
        ("reason", problem.reason),
        ("evidence", tuple(problem.opened_evidence)),
    )
    return Change(round_id, "found", problem.problem_id, fields)


def cured_change(round_id: str, problem_id: str, evidence: Iterable[str]) -> Change:
    return Change(round_id, "cured", problem_id, (("evidence", tuple(evidence)),))


def _timeline(log: AuditLog) -> list[Record]:
    rank = {schema: n for n, schema in enumerate(SCHEMA_ORDER)}
    records = [r for schema in SCHEMA_ORDER for r in log.by_schema.get(schema, [])]
    return sorted(records, key=lambda r: (r.occurred_at, rank[r.schema], r.global_position))


def facts_seen(log: AuditLog, evaluated: Record) -> tuple[list[Record], list[str]]:
    """The facts an evaluated round saw (each schema's facts up to its position), and where the log disagrees
    with the counts it recorded (a fact it saw is gone or changed, or one below its cut-off came later)."""
    facts: list[Record] = []
    problems: list[str] = []
    for seen in evaluated.payload["seen"]:
        schema, through = seen["schema_name"], seen["through_position"]
        mine = [r for r in log.by_schema.get(schema, []) if r.event_type in FACT_TYPES and r.global_position <= through]
        if len(mine) != seen["facts"]:
            problems.append(
                f"round {evaluated.payload['round_id']} saw {seen['facts']} facts of {schema} up to position {through}; "
                f"the log holds {len(mine)}"
            )
        facts += mine
    return facts, problems


def _hold_round(ledger: Ledger, state: State, round_id: str, as_of: date, evaluated: bool) -> None:
    ledger.rounds.append((round_id, as_of.isoformat()))
    opened, cured = round_changes(state, as_of, ledger.problems)
    for problem in opened:
        problem.opened_in = round_id
        problem.rectifications = state.pending_rectifications.pop(problem.problem_id, [])
        ledger.problems[problem.problem_id] = problem
        if evaluated:
            ledger.changes.append(found_change(round_id, problem))
    for problem_id, evidence in cured:
        problem = ledger.problems[problem_id]
        problem.state, problem.closed_in, problem.closed_how = "closed", round_id, "cured"
        problem.closed_evidence = evidence
        if evaluated:
            ledger.changes.append(cured_change(round_id, problem_id, evidence))


def _inspector(ledger: Ledger, pending: dict[str, list[str]], record: Record) -> None:
    """An inspector's problem, rectification or closure."""
    p, kind = record.payload, record.event_type
    if kind == "ProblemOpened":
        ledger.problems[p["problem_id"]] = Problem(
            p["problem_id"],
            "inspection",
            p["township"],
            p["owner_team"],
            p["subject"],
            p["reason"],
            "inspector",
            [record.event_id],
            rectifications=pending.pop(p["problem_id"], []),
        )
    elif kind == "ProblemRectified":
        target = ledger.problems.get(p["problem_id"])
        if target is None:
            pending.setdefault(p["problem_id"], []).append(p["action"])
        else:
            target.rectifications.append(p["action"])
    elif kind == "ProblemClosed":
        target = ledger.problems.get(p["problem_id"])
        if target is None or target.state == "closed":
            ledger.anomalies.append(
                f"{record.place}: closes problem {p['problem_id']}, which is {'not open' if target else 'never opened'}"
            )
            return
        target.state, target.closed_in, target.closed_how = "closed", "inspector", "inspector"
        target.closed_evidence = [record.event_id, p["evidence"]]
        target.reason = f"{target.reason}; closed: {p['reason']}"


INSPECTOR_TYPES = frozenset({"ProblemOpened", "ProblemRectified", "ProblemClosed"})


def derive(log: AuditLog) -> Ledger:
    """The ledger the log gives: rounds in the order they were recorded, each opening what its rules find over the
    facts it saw and closing the rules' problems it no longer finds; inspectors' problems, rectifications and
    closures as recorded."""
    ledger, state = Ledger(), State()
    evaluated = {r.payload["round_id"]: r for r in log.by_schema.get("pairing", []) if r.event_type == ROUND_EVALUATED}
    for record in _timeline(log):
        p, kind = record.payload, record.event_type
        if kind == "SupervisionRoundHeld":
            seen = evaluated.get(p["round_id"])
            round_state = state
            if seen is not None:
                facts, unseen = facts_seen(log, seen)
                ledger.unseen += [(seen, problem) for problem in unseen]
                round_state = fold(facts)
                round_state.pending_rectifications = state.pending_rectifications
            _hold_round(ledger, round_state, p["round_id"], date.fromisoformat(p["as_of"]), seen is not None)
        elif kind in INSPECTOR_TYPES:
            _inspector(ledger, state.pending_rectifications, record)
        else:
            keep(state, record)
    for problem_id in state.pending_rectifications:
        ledger.anomalies.append(f"rectification of problem {problem_id}, which was never opened")
    return ledger
