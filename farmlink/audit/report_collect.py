"""From an audit's result to the report's rows: one pass per kind of event, sums instead of copies.

Reads only the audited log (`AuditResult.log`), so a report of an audit from Kafka shows the same
as one from PostgreSQL. A fill's business date is the later of its lot's `available_from` and its
outlet's start (an order's `deliver_from`, a commitment's `valid_from`), as the matcher dates it.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from typing import Any

from farmlink.audit.model import AuditLog, Finding, Record
from farmlink.audit.report_rows import (
    AuditSummary,
    CitedEvent,
    Commitment,
    Coverage,
    FillRow,
    HouseholdIncome,
    Phase,
    PlanRow,
    PricePoint,
    ProductMonth,
    ReportData,
)

PAYLOAD_LIMIT = 2_000  # characters of a cited event's payload shown in the page


def _day(value: Any) -> date | None:
    if isinstance(value, date):
        return value
    try:
        return date.fromisoformat(str(value)[:10]) if value else None
    except ValueError:
        return None


def _events(log: AuditLog, schema: str, *types: str) -> Iterator[Record]:
    return (r for r in log.by_schema.get(schema, []) if r.event_type in types)


@dataclass
class Journal:
    """What the matcher's journal says about lots, outlets, commitments and market prices."""

    lot_start: dict[str, str] = field(default_factory=dict)
    outlet_start: dict[tuple[str, str], str] = field(default_factory=dict)
    commitments: dict[str, Commitment] = field(default_factory=dict)
    prices: dict[tuple[str, str], list[PricePoint]] = field(default_factory=lambda: defaultdict(list))


def read_journal(log: AuditLog) -> Journal:
    journal = Journal()
    for entry in _events(log, "matching", "InputJournaled"):
        kind, fact = entry.payload.get("source_event_type"), entry.payload.get("fact") or {}
        if kind == "HarvestRecorded":
            journal.lot_start[fact["lot_id"]] = str(fact.get("available_from") or "")
        elif kind == "OrderPlaced":
            journal.outlet_start[("order", fact["order_id"])] = str(fact.get("deliver_from") or "")
        elif kind == "CommitmentMade":
            journal.outlet_start[("commitment", fact["commitment_id"])] = str(fact.get("valid_from") or "")
            journal.commitments[fact["commitment_id"]] = Commitment(
                commitment_id=fact["commitment_id"],
                buyer_id=str(fact.get("buyer_id")),
                product=str(fact.get("product")),
                min_grade=str(fact.get("min_grade") or ""),
                floor_price_fen=int(fact.get("floor_price_fen") or 0),
                reference_market=str(fact.get("reference_market") or ""),
                valid_from=_day(fact.get("valid_from")),
                valid_to=_day(fact.get("valid_to")),
            )
        elif kind == "MarketPriceObserved" and (day := _day(fact.get("observed_on"))) is not None:
            journal.prices[(str(fact.get("product")), str(fact.get("market")))].append(
                PricePoint(day, str(fact.get("grade")), int(fact.get("price_fen") or 0))
            )
    for points in journal.prices.values():
        points.sort(key=lambda p: (p.observed_on, p.grade))
    return journal


def _optional_int(value: Any) -> int | None:
    return None if value is None else int(value)


def iter_fills(log: AuditLog, journal: Journal) -> Iterator[FillRow]:
    """Every recorded fill, in log order, dated."""
    for record in _events(log, "matching", "FillMade"):
        p = record.payload
        start = journal.outlet_start.get((p.get("outlet_kind"), p.get("outlet_id")), "")
        yield FillRow(
            global_position=record.global_position,
            event_id=record.event_id,
            fill_id=str(p.get("fill_id")),
            product=str(p.get("product")),
            business_date=_day(max(journal.lot_start.get(p.get("lot_id"), ""), start)),
            lot_id=str(p.get("lot_id")),
            cooperative_id=str(p.get("cooperative_id")),
            grade=str(p.get("grade")),
            outlet_kind=str(p.get("outlet_kind")),
            outlet_id=str(p.get("outlet_id")),
            buyer_id=str(p.get("buyer_id")),
            quantity=Decimal(str(p.get("quantity") or 0)),
            unit_price_fen=int(p.get("unit_price_fen") or 0),
            price_basis=str(p.get("price_basis")),
            revenue_fen=int(p.get("revenue_fen") or 0),
            floor_price_fen=_optional_int(p.get("floor_price_fen")),
            market_price_fen=_optional_int(p.get("market_price_fen")),
            price_as_of=_day(p.get("price_as_of")),
        )


def add_fills(data: ReportData, fills: Iterable[FillRow], journal: Journal) -> None:
    """Sum fills per product and month; keep each commitment's own fills; the span of business dates."""
    months: dict[tuple[str, str], ProductMonth] = {}
    for fill in fills:
        month = fill.business_date.strftime("%Y-%m") if fill.business_date else "unknown"
        row = months.get((fill.product, month)) or months.setdefault((fill.product, month), ProductMonth(fill.product, month))
        row.fills += 1
        row.quantity += fill.quantity
        row.revenue_fen += fill.revenue_fen
        row.floor_activations += fill.at_floor
        if fill.outlet_kind == "commitment" and fill.outlet_id in journal.commitments:
            journal.commitments[fill.outlet_id].fills.append(fill)
        if fill.business_date:
            data.first_day = min(data.first_day or fill.business_date, fill.business_date)
            data.last_day = max(data.last_day or fill.business_date, fill.business_date)
    data.months = [months[key] for key in sorted(months)]
    for commitment in journal.commitments.values():
        commitment.prices = journal.prices.get((commitment.product, commitment.reference_market), [])
    data.commitments = list(journal.commitments.values())


