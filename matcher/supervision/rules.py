"""The supervision ledger's rules (问题清单、整改台账、销号管理), pure: what a supervision round finds as of its date
over the facts it saw, and what cures a problem. The pairing service runs them at each round over the facts it
consumed up to the round's cut-off and records what they opened and cured (services/pairing/rounds.py); the
audit and `farmlink problems` run them over the log (farmlink/audit/problems.py) and compare. The rules, as of the
round's `as_of` date:

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
  lot: an inspector closes it, with the reason.

Each problem is owned by the pairing team that helps the household's or lot's village (or township);
a project's by its owning team; one nobody helps by "unassigned". Facts are folded in the order
`fact_order` gives (recorded time, then schema, then position), so every reader folds the same facts alike.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

from matcher.supervision.facts import UNASSIGNED, State

PAYMENT_DAYS = 30
"""Days after a lot's expiry by which its fills are to be paid in full."""

BY_INSPECTOR_ONLY = frozenset({"inspection", "floor-unused"})
"""Kinds of problem no later fact can cure: only an inspector closes them."""

GRADES = ("A", "B", "C")  # best first


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


def found(state: State, as_of: date) -> dict[str, tuple[Problem, list[str]]]:
    """Every problem the rules see as of `as_of`: the problem as it would open, and (for each) nothing to cure it yet."""
    found: dict[str, tuple[Problem, list[str]]] = {}
    _found_households(state, as_of, found)
    _found_fills(state, as_of, found)
    _found_milestones(state, as_of, found)
    _found_promises(state, as_of, found)
    _found_unused_floors(state, as_of, found)
    return found


def _found_households(state: State, as_of: date, found: dict[str, tuple[Problem, list[str]]]) -> None:
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


def _found_fills(state: State, as_of: date, found: dict[str, tuple[Problem, list[str]]]) -> None:
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


def _found_milestones(state: State, as_of: date, found: dict[str, tuple[Problem, list[str]]]) -> None:
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


def _pairing(state: State, pairing_id: str | None) -> dict[str, Any] | None:
    return next((p for p in state.helped if p["pairing_id"] == pairing_id), None)


def _promise_shortfalls(state: State) -> dict[str, tuple[int, int, list[str]]]:
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


def _found_promises(state: State, as_of: date, found: dict[str, tuple[Problem, list[str]]]) -> None:
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


def _found_unused_floors(state: State, as_of: date, found: dict[str, tuple[Problem, list[str]]]) -> None:
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


def cure(state: State, problem: Problem) -> list[str]:
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


def round_changes(state: State, as_of: date, known: Mapping[str, Problem]) -> tuple[list[Problem], list[tuple[str, list[str]]]]:
    """What a round as of `as_of` changes in the ledger `known` (every problem so far, by id): the problems its rules
    find that were never opened (each with the evidence that opened it), and the rules' open problems it no longer
    finds (each with the events that cured it). A closed problem stays closed; one only an inspector closes stays open."""
    seen = found(state, as_of)
    opened = [problem for problem_id, (problem, _) in seen.items() if problem_id not in known]
    cured = [
        (problem.problem_id, cure(state, problem))
        for problem in known.values()
        if problem.state == "open" and problem.kind not in BY_INSPECTOR_ONLY and problem.problem_id not in seen
    ]
    return opened, cured
