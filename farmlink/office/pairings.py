"""What the pairing office reads: per pairing, the support delivered (value by kind) and how the helped
township or village is doing (its households' fills and industry income, registered-poor coverage);
per project, its milestones and state as of a date.

Read from the pairing and settlement services' PostgreSQL projections (the auditor's read-only role
may read both). A helped village is matched to the households of cooperatives registered in that
village of that township; a helped township to every household there. Before and after a pairing: the
helped area's fills and the household income paid for them, before the day the pairing began
(`registered_on`) and since, a fill dated by the day its lot came to market (from the facts the pairing
service keeps for the supervision ledger).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import date
from typing import Any

import asyncpg

from contracts.coverage import paid_by_household, registered_poor_sql, with_income_sql
from farmlink.buyers.reports import _schema_exists


_AREA = """(p.helped_kind = 'village' AND h.village = p.helped AND h.township = p.helped_township)
           OR (p.helped_kind = 'township' AND h.township = p.helped)"""


async def pairing_rows(conn: asyncpg.Connection) -> list[dict[str, Any]]:
    """One row per pairing: who helps whom, the support delivered by kind (fen), and the helped area's households,
    registered-poor households with industry income, fills and fen paid to households."""
    if not await _schema_exists(conn, "pairing"):
        return []
    pairings = await conn.fetch("SELECT * FROM pairing.pairings ORDER BY pairing_id")
    support: dict[str, dict[str, int]] = {}
    for row in await conn.fetch(
        "SELECT pairing_id, kind, sum(value_fen)::bigint AS fen FROM pairing.support GROUP BY 1, 2 ORDER BY 1, 2"
    ):
        support.setdefault(row["pairing_id"], {})[row["kind"]] = row["fen"]
    area: dict[str, asyncpg.Record] = {}
    if await _schema_exists(conn, "settlement"):
        rows = await conn.fetch(f"""
            WITH paid AS ({paid_by_household("settlement")}),
                 fills AS (SELECT cooperative_id, count(*) AS fills, sum(revenue_fen)::bigint AS revenue FROM settlement.fills
                           GROUP BY cooperative_id)
            SELECT p.pairing_id,
                   count(h.household_id) AS households,
                   {registered_poor_sql()} AS registered_poor,
                   {with_income_sql()} AS registered_poor_with_income,
                   coalesce(sum(paid.fen), 0)::bigint AS household_income_fen,
                   (SELECT coalesce(sum(f.fills), 0) FROM fills f WHERE f.cooperative_id IN (
                        SELECT DISTINCT h2.cooperative_id FROM settlement.households h2
                        WHERE (p.helped_kind = 'village' AND h2.village = p.helped AND h2.township = p.helped_township)
                           OR (p.helped_kind = 'township' AND h2.township = p.helped)))::bigint AS fills
            FROM pairing.pairings p
            LEFT JOIN settlement.households h ON {_AREA}
            LEFT JOIN paid ON paid.household_id = h.household_id
            GROUP BY p.pairing_id""")
        area = {row["pairing_id"]: row for row in rows}
    changes = await before_and_after_rows(conn)
    out = []
    for p in pairings:
        kinds = support.get(p["pairing_id"], {})
        helped = area.get(p["pairing_id"])
        poor = helped["registered_poor"] if helped else 0
        with_income = helped["registered_poor_with_income"] if helped else 0
        out.append(
            {
                "pairing_id": p["pairing_id"],
                "kind": p["kind"],
                "helper": p["helper"],
                "team": p["team"],
                "helped": p["helped"] if p["helped_township"] is None else f"{p['helped']}, {p['helped_township']}",
                "support_fen": sum(kinds.values()),
                "support_by_kind": dict(sorted(kinds.items())),
                "households": helped["households"] if helped else 0,
                "registered_poor": poor,
                "registered_poor_with_income": with_income,
                "coverage": f"{with_income}/{poor}" if poor else "-",
                "fills": helped["fills"] if helped else 0,
                "household_income_fen": helped["household_income_fen"] if helped else 0,
                **changes.get(p["pairing_id"], NOT_KNOWN),
            }
        )
    return out


@dataclass
class Area:
    """A pairing's helped area and how it did before the day the pairing began and since."""

    registered_on: date | None
    helped_kind: str
    helped: str
    helped_township: str | None
    fills: list[int] = field(default_factory=lambda: [0, 0])  # before, after
    income_fen: list[int] = field(default_factory=lambda: [0, 0])

    def holds(self, village: str, township: str) -> bool:
        if self.helped_kind == "village":
            return village == self.helped and township == self.helped_township
        return township == self.helped


