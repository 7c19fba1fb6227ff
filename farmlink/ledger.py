"""The supervision ledger (问题清单、整改台账、销号管理): problems opened by rules over the log at each
supervision round, or by an inspector's signed input; their rectification records; and their closing
(销号) when the log shows them cured, or by an inspector with a signed reason.

A pure function of the log (`derive`): nothing here is stored, so every reader (`farmlink problems`,
the audit) derives the same ledger from the same log. Events are taken in the order they were
recorded (their `occurred_at`, then their schema's position), and a round sees what was recorded
before it. The rules, as of the round's `as_of` date:

- `no-income`: a registered-poor household of a township that has an industry plan has no industry
  income (the article's goal: every poor household has industry income); cured by a payment to it;
- `unpaid-fill`: a fill is not paid in full `PAYMENT_DAYS` days after its lot's expiry; cured when it is;
- `milestone-overdue`: a project's milestone is past its due date and not reached; cured when reached;
- `support-undelivered`: support a pairing promised (`support.promised`) is past its due date and the
  deliveries of that pairing and kind (taken against its promises in due-date order) fall short of
  its value; cured when they reach it;
- `floor-unused`: a lot eligible for a guaranteed-floor commitment (product, grade at least the
  minimum, its county and cooperative eligible, its window within the commitment's) expired with
  some of it unsold while the commitment's cap had room. Nothing in the log can cure an expired
  lot: an inspector closes it, with the reason (for instance the per-mu limit the lot's cooperative
  had reached).

Each problem is owned by the pairing team that helps the household's or lot's village (or township);
a project's by its owning team; one nobody helps by "unassigned". A closed problem stays closed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

from farmlink.audit.model import AuditLog, Record

PAYMENT_DAYS = 30
"""Days after a lot's expiry by which its fills are to be paid in full."""

BY_INSPECTOR_ONLY = frozenset({"inspection", "floor-unused"})
"""Kinds of problem no later fact can cure: only an inspector closes them."""

GRADES = ("A", "B", "C")  # best first

SCHEMA_ORDER = ("cooperative", "buyer", "market", "matching", "settlement", "pairing")
UNASSIGNED = "unassigned"


@dataclass
class Problem:
    """One item of the ledger."""

    problem_id: str
    kind: str  # no-income | unpaid-fill | milestone-overdue | support-undelivered | floor-unused | inspection
    township: str
    owner_team: str
    subject: str
    reason: str
    opened_in: str  # a round id, or "inspector"
    opened_evidence: list[str]
    rectifications: list[str] = field(default_factory=list)
    state: str = "open"
    closed_in: str | None = None
    closed_how: str | None = None  # cured | inspector
    closed_evidence: list[str] = field(default_factory=list)

    def row(self) -> dict[str, Any]:
        return {
            "problem_id": self.problem_id,
            "kind": self.kind,
            "township": self.township,
            "owner_team": self.owner_team,
            "state": self.state,
            "subject": self.subject,
            "reason": self.reason,
            "opened_in": self.opened_in,
            "rectifications": "; ".join(self.rectifications) or "-",
            "closed": "-" if self.closed_in is None else f"{self.closed_how} in {self.closed_in}",
            "opened_evidence": ", ".join(self.opened_evidence),
            "closed_evidence": ", ".join(self.closed_evidence) or "-",
        }


@dataclass
class Ledger:
    problems: dict[str, Problem] = field(default_factory=dict)
    rounds: list[tuple[str, str]] = field(default_factory=list)  # (round id, as_of)
    anomalies: list[str] = field(default_factory=list)  # closures or records of problems never opened

    def rows(self, state: str = "all") -> list[dict[str, Any]]:
        items = [p for p in self.problems.values() if state == "all" or p.state == state]
        return [p.row() for p in sorted(items, key=lambda p: (p.township, p.owner_team, p.kind, p.problem_id))]


