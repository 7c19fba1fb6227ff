"""What people and buyer systems read: fills, offers, incomes, coverage, floor activations.

Read from the services' PostgreSQL projections and stores, in the matcher's output order.
"""

import json
from decimal import Decimal
from typing import Any

import asyncpg

from contracts.coverage import county_coverage, village_coverage_sql
from matcher.output import quantity_text

FILL_FIELDS = (
    "lot_id",
    "outlet_kind",
    "outlet_id",
    "buyer_id",
    "quantity",
    "unit_price_fen",
    "price_basis",
    "revenue_fen",
    "household_income_fen",
)
"""The fields of a fill in matching-rules.md's "Output of a fill", in that order."""


def fill_output(payload: dict[str, Any]) -> dict[str, Any]:
    """A recorded FillMade payload as the contract's output record."""
    record = {name: payload[name] for name in FILL_FIELDS}
    record["quantity"] = quantity_text(Decimal(payload["quantity"]))
    record["household_income_fen"] = dict(sorted(payload["household_income_fen"].items()))
    return record


async def _schema_exists(conn: asyncpg.Connection, schema: str) -> bool:
    return await conn.fetchval("SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = $1)", schema)


async def recorded_fills(conn: asyncpg.Connection) -> list[dict[str, Any]]:
    """Every FillMade payload in the matcher's output order (its store's global order)."""
    if not await _schema_exists(conn, "matching"):
        return []
    rows = await conn.fetch("SELECT payload::text FROM matching.events WHERE event_type = 'FillMade' ORDER BY global_position")
    return [json.loads(row[0]) for row in rows]


async def open_offers(conn: asyncpg.Connection) -> list[dict[str, Any]]:
    if not await _schema_exists(conn, "matching"):
        return []
    rows = await conn.fetch(
        """SELECT lot_id, product, grade, cooperative_id, county, township, quantity_left, available_from, expires_on
           FROM matching.offers WHERE open ORDER BY product, expires_on, lot_id"""
    )
    return [
        {
            **dict(row),
            "quantity_left": quantity_text(row["quantity_left"]),
            "available_from": row["available_from"].isoformat(),
            "expires_on": row["expires_on"].isoformat(),
        }
        for row in rows
    ]


async def household_incomes(conn: asyncpg.Connection) -> list[dict[str, Any]]:
    """Per household and product: fen paid so far, and where the household is."""
    if not await _schema_exists(conn, "settlement"):
        return []
    rows = await conn.fetch(
        """SELECT i.household_id, h.cooperative_id, h.village, h.township, h.county, h.registered_poor, i.product, i.paid_fen
           FROM settlement.incomes i LEFT JOIN settlement.households h USING (household_id)
           ORDER BY i.household_id, i.product"""
    )
    return [dict(row) for row in rows]


async def coverage(conn: asyncpg.Connection) -> dict[str, list[dict[str, Any]]]:
    """Registered-poor households with and without industry income, per village and county; plans beside actuals."""
    if not await _schema_exists(conn, "settlement"):
        return {"villages": [], "counties": [], "plans": []}
    villages = await conn.fetch(village_coverage_sql("settlement"))
    plans = await conn.fetch(
        """WITH planted AS (
               SELECT county, township, product, sum(area_mu) AS area_mu FROM settlement.plantings GROUP BY 1, 2, 3),
           earners AS (
               SELECT h.county, h.township, i.product, count(*) AS households, sum(i.paid_fen) AS paid_fen
               FROM settlement.incomes i JOIN settlement.households h USING (household_id) GROUP BY 1, 2, 3)
           SELECT p.plan_id, p.county, p.township, p.product, p.area_mu AS planned_area_mu,
                  coalesce(pl.area_mu, 0) AS planted_area_mu, p.target_household_income_fen,
                  coalesce(e.households, 0) AS earning_households,
                  CASE WHEN e.households > 0 THEN (e.paid_fen / e.households)::bigint ELSE 0 END AS average_household_income_fen
           FROM settlement.plans p
           LEFT JOIN planted pl USING (county, township, product)
           LEFT JOIN earners e USING (county, township, product)
           ORDER BY p.county, p.township, p.product"""
    )
    return {
        "villages": [dict(row) for row in villages],
        "counties": county_coverage(villages),
        "plans": [
            {
                **dict(row),
                "planned_area_mu": quantity_text(row["planned_area_mu"]),
                "planted_area_mu": quantity_text(Decimal(row["planted_area_mu"])),
            }
            for row in plans
        ],
    }


def floor_activations(fills: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Commitment fills: the floor against the market as of the fill, and which one set the price."""
    return [
        {
            "lot_id": fill["lot_id"],
            "commitment_id": fill["outlet_id"],
            "buyer_id": fill["buyer_id"],
            "price_as_of": fill.get("price_as_of"),
            "market_price_fen": fill.get("market_price_fen"),
            "floor_price_fen": fill.get("floor_price_fen"),
            "unit_price_fen": fill["unit_price_fen"],
            "price_basis": fill["price_basis"],
            "quantity": quantity_text(Decimal(fill["quantity"])),
        }
        for fill in fills
        if fill["outlet_kind"] == "commitment"
    ]
