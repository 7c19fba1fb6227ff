"""The pairing office's figures, read from the gateway's own projection (schema `gateway`).

What the county's and Tongren's officers look at (services/gateway/office_routes.py serves it as `/` and
`/v1/office`): open offers, recent fills, each guaranteed-floor commitment's activations (market price against
the floor, fen paid above the market), registered-poor households with and without industry income by
village, each township plan against what was planted and earned, and each pairing's support beside its
helped village's coverage and each project's milestones (from farmlink.pairing.events). Income is what the settlement service
recorded as paid (PaymentMade), as in `farmlink coverage` and the audit report.

Who may read it: the office, proven by the office token (`office_token`). Offers stay public.
"""

import hmac
import os
from decimal import Decimal
from typing import Any

import asyncpg
import orjson

from contracts.coverage import paid_by_household, registered_poor_sql, village_coverage_sql, with_income_sql
from events.settings import Settings, local_secret
from services.gateway.projection import fill_row_json, plain

RECENT_FILLS = 50
TOKEN_ENV = "FARMLINK_OFFICE_TOKEN"
SECRET_NAME = "gateway-office"
FILL_COLUMNS = (
    "seq",
    "fill_id",
    "buyer_id",
    "cooperative_id",
    "lot_id",
    "product",
    "grade",
    "outlet_kind",
    "outlet_id",
    "quantity",
    "unit_price_fen",
    "price_basis",
    "revenue_fen",
    "committed_at",
)


def office_token(config: Settings) -> str:
    """The office's bearer token: FARMLINK_OFFICE_TOKEN, else a local secret kept in
    `<farmlink_home>/secrets/gateway-office` (0600), generated on first use."""
    return os.environ.get(TOKEN_ENV) or local_secret(config, SECRET_NAME)


def is_office(presented: str | None, token: str) -> bool:
    return bool(presented) and hmac.compare_digest(presented.encode(), token.encode())


def above_market_fen(fill: dict[str, Any]) -> Decimal:
    """What a floor activation paid above the market as of its date ((price paid - market) x quantity; all of the
    price when no market price was known); nothing for a fill at the market."""
    if fill["price_basis"] != "floor":
        return Decimal(0)
    return (fill["unit_price_fen"] - (fill["market_price_fen"] or 0)) * Decimal(fill["quantity"])