@dataclass
class _State:
    households: dict[str, dict[str, Any]] = field(default_factory=dict)
    registrations: dict[str, str] = field(default_factory=dict)  # household -> event id
    planned: dict[str, list[str]] = field(default_factory=dict)  # township -> plan event ids
    lots: dict[str, dict[str, Any]] = field(default_factory=dict)
    fills: dict[str, dict[str, Any]] = field(default_factory=dict)
    paid: dict[tuple[str, str], tuple[int, list[str]]] = field(default_factory=dict)
    income: dict[str, tuple[int, list[str]]] = field(default_factory=dict)
    helped: list[dict[str, Any]] = field(default_factory=list)  # pairings
    projects: dict[str, dict[str, Any]] = field(default_factory=dict)
    milestones: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    pending_rectifications: dict[str, list[str]] = field(default_factory=dict)
    promises: dict[str, dict[str, Any]] = field(default_factory=dict)
    delivered: dict[tuple[str, str], tuple[int, list[str]]] = field(default_factory=dict)  # (pairing, kind) -> fen, events
    commitments: dict[str, dict[str, Any]] = field(default_factory=dict)
    sold: dict[str, Decimal] = field(default_factory=dict)  # lot -> quantity filled
    filled: dict[str, Decimal] = field(default_factory=dict)  # outlet -> quantity filled

    def team_for(self, village: str | None, township: str) -> str:
        """The team of the pairing that helps this village (first), else its township, else nobody."""
        for pairing in self.helped:
            if pairing["helped_kind"] == "village" and pairing["helped"] == village and pairing["helped_township"] == township:
                return str(pairing["team"])
        for pairing in self.helped:
            if pairing["helped_kind"] == "township" and pairing["helped"] == township:
                return str(pairing["team"])
        return UNASSIGNED


def _timeline(log: AuditLog) -> list[Record]:
    rank = {schema: n for n, schema in enumerate(SCHEMA_ORDER)}
    records = [r for schema in SCHEMA_ORDER for r in log.by_schema.get(schema, [])]
    return sorted(records, key=lambda r: (r.occurred_at, rank[r.schema], r.global_position))


def _keep(state: _State, record: Record) -> None:
    """What a fact adds to what the rules can see."""
    p, kind = record.payload, record.event_type
    if kind == "CooperativeRegistered":
        for h in p["households"]:
            state.households[h["household_id"]] = {
                "village": p["village"],
                "township": p["township"],
                "registered_poor": h["registered_poor"],
            }
            state.registrations[h["household_id"]] = record.event_id
    elif kind == "PlanRecorded":
        state.planned.setdefault(p["township"], []).append(record.event_id)
    elif kind == "HarvestRecorded":
        state.lots[p["lot_id"]] = {
            "expires_on": date.fromisoformat(p["expires_on"]),
            "village": p["village"],
            "township": p["township"],
            "county": p.get("county"),
            "product": p.get("product"),
            "grade": p.get("grade"),
            "quantity": Decimal(str(p.get("quantity", "0"))),
            "available_from": date.fromisoformat(p.get("available_from", p["expires_on"])),
            "cooperative_id": p.get("cooperative_id"),
            "event_id": record.event_id,
        }
    elif kind == "FillMade":
        state.fills[p["fill_id"]] = {
            "lot_id": p["lot_id"],
            "outlet_id": p["outlet_id"],
            "revenue_fen": p["revenue_fen"],
            "event_id": record.event_id,
        }
        quantity = Decimal(str(p.get("quantity", "0")))
        state.sold[p["lot_id"]] = state.sold.get(p["lot_id"], Decimal(0)) + quantity
        state.filled[p["outlet_id"]] = state.filled.get(p["outlet_id"], Decimal(0)) + quantity
    elif kind == "CommitmentMade":
        state.commitments[p["commitment_id"]] = {**p, "event_id": record.event_id}
    elif kind == "SupportPromised":
        state.promises[p["promise_id"]] = {**p, "due_on": date.fromisoformat(p["due_on"]), "event_id": record.event_id}
    elif kind == "SupportDelivered":
        key = (p["pairing_id"], p["kind"])
        fen, ids = state.delivered.get(key, (0, []))
        state.delivered[key] = (fen + p["value_fen"], [*ids, record.event_id])
    elif kind == "PaymentMade":
        key = (p["lot_id"], p["outlet_id"])
        fen, ids = state.paid.get(key, (0, []))
        state.paid[key] = (fen + p["amount_fen"], [*ids, record.event_id])
        for household, share in p["household_income_fen"].items():
            earned, paid_by = state.income.get(household, (0, []))
            state.income[household] = (earned + share, [*paid_by, record.event_id])
    elif kind == "PairingRegistered":
        state.helped.append(p)
    elif kind == "ProjectRegistered":
        state.projects[p["project_id"]] = {**p, "event_id": record.event_id}
        for m in p["milestones"]:
            state.milestones[(p["project_id"], m["milestone_id"])] = {
                "due_on": date.fromisoformat(m["due_on"]),
                "name": m["name"],
                "reached": None,
            }
    elif kind == "ProjectMilestoneReached":
        milestone = state.milestones.get((p["project_id"], p["milestone_id"]))
        if milestone is not None:
            milestone["reached"] = record.event_id


