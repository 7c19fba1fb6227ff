"""A small county market for the what-if tests, recorded as the services record it, and ways to read a what-if's answer."""

from __future__ import annotations

from decimal import Decimal

from contracts.cooperative import CooperativeRegistered
from contracts.inputs import HouseholdMembership
from farmlink.audit.model import AuditLog, Record
from farmlink.audit.replay import market_streams
from farmlink.office.whatif import Changes, HouseholdRow, WhatIf, journals_with, replay
from tests.unit.test_audit_checks import Services

D = Decimal


# ================================================================ a small county market, recorded as the services record it


class County(Services):
    """The audit tests' recorder, with cooperatives registered in villages (the what-if places households by them)."""

    def register(self, cooperative_id: str, village: str, households: list[tuple[str, bool]], township: str = "官舟") -> Record:
        event = CooperativeRegistered(
            cooperative_id=cooperative_id,
            name=f"{village} cooperative",
            county="沿河",
            township=township,
            village=village,
            households=tuple(HouseholdMembership(household_id=h, registered_poor=poor) for h, poor in households),
        )
        return self.record("cooperative", f"cooperative-{cooperative_id}", event)


def chili_market(
    floor: int = 800, cap: str | None = "1500", per_mu: str | None = None, grade_b_price: int | None = None
) -> AuditLog:
    """Two villages' chili, journal seq in brackets:
    co1 in 白果 (h1 registered-poor, h2) plants 10 mu [1]; co2 in 黄土 (h3 registered-poor).
    [2] grade A trades at 900 fen (and grade B at `grade_b_price`, when given); [3] commitment C1 (floor, cap 1500);
    [4] order O1 300 kg at 1000; [5] lot L1 1200 kg A of co1 (h1 700, h2 500): 300 to O1 at 1000, 900 to C1 at the
    market's 900; [6] lot L2 800 kg B of co2 (h3): 600 to C1 (what is left of its cap) at the floor, 200 rest;
    [7] order O2 200 kg at 700 takes them."""
    county = County()
    county.register("co1", "白果", [("h1", True), ("h2", False)])
    county.register("co2", "黄土", [("h3", True)])
    county.planting("P1", "10")
    county.price("A", 900, "2020-08-01")
    if grade_b_price is not None:
        county.price("B", grade_b_price, "2020-08-01")
    county.commitment("C1", floor, cap=cap, per_mu=per_mu)
    county.order("O1", "300", 1000)
    county.harvest("L1", "A", [("h1", "700", True), ("h2", "500", False)])
    county.harvest("L2", "B", [("h3", "800", True)], cooperative_id="co2")
    county.order("O2", "200", 700, min_grade="C")
    return county.log


def household(result: WhatIf, household_id: str) -> HouseholdRow:
    return next(h for h in result.households if h.household_id == household_id)


def differences(result: WhatIf) -> dict[str, int]:
    return {h.household_id: h.difference_fen for h in result.households}


def sold_to(fills: list[dict], outlet_id: str) -> Decimal:
    return sum((D(f["quantity"]) for f in fills if f["outlet_id"] == outlet_id), D(0))


def replayed(log: AuditLog, changes: Changes) -> list[dict]:
    return replay(journals_with(market_streams(log), changes)[0])