def read_households(log: AuditLog) -> list[HouseholdIncome]:
    """Every member household of a registered cooperative, with the fen paid to it (all products)."""
    paid: dict[str, int] = defaultdict(int)
    for record in _events(log, "settlement", "PaymentMade"):
        for household, fen in (record.payload.get("household_income_fen") or {}).items():
            paid[household] += int(fen)
    households = []
    for record in _events(log, "cooperative", "CooperativeRegistered"):
        p = record.payload
        for member in p.get("households") or []:
            hid = member["household_id"]
            households.append(
                HouseholdIncome(
                    hid,
                    str(p.get("cooperative_id")),
                    str(p.get("village")),
                    str(p.get("township")),
                    str(p.get("county")),
                    bool(member.get("registered_poor")),
                    paid.pop(hid, 0),
                )
            )
    for hid, fen in sorted(paid.items()):  # paid, but no cooperative lists the household
        households.append(HouseholdIncome(hid, "", "", "", "", False, fen))
    return households


def coverage(households: list[HouseholdIncome]) -> tuple[list[Coverage], list[Coverage]]:
    """Coverage by village and by county."""
    villages: dict[tuple[str, str, str], list[int]] = defaultdict(lambda: [0, 0, 0, 0])
    for h in households:
        if not h.county:
            continue
        sums = villages[(h.county, h.township, h.village)]
        sums[0] += 1
        sums[1] += h.registered_poor
        sums[2] += h.registered_poor and h.paid_fen > 0
        sums[3] += h.paid_fen
    counties: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0, 0])
    for (county, _, _), sums in villages.items():
        counties[county] = [a + b for a, b in zip(counties[county], sums)]
    return (
        [Coverage(c, t, v, *villages[(c, t, v)]) for c, t, v in sorted(villages)],
        [Coverage(c, "", "", *counties[c]) for c in sorted(counties)],
    )


def read_plans(log: AuditLog, households: list[HouseholdIncome]) -> list[PlanRow]:
    """Each plan beside the area planted in its township and the income its households earned."""
    planted: dict[tuple[str, str, str], Decimal] = defaultdict(Decimal)
    for record in _events(log, "cooperative", "PlantingRecorded"):
        p = record.payload
        planted[(p.get("county"), p.get("township"), p.get("product"))] += Decimal(str(p.get("area_mu") or 0))
    earned: dict[tuple[str, str, str], dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for record in _events(log, "settlement", "PaymentMade"):
        p = record.payload
        for household, fen in (p.get("household_income_fen") or {}).items():
            earned[p.get("product")][household] += int(fen)
    where = {h.household_id: (h.county, h.township) for h in households}
    plans = []
    for record in _events(log, "settlement", "PlanRecorded"):
        p = record.payload
        key = (p.get("county"), p.get("township"), p.get("product"))
        earners = [fen for hid, fen in earned.get(key[2], {}).items() if where.get(hid) == key[:2]]
        plans.append(
            PlanRow(
                str(p.get("plan_id")),
                str(key[0]),
                str(key[1]),
                str(key[2]),
                Decimal(str(p.get("area_mu") or 0)),
                planted.get(key, Decimal(0)),
                int(p.get("target_household_income_fen") or 0),
                len(earners),
                sum(earners) // len(earners) if earners else 0,
            )
        )
    return plans


def cited_events(log: AuditLog, findings: list[Finding]) -> dict[str, CitedEvent]:
    """The events the findings name, by event id."""
    wanted = {f.event_id for f in findings if f.event_id}
    cited: dict[str, CitedEvent] = {}
    for record in log.records() if wanted else ():
        if record.event_id in wanted and record.event_id not in cited:
            text = json.dumps(record.payload, ensure_ascii=False, indent=1, sort_keys=True, default=str)
            cited[record.event_id] = CitedEvent(
                record.event_id,
                record.schema,
                record.stream_id,
                record.stream_version,
                record.global_position,
                record.event_type,
                record.occurred_at.isoformat() if hasattr(record.occurred_at, "isoformat") else str(record.occurred_at),
                text if len(text) <= PAYLOAD_LIMIT else text[:PAYLOAD_LIMIT] + "\n…",
            )
    return cited


def summary_of(result: Any) -> AuditSummary:
    """The verdict and figures of an `AuditResult` (read through its `summary()` and `timings`)."""
    s = result.summary()
    timings = getattr(result, "timings", None) or {}
    since = s.get("since_checkpoint") or None
    return AuditSummary(
        events_audited=int(s.get("events_audited") or 0),
        source=str(s.get("source") or ""),
        clean=bool(s.get("clean")),
        state_hash=str(s.get("state_hash") or ""),
        journal_inputs=int(s.get("journal_inputs") or 0),
        fills=int(s.get("fills") or 0),
        findings=len(result.findings),
        reconciled=bool(s.get("reconciled_with_kafka")),
        phases=tuple(Phase(str(name), float(seconds)) for name, seconds in timings.items()),
        workers=int(s.get("workers") or 1),
        worker_cpu=tuple(Phase(str(name), float(seconds)) for name, seconds in (s.get("worker_cpu_seconds") or {}).items()),
        since=(int(since.get("events_before") or 0), int(since.get("events_after") or 0)) if since else None,
    )


def report_data(result: Any) -> ReportData:
    """The report's rows for one audit result."""
    log: AuditLog = result.log
    data = ReportData(summary=summary_of(result), findings=list(result.findings))
    data.cited = cited_events(log, data.findings)
    journal = read_journal(log)
    add_fills(data, iter_fills(log, journal), journal)
    data.households = read_households(log)
    data.villages, data.counties = coverage(data.households)
    data.plans = read_plans(log, data.households)
    data.buyers = sum(1 for _ in _events(log, "buyer", "BuyerRegistered"))
    return data
