"""What the report shows, computed from the log alone (so an audit from Kafka shows the same):
fills with their business dates, commitments, prices, household incomes, coverage."""

from collections import defaultdict
from decimal import Decimal
from typing import Any

from contracts.coverage import Household, county_coverage, village_coverage
from farmlink.audit.model import AuditLog, Finding, Record, finding_at
from matcher.journal import JOURNALED_TYPES
from matcher.versions import ADOPTION_TYPE

JOURNAL_CHECK = "reconciliation"


def _of_type(log: AuditLog, schema: str, event_type: str) -> list[Record]:
    return [r for r in log.by_schema.get(schema, []) if r.event_type == event_type]


def journal_facts(log: AuditLog) -> dict[str, dict[str, dict[str, Any]]]:
    """The journaled facts by source event type and id: lots, orders, commitments, ..."""
    facts: dict[str, dict[str, dict[str, Any]]] = defaultdict(dict)
    keys = {"HarvestRecorded": "lot_id", "OrderPlaced": "order_id", "CommitmentMade": "commitment_id"}
    for entry in _of_type(log, "matching", "InputJournaled"):
        kind = entry.payload["source_event_type"]
        if kind in keys:
            facts[kind][entry.payload["fact"][keys[kind]]] = entry.payload["fact"]
    return facts


def fills_with_dates(log: AuditLog) -> list[dict[str, Any]]:
    """Recorded fills, each with its business date: the later of the lot's available_from and the outlet's start."""
    facts = journal_facts(log)
    fills = []
    for record in sorted(_of_type(log, "matching", "FillMade"), key=lambda r: r.global_position):
        fill = dict(record.payload)
        lot = facts["HarvestRecorded"].get(fill["lot_id"], {})
        outlet = (facts["OrderPlaced"] if fill["outlet_kind"] == "order" else facts["CommitmentMade"]).get(fill["outlet_id"], {})
        start = outlet.get("deliver_from") or outlet.get("valid_from") or ""
        fill["business_date"] = max(lot.get("available_from", ""), start) or None
        fills.append(fill)
    return fills


def commitments(log: AuditLog) -> list[dict[str, Any]]:
    return list(journal_facts(log)["CommitmentMade"].values())


def market_prices(log: AuditLog) -> list[dict[str, Any]]:
    return [
        e.payload["fact"]
        for e in _of_type(log, "matching", "InputJournaled")
        if e.payload["source_event_type"] == "MarketPriceObserved"
    ]


def _households(log: AuditLog) -> dict[str, dict[str, Any]]:
    households = {}
    for record in _of_type(log, "cooperative", "CooperativeRegistered"):
        p = record.payload
        for h in p["households"]:
            households[h["household_id"]] = {
                "household_id": h["household_id"],
                "cooperative_id": p["cooperative_id"],
                "village": p["village"],
                "township": p["township"],
                "county": p["county"],
                "registered_poor": h["registered_poor"],
            }
    return households


def incomes(log: AuditLog) -> list[dict[str, Any]]:
    """Fen paid per household and product, from the PaymentMade events."""
    households = _households(log)
    paid: dict[tuple[str, str], int] = defaultdict(int)
    for record in _of_type(log, "settlement", "PaymentMade"):
        for household, fen in record.payload["household_income_fen"].items():
            paid[(household, record.payload["product"])] += fen
    return [
        {**households.get(household, {"household_id": household}), "product": product, "paid_fen": fen}
        for (household, product), fen in sorted(paid.items())
    ]


def coverage(log: AuditLog) -> dict[str, list[dict[str, Any]]]:
    """Registered-poor households with and without income by village and county; plans beside actuals."""
    households = _households(log)
    paid: dict[str, int] = defaultdict(int)
    by_product: dict[tuple[str, str, str], dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for row in incomes(log):
        paid[row["household_id"]] += row["paid_fen"]
        if "county" in row:
            by_product[(row["county"], row["township"], row["product"])][row["household_id"]] += row["paid_fen"]
    villages = village_coverage(
        Household(h["county"], h["township"], h["village"], h["registered_poor"], paid.get(h["household_id"], 0))
        for h in households.values()
    )
    planted: dict[tuple[str, str, str], Decimal] = defaultdict(Decimal)
    for record in _of_type(log, "cooperative", "PlantingRecorded"):
        p = record.payload
        planted[(p["county"], p["township"], p["product"])] += Decimal(p["area_mu"])
    plans = []
    for record in _of_type(log, "settlement", "PlanRecorded"):
        p = record.payload
        key = (p["county"], p["township"], p["product"])
        earners = by_product.get(key, {})
        plans.append(
            {
                "plan_id": p["plan_id"],
                "county": p["county"],
                "township": p["township"],
                "product": p["product"],
                "planned_area_mu": p["area_mu"],
                "planted_area_mu": str(planted.get(key, Decimal(0))),
                "target_household_income_fen": p["target_household_income_fen"],
                "earning_households": len(earners),
                "average_household_income_fen": (sum(earners.values()) // len(earners)) if earners else 0,
            }
        )
    return {
        "villages": villages,
        "counties": county_coverage(villages),
        "plans": plans,
    }


def check_journal_complete(log: AuditLog) -> list[Finding]:
    """Every source event the matcher must see is journaled exactly once, and every journal entry has its source."""
    sources = {
        r.event_id: r
        for schema in ("cooperative", "buyer", "market")
        for r in log.by_schema.get(schema, [])
        if r.event_type in JOURNALED_TYPES
    }
    journaled: dict[str, list[Record]] = defaultdict(list)
    for entry in _of_type(log, "matching", "InputJournaled"):
        if entry.payload.get("source_event_type") != ADOPTION_TYPE:  # a rules adoption has no source event (matcher/versions.py)
            journaled[entry.payload["source_event_id"]].append(entry)
    findings = []
    for event_id, source in sources.items():
        entries = journaled.get(event_id, [])
        if not entries:
            findings.append(finding_at(JOURNAL_CHECK, source, "never reached the matcher's journal"))
        elif len(entries) > 1:
            findings.append(finding_at(JOURNAL_CHECK, entries[1], f"journaled {len(entries)} times"))
    for event_id, entries in journaled.items():
        if event_id not in sources:
            findings.append(finding_at(JOURNAL_CHECK, entries[0], "journals a source event that is not in the store"))
    return findings
