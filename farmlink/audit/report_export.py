"""`farmlink audit --export DIR`: the full ledgers beside the page, as CSV and JSON for spreadsheets and machines.

Money stays in integer fen (columns end in `_fen`), quantities and areas exact decimal text, dates ISO.
Files: summary.json, findings.json, fills.csv (every fill), months.csv, commitments.csv, households.csv,
villages.csv, counties.csv, plans.csv. Fills are streamed from the log, one row at a time.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterable, Sequence
from dataclasses import asdict, fields
from pathlib import Path
from typing import Any

from farmlink.audit.report_rows import FillRow, HouseholdIncome, PlanRow, ProductMonth, ReportData

COMMITMENT_COLUMNS = (
    "commitment_id",
    "buyer_id",
    "product",
    "min_grade",
    "floor_price_fen",
    "reference_market",
    "valid_from",
    "valid_to",
    "fills",
    "floor_activations",
    "quantity",
    "revenue_fen",
    "above_market_fen",
)
COVERAGE_COLUMNS = ("county", "township", "village", "households", "registered_poor", "with_income", "without_income", "paid_fen")


def _text(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return value if isinstance(value, int) else str(value)


def _write_csv(path: Path, columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> int:
    count = 0
    with path.open("w", encoding="utf-8", newline="") as out:
        writer = csv.writer(out)
        writer.writerow(columns)
        for row in rows:
            writer.writerow([_text(v) for v in row])
            count += 1
    return count


def _rows_of(items: Iterable[Any], columns: Sequence[str]) -> Iterable[list[Any]]:
    return ([getattr(item, c) for c in columns] for item in items)


def _names(kind: type) -> tuple[str, ...]:
    return tuple(f.name for f in fields(kind))


def _json(path: Path, value: Any) -> None:
    path.write_text(json.dumps(value, ensure_ascii=False, indent=2, default=str) + "\n", encoding="utf-8")


def write_exports(directory: str | Path, data: ReportData, fills: Iterable[FillRow]) -> dict[str, int]:
    """Write every ledger into `directory` (created if needed); returns rows written per file."""
    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    summary = asdict(data.summary) | {"seconds_total": round(data.summary.seconds, 3), "counties": data.county_names}
    _json(out / "summary.json", summary)
    _json(out / "findings.json", [f.as_dict() for f in data.findings])
    written = {"summary.json": 1, "findings.json": len(data.findings)}
    written["fills.csv"] = _write_csv(out / "fills.csv", _names(FillRow), _rows_of(fills, _names(FillRow)))
    written["months.csv"] = _write_csv(out / "months.csv", _names(ProductMonth), _rows_of(data.months, _names(ProductMonth)))
    commitments = (
        [
            c.commitment_id,
            c.buyer_id,
            c.product,
            c.min_grade,
            c.floor_price_fen,
            c.reference_market,
            c.valid_from,
            c.valid_to,
            len(c.fills),
            c.activations,
            c.quantity,
            c.revenue_fen,
            c.above_market_fen,
        ]
        for c in data.commitments
    )
    written["commitments.csv"] = _write_csv(out / "commitments.csv", COMMITMENT_COLUMNS, commitments)
    written["households.csv"] = _write_csv(
        out / "households.csv", _names(HouseholdIncome), _rows_of(data.households, _names(HouseholdIncome))
    )
    for name, rows in (("villages.csv", data.villages), ("counties.csv", data.counties)):
        written[name] = _write_csv(out / name, COVERAGE_COLUMNS, _rows_of(rows, COVERAGE_COLUMNS))
    written["plans.csv"] = _write_csv(out / "plans.csv", _names(PlanRow), _rows_of(data.plans, _names(PlanRow)))
    return written