def before_and_after(facts: list[tuple[str, dict[str, Any]]]) -> dict[str, Area]:
    """Per pairing that names the day it began (`registered_on`), its helped area's fills and the household income
    paid for them, before that day and since: a fill counts on the day its lot came to market (`available_from`),
    a payment with its lot. From facts (event type, payload) in any order."""
    areas: dict[str, Area] = {}
    cooperatives: dict[str, tuple[str, str]] = {}
    households: dict[str, tuple[str, str]] = {}
    lots: dict[str, date] = {}
    for event_type, p in facts:
        if event_type == "PairingRegistered":
            day = date.fromisoformat(p["registered_on"]) if p.get("registered_on") else None
            areas[p["pairing_id"]] = Area(day, p["helped_kind"], p["helped"], p.get("helped_township"))
        elif event_type == "CooperativeRegistered":
            cooperatives[p["cooperative_id"]] = (p["village"], p["township"])
            households.update({h["household_id"]: (p["village"], p["township"]) for h in p["households"]})
        elif event_type == "HarvestRecorded":
            lots[p["lot_id"]] = date.fromisoformat(p["available_from"])
    for event_type, p in facts:
        for area in areas.values():
            if area.registered_on is None or p.get("lot_id") not in lots:
                continue
            when = 0 if lots[p["lot_id"]] < area.registered_on else 1
            if event_type == "FillMade" and area.holds(*cooperatives.get(p["cooperative_id"], ("", ""))):
                area.fills[when] += 1
            elif event_type == "PaymentMade":
                shares = p["household_income_fen"].items()
                area.income_fen[when] += sum(fen for h, fen in shares if area.holds(*households.get(h, ("", ""))))
    return areas


NOT_KNOWN = {"registered_on": "-", "fills_before": "-", "fills_after": "-", "income_before_fen": "-", "income_after_fen": "-"}
"""A pairing that names no day it began (or whose registration the pairing service has not kept as a fact yet)."""


async def before_and_after_rows(conn: asyncpg.Connection) -> dict[str, dict[str, Any]]:
    """Per pairing id, the columns the report adds: the day it began, fills and income before and since."""
    if not await _schema_exists(conn, "pairing"):
        return {}
    rows = await conn.fetch(
        "SELECT event_type, payload::text AS payload FROM pairing.facts WHERE event_type = ANY($1::text[])",
        ["PairingRegistered", "CooperativeRegistered", "HarvestRecorded", "FillMade", "PaymentMade"],
    )
    areas = before_and_after([(row["event_type"], json.loads(row["payload"])) for row in rows])
    return {
        pairing_id: {
            "registered_on": area.registered_on.isoformat(),
            "fills_before": area.fills[0],
            "fills_after": area.fills[1],
            "income_before_fen": area.income_fen[0],
            "income_after_fen": area.income_fen[1],
        }
        for pairing_id, area in areas.items()
        if area.registered_on is not None
    }


async def project_rows(conn: asyncpg.Connection, as_of: date) -> list[dict[str, Any]]:
    """One row per project: owner team, milestones reached of all, those past due and not reached as of `as_of`,
    and its state: done (every milestone reached), overdue (one is past due) or on schedule."""
    if not await _schema_exists(conn, "pairing"):
        return []
    rows = await conn.fetch(
        """SELECT p.project_id, p.name, p.owner_team, p.target, p.due_on, p.pairing_id,
                  count(m.milestone_id) AS milestones,
                  count(m.milestone_id) FILTER (WHERE m.reached_on IS NOT NULL) AS reached,
                  coalesce(array_agg(m.milestone_id ORDER BY m.due_on, m.milestone_id)
                           FILTER (WHERE m.reached_on IS NULL AND m.due_on < $1), '{}') AS overdue,
                  coalesce(array_agg(m.milestone_id ORDER BY m.due_on, m.milestone_id)
                           FILTER (WHERE m.reached_on > m.due_on), '{}') AS reached_late
           FROM pairing.projects p LEFT JOIN pairing.milestones m USING (project_id)
           GROUP BY p.project_id ORDER BY p.due_on, p.project_id""",
        as_of,
    )
    out = []
    for row in rows:
        state = "done" if row["reached"] == row["milestones"] else "overdue" if row["overdue"] else "on schedule"
        out.append(
            {
                "project_id": row["project_id"],
                "name": row["name"],
                "owner_team": row["owner_team"],
                "target": row["target"],
                "due_on": row["due_on"].isoformat(),
                "milestones": f"{row['reached']}/{row['milestones']}",
                "overdue": ", ".join(row["overdue"]) or "-",
                "reached_late": ", ".join(row["reached_late"]) or "-",
                "state": state,
                "as_of": as_of.isoformat(),
            }
        )
    return out