def _found(state: _State, as_of: date) -> dict[str, tuple[Problem, list[str]]]:
    """Every problem the rules see as of `as_of`: the problem as it would open, and (for each) nothing to cure it yet."""
    found: dict[str, tuple[Problem, list[str]]] = {}
    for household, where in sorted(state.households.items()):
        if not where["registered_poor"] or where["township"] not in state.planned or state.income.get(household, (0, []))[0] > 0:
            continue
        found[f"no-income:{household}"] = (
            Problem(
                f"no-income:{household}",
                "no-income",
                where["township"],
                state.team_for(where["village"], where["township"]),
                f"household {household} ({where['village']}, {where['township']})",
                f"a registered-poor household with no industry income as of {as_of}; {where['township']} has an industry plan",
                "",
                [state.registrations[household], *state.planned[where["township"]]],
            ),
            [],
        )
    for fill_id, fill in sorted(state.fills.items()):
        lot = state.lots.get(fill["lot_id"])
        if lot is None or lot["expires_on"] + timedelta(days=PAYMENT_DAYS) > as_of:
            continue
        paid, payments = state.paid.get((fill["lot_id"], fill["outlet_id"]), (0, []))
        if paid >= fill["revenue_fen"]:
            continue
        found[f"unpaid-fill:{fill_id}"] = (
            Problem(
                f"unpaid-fill:{fill_id}",
                "unpaid-fill",
                lot["township"],
                state.team_for(lot["village"], lot["township"]),
                f"fill {fill_id}: lot {fill['lot_id']} to {fill['outlet_id']}",
                f"{paid} of {fill['revenue_fen']} fen paid as of {as_of}, over {PAYMENT_DAYS} days after the lot's expiry "
                f"({lot['expires_on']})",
                "",
                [fill["event_id"], *payments],
            ),
            [],
        )
    for (project_id, milestone_id), milestone in sorted(state.milestones.items()):
        if milestone["reached"] is not None or milestone["due_on"] >= as_of:
            continue
        project = state.projects[project_id]
        township = next(
            (str(p["helped_township"] or p["helped"]) for p in state.helped if p["pairing_id"] == project.get("pairing_id")), "-"
        )
        found[f"milestone-overdue:{project_id}/{milestone_id}"] = (
            Problem(
                f"milestone-overdue:{project_id}/{milestone_id}",
                "milestone-overdue",
                township,
                project["owner_team"],
                f"project {project_id}: {milestone['name']}",
                f"due {milestone['due_on']}, not reached as of {as_of}",
                "",
                [project["event_id"]],
            ),
            [],
        )
    _found_promises(state, as_of, found)
    _found_unused_floors(state, as_of, found)
    return found


def _pairing(state: _State, pairing_id: str | None) -> dict[str, Any] | None:
    return next((p for p in state.helped if p["pairing_id"] == pairing_id), None)


def _promise_shortfalls(state: _State) -> dict[str, tuple[int, int, list[str]]]:
    """Each promise: (delivered against it, its value, the deliveries), deliveries of its pairing and kind taken
    against its promises in due-date order."""
    out: dict[str, tuple[int, int, list[str]]] = {}
    by_key: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for promise in state.promises.values():
        by_key.setdefault((promise["pairing_id"], promise["kind"]), []).append(promise)
    for key, promises in by_key.items():
        left, deliveries = state.delivered.get(key, (0, []))
        for promise in sorted(promises, key=lambda p: (p["due_on"], p["promise_id"])):
            taken = min(left, promise["value_fen"])
            left -= taken
            out[promise["promise_id"]] = (taken, promise["value_fen"], deliveries)
    return out


def _found_promises(state: _State, as_of: date, found: dict[str, tuple[Problem, list[str]]]) -> None:
    shortfalls = _promise_shortfalls(state)
    for promise_id, promise in sorted(state.promises.items()):
        taken, value, deliveries = shortfalls[promise_id]
        if promise["due_on"] >= as_of or taken >= value:
            continue
        pairing = _pairing(state, promise["pairing_id"]) or {}
        found[f"support-undelivered:{promise_id}"] = (
            Problem(
                f"support-undelivered:{promise_id}",
                "support-undelivered",
                str(pairing.get("helped_township") or pairing.get("helped", "-")),
                str(pairing.get("team", UNASSIGNED)),
                f"{promise['kind']} promised by pairing {promise['pairing_id']}: {promise['note']}",
                f"{taken} of {value} fen delivered as of {as_of}; due {promise['due_on']}",
                "",
                [promise["event_id"], *deliveries],
            ),
            [],
        )


def _eligible(commitment: dict[str, Any], lot: dict[str, Any]) -> bool:
    """A lot a guaranteed-floor commitment could take (its own terms; not the per-mu limit or the price)."""
    if lot["product"] != commitment["product"] or lot["grade"] not in GRADES:
        return False
    if GRADES.index(lot["grade"]) > GRADES.index(commitment["min_grade"]):
        return False
    if commitment.get("eligible_counties") and lot["county"] not in commitment["eligible_counties"]:
        return False
    if commitment.get("eligible_cooperatives") and lot["cooperative_id"] not in commitment["eligible_cooperatives"]:
        return False
    return bool(
        lot["available_from"] <= date.fromisoformat(commitment["valid_to"])
        and lot["expires_on"] >= date.fromisoformat(commitment["valid_from"])
    )