def commitment_rows(commitments: list[dict[str, Any]], activations: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each commitment's terms, its fills in date order and its totals."""
    by_commitment: dict[str, list[dict[str, Any]]] = {}
    for fill in activations:
        by_commitment.setdefault(fill["outlet_id"], []).append(fill)
    rows = []
    for terms in commitments:
        fills = sorted(by_commitment.get(terms["commitment_id"], []), key=lambda f: (f["price_as_of"] or "", f["seq"]))
        above = sum((above_market_fen(f) for f in fills), Decimal(0))
        rows.append(
            {
                **{
                    k: terms.get(k)
                    for k in (
                        "commitment_id",
                        "buyer_id",
                        "product",
                        "min_grade",
                        "floor_price_fen",
                        "reference_market",
                        "valid_from",
                        "valid_to",
                        "cap_quantity",
                    )
                },
                "fills": [
                    {
                        k: f[k]
                        for k in (
                            "seq",
                            "fill_id",
                            "lot_id",
                            "cooperative_id",
                            "grade",
                            "quantity",
                            "price_as_of",
                            "market_price_fen",
                            "floor_price_fen",
                            "unit_price_fen",
                            "price_basis",
                            "revenue_fen",
                        )
                    }
                    for f in fills
                ],
                "activations": sum(1 for f in fills if f["price_basis"] == "floor"),
                "quantity": plain(sum((Decimal(f["quantity"]) for f in fills), Decimal(0))),
                "revenue_fen": sum(f["revenue_fen"] for f in fills),
                "above_market_fen": plain(above),
            }
        )
    return rows


def plan_rows(plans: list[asyncpg.Record]) -> list[dict[str, Any]]:
    return [
        {**dict(row), "planned_area_mu": plain(row["planned_area_mu"]), "planted_area_mu": plain(row["planted_area_mu"])}
        for row in plans
    ]


async def fills_after(db: asyncpg.Pool | asyncpg.Connection, after: int, limit: int = 1000) -> list[dict[str, Any]]:
    """Every buyer's fills after `after` in the gateway's order (`seq`)."""
    rows = await db.fetch(
        f"SELECT {', '.join(FILL_COLUMNS)} FROM gateway.fills WHERE seq > $1 ORDER BY seq LIMIT $2", after, limit
    )
    return [fill_row_json(row) for row in rows]


async def recent_fills(db: asyncpg.Pool | asyncpg.Connection, limit: int = RECENT_FILLS) -> list[dict[str, Any]]:
    """The last `limit` fills, oldest first."""
    rows = await db.fetch(
        f"SELECT * FROM (SELECT {', '.join(FILL_COLUMNS)} FROM gateway.fills ORDER BY seq DESC LIMIT $1) f ORDER BY seq", limit
    )
    return [fill_row_json(row) for row in rows]


VILLAGES = village_coverage_sql("gateway", with_households=True)

PLANS = """
WITH planted AS (SELECT county, township, product, sum(area_mu) AS area_mu FROM gateway.plantings GROUP BY 1, 2, 3),
     earners AS (SELECT h.county, h.township, i.product, count(*) AS households, sum(i.paid_fen) AS paid_fen
                 FROM gateway.incomes i JOIN gateway.households h USING (household_id) WHERE i.paid_fen > 0 GROUP BY 1, 2, 3)
SELECT p.plan_id, p.county, p.township, p.product, p.area_mu AS planned_area_mu, coalesce(pl.area_mu, 0) AS planted_area_mu,
       p.target_household_income_fen, coalesce(e.households, 0) AS earning_households,
       CASE WHEN e.households > 0 THEN (e.paid_fen / e.households)::bigint ELSE 0 END AS average_household_income_fen
FROM gateway.plans p LEFT JOIN planted pl USING (county, township, product) LEFT JOIN earners e USING (county, township, product)
ORDER BY p.county, p.township, p.product"""


PAIRINGS = f"""
WITH paid AS ({paid_by_household("gateway")}),
     support AS (SELECT pairing_id, coalesce(sum(value_fen), 0)::bigint AS fen, count(*) AS deliveries FROM gateway.support GROUP BY 1)
SELECT p.pairing_id, p.kind, p.helper, p.helped, p.helped_township, p.team,
       coalesce(s.fen, 0)::bigint AS support_fen, coalesce(s.deliveries, 0) AS deliveries,
       {registered_poor_sql()} AS registered_poor,
       {with_income_sql()} AS with_income,
       coalesce(sum(paid.fen), 0)::bigint AS paid_fen
FROM gateway.pairings p LEFT JOIN support s USING (pairing_id)
LEFT JOIN gateway.households h ON (p.helped_kind = 'village' AND h.village = p.helped AND h.township = p.helped_township)
                               OR (p.helped_kind = 'township' AND h.township = p.helped)
LEFT JOIN paid ON paid.household_id = h.household_id
GROUP BY p.pairing_id, s.fen, s.deliveries ORDER BY p.pairing_id"""

PROJECTS = """
SELECT p.project_id, p.name, p.owner_team, p.due_on::text AS due_on, count(m.milestone_id) AS milestones,
       count(m.milestone_id) FILTER (WHERE m.reached_on IS NOT NULL) AS reached,
       coalesce(string_agg(m.milestone_id || ' (' || m.due_on::text || ')', ', ' ORDER BY m.due_on)
                FILTER (WHERE m.reached_on IS NULL), '') AS open_milestones
FROM gateway.projects p LEFT JOIN gateway.milestones m USING (project_id)
GROUP BY p.project_id ORDER BY p.due_on, p.project_id"""


async def view(db: asyncpg.Pool, offers: list[dict[str, Any]]) -> dict[str, Any]:
    """Everything the office page shows, as one JSON document; `last_seq` is where its live stream starts."""
    async with db.acquire() as conn, conn.transaction(isolation="repeatable_read", readonly=True):
        last_seq = await conn.fetchval("SELECT coalesce(max(seq), 0) FROM gateway.fills")
        fills = await recent_fills(conn)
        terms = [
            orjson.loads(row[0]) for row in await conn.fetch("SELECT terms::text FROM gateway.commitments ORDER BY commitment_id")
        ]
        activations = [
            fill_row_json(row)
            for row in await conn.fetch(
                "SELECT seq, fill_id, lot_id, cooperative_id, grade, outlet_id, quantity, price_as_of, market_price_fen, floor_price_fen, "
                "unit_price_fen, price_basis, revenue_fen FROM gateway.fills WHERE outlet_kind = 'commitment' ORDER BY seq"
            )
        ]
        villages = [dict(row) for row in await conn.fetch(VILLAGES)]
        plans = plan_rows(await conn.fetch(PLANS))
        pairings = [dict(row) for row in await conn.fetch(PAIRINGS)]
        projects = [dict(row) for row in await conn.fetch(PROJECTS)]
    return {
        "last_seq": last_seq,
        "offers": offers,
        "fills": fills,
        "commitments": commitment_rows(terms, activations),
        "villages": villages,
        "plans": plans,
        "pairings": pairings,
        "projects": projects,
    }
