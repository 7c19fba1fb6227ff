"""What the supervision ledger's rules read (matcher/supervision/rules.py): facts recorded by the services (registrations,
plans, lots, fills, commitments, payments, pairings, promises, support, projects and milestones), folded in one
order (`fact_order`: when recorded, then by schema, then by position in it) into what the rules can see (`State`).
Pure: the pairing service folds the facts it kept, the audit the log's events, and both fold alike."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import Any, Protocol

SCHEMA_ORDER = ("cooperative", "buyer", "market", "matching", "settlement", "pairing")
UNASSIGNED = "unassigned"


class Fact(Protocol):
    """A recorded event as the rules read it (an audit Record, or a fact row the pairing service kept)."""

    @property
    def schema(self) -> str: ...
    @property
    def global_position(self) -> int: ...
    @property
    def event_id(self) -> str: ...
    @property
    def event_type(self) -> str: ...
    @property
    def occurred_at(self) -> datetime: ...
    @property
    def payload(self) -> dict[str, Any]: ...


def fact_order(fact: Fact) -> tuple[datetime, int, int]:
    """The order facts are folded in: when recorded, then by schema, then by position in it."""
    return (fact.occurred_at, SCHEMA_ORDER.index(fact.schema), fact.global_position)


@dataclass
class State:
    """What the rules can see: the facts folded so far."""

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


def _registered(state: State, p: dict[str, Any], event_id: str) -> None:
    for h in p["households"]:
        state.households[h["household_id"]] = {
            "village": p["village"],
            "township": p["township"],
            "registered_poor": h["registered_poor"],
        }
        state.registrations[h["household_id"]] = event_id


def _planned(state: State, p: dict[str, Any], event_id: str) -> None:
    state.planned.setdefault(p["township"], []).append(event_id)


def _harvested(state: State, p: dict[str, Any], event_id: str) -> None:
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
        "event_id": event_id,
    }


def _filled(state: State, p: dict[str, Any], event_id: str) -> None:
    state.fills[p["fill_id"]] = {
        "lot_id": p["lot_id"],
        "outlet_id": p["outlet_id"],
        "revenue_fen": p["revenue_fen"],
        "event_id": event_id,
    }
    quantity = Decimal(str(p.get("quantity", "0")))
    state.sold[p["lot_id"]] = state.sold.get(p["lot_id"], Decimal(0)) + quantity
    state.filled[p["outlet_id"]] = state.filled.get(p["outlet_id"], Decimal(0)) + quantity


def _committed(state: State, p: dict[str, Any], event_id: str) -> None:
    state.commitments[p["commitment_id"]] = {**p, "event_id": event_id}


def _promised(state: State, p: dict[str, Any], event_id: str) -> None:
    state.promises[p["promise_id"]] = {**p, "due_on": date.fromisoformat(p["due_on"]), "event_id": event_id}


def _delivered(state: State, p: dict[str, Any], event_id: str) -> None:
    key = (p["pairing_id"], p["kind"])
    fen, ids = state.delivered.get(key, (0, []))
    state.delivered[key] = (fen + p["value_fen"], [*ids, event_id])


def _paid(state: State, p: dict[str, Any], event_id: str) -> None:
    key = (p["lot_id"], p["outlet_id"])
    fen, ids = state.paid.get(key, (0, []))
    state.paid[key] = (fen + p["amount_fen"], [*ids, event_id])
    for household, share in p["household_income_fen"].items():
        earned, paid_by = state.income.get(household, (0, []))
        state.income[household] = (earned + share, [*paid_by, event_id])


def _paired(state: State, p: dict[str, Any], event_id: str) -> None:
    state.helped.append(p)


def _project(state: State, p: dict[str, Any], event_id: str) -> None:
    state.projects[p["project_id"]] = {**p, "event_id": event_id}
    for m in p["milestones"]:
        state.milestones[(p["project_id"], m["milestone_id"])] = {
            "due_on": date.fromisoformat(m["due_on"]),
            "name": m["name"],
            "reached": None,
        }


def _reached(state: State, p: dict[str, Any], event_id: str) -> None:
    milestone = state.milestones.get((p["project_id"], p["milestone_id"]))
    if milestone is not None:
        milestone["reached"] = event_id


KEEPERS: dict[str, Callable[[State, dict[str, Any], str], None]] = {
    "CooperativeRegistered": _registered,
    "PlanRecorded": _planned,
    "HarvestRecorded": _harvested,
    "FillMade": _filled,
    "CommitmentMade": _committed,
    "SupportPromised": _promised,
    "SupportDelivered": _delivered,
    "PaymentMade": _paid,
    "PairingRegistered": _paired,
    "ProjectRegistered": _project,
    "ProjectMilestoneReached": _reached,
}
"""What each kind of fact adds to what the rules can see; the rules read no other event type."""

FACT_TYPES = frozenset(KEEPERS)


def keep(state: State, record: Fact) -> None:
    """What a fact adds to what the rules can see (nothing, for a type the rules do not read)."""
    keeper = KEEPERS.get(record.event_type)
    if keeper is not None:
        keeper(state, record.payload, record.event_id)


def fold(facts: Iterable[Fact]) -> State:
    """What the rules see after these facts, folded in `fact_order`."""
    state = State()
    for fact in sorted(facts, key=fact_order):
        keep(state, fact)
    return state