def _found_unused_floors(state: _State, as_of: date, found: dict[str, tuple[Problem, list[str]]]) -> None:
    for commitment_id, commitment in sorted(state.commitments.items()):
        cap = commitment.get("cap_quantity")
        filled = state.filled.get(commitment_id, Decimal(0))
        if cap is not None and filled >= Decimal(str(cap)):
            continue
        for lot_id, lot in sorted(state.lots.items()):
            unsold = lot["quantity"] - state.sold.get(lot_id, Decimal(0))
            if lot["expires_on"] >= as_of or unsold <= 0 or not _eligible(commitment, lot):
                continue
            room = "no cap" if cap is None else f"{Decimal(str(cap)) - filled} of its cap {cap} left"
            found[f"floor-unused:{commitment_id}/{lot_id}"] = (
                Problem(
                    f"floor-unused:{commitment_id}/{lot_id}",
                    "floor-unused",
                    lot["township"],
                    state.team_for(lot["village"], lot["township"]),
                    f"lot {lot_id} ({lot['product']} {lot['grade']}) and commitment {commitment_id}",
                    f"{unsold} unsold when the lot expired on {lot['expires_on']}, while {commitment_id} had room ({room})",
                    "",
                    [commitment["event_id"], lot["event_id"]],
                ),
                [],
            )


def _cure(state: _State, problem: Problem) -> list[str]:
    """The events that show a rule's problem cured."""
    kind, _, subject = problem.problem_id.partition(":")
    if kind == "support-undelivered":
        promise = state.promises[subject]
        return state.delivered.get((promise["pairing_id"], promise["kind"]), (0, []))[1]
    if kind == "no-income":
        return state.income.get(subject, (0, []))[1]
    if kind == "unpaid-fill":
        fill = state.fills[subject]
        return state.paid.get((fill["lot_id"], fill["outlet_id"]), (0, []))[1]
    project_id, _, milestone_id = subject.partition("/")
    reached = state.milestones[(project_id, milestone_id)]["reached"]
    return [reached] if reached else []


def derive(log: AuditLog) -> Ledger:
    """The ledger the log gives: rounds in the order they were recorded, each opening what its rules find and
    closing the rules' problems it no longer finds; inspectors' problems, rectifications and closures as recorded."""
    ledger, state = Ledger(), _State()
    for record in _timeline(log):
        p, kind = record.payload, record.event_type
        if kind == "SupervisionRoundHeld":
            round_id, as_of = p["round_id"], date.fromisoformat(p["as_of"])
            ledger.rounds.append((round_id, as_of.isoformat()))
            found = _found(state, as_of)
            for problem_id, (problem, _) in found.items():
                if problem_id not in ledger.problems:
                    problem.opened_in = round_id
                    problem.rectifications = state.pending_rectifications.pop(problem_id, [])
                    ledger.problems[problem_id] = problem
            for problem in ledger.problems.values():
                if problem.state == "open" and problem.kind not in BY_INSPECTOR_ONLY and problem.problem_id not in found:
                    problem.state, problem.closed_in, problem.closed_how = "closed", round_id, "cured"
                    problem.closed_evidence = _cure(state, problem)
        elif kind == "ProblemOpened":
            ledger.problems[p["problem_id"]] = Problem(
                p["problem_id"],
                "inspection",
                p["township"],
                p["owner_team"],
                p["subject"],
                p["reason"],
                "inspector",
                [record.event_id],
                rectifications=state.pending_rectifications.pop(p["problem_id"], []),
            )
        elif kind == "ProblemRectified":
            target = ledger.problems.get(p["problem_id"])
            if target is None:
                state.pending_rectifications.setdefault(p["problem_id"], []).append(p["action"])
            else:
                target.rectifications.append(p["action"])
        elif kind == "ProblemClosed":
            target = ledger.problems.get(p["problem_id"])
            if target is None or target.state == "closed":
                ledger.anomalies.append(
                    f"{record.place}: closes problem {p['problem_id']}, which is {'not open' if target else 'never opened'}"
                )
                continue
            target.state, target.closed_in, target.closed_how = "closed", "inspector", "inspector"
            target.closed_evidence = [record.event_id, p["evidence"]]
            target.reason = f"{target.reason}; closed: {p['reason']}"
        else:
            _keep(state, record)
    for problem_id in state.pending_rectifications:
        ledger.anomalies.append(f"rectification of problem {problem_id}, which was never opened")
    return ledger
