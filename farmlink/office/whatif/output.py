"""A what-if's answer written out: JSON, JSON lines, CSV, or rich tables on a console."""

from __future__ import annotations

import csv
import dataclasses
import io
import json
from collections.abc import Sequence
from typing import Any


from farmlink.office.whatif.comparison import HouseholdRow, VillageRow, WhatIf
from farmlink.office.whatif.terms import NO_LIMIT

FORMAT = "farmlink.what-if"
FORMAT_VERSION = 1


HOUSEHOLD_COLUMNS = (
    "county",
    "township",
    "village",
    "cooperative_id",
    "household_id",
    "registered_poor",
    "recorded_fen",
    "replayed_fen",
    "difference_fen",
    "fills_changed",
)
VILLAGE_COLUMNS = (
    "county",
    "township",
    "village",
    "households",
    "registered_poor",
    "recorded_fen",
    "replayed_fen",
    "difference_fen",
    "fills_changed",
)
CHANGE_COLUMNS = ("commitment_id", "product", "term", "recorded", "replayed", "given")
CSV_COLUMNS = (
    "level",
    "county",
    "township",
    "village",
    "cooperative_id",
    "household_id",
    "households",
    "registered_poor_households",
    "recorded_fen",
    "replayed_fen",
    "difference_fen",
    "fills_changed",
)


def _changed(row: HouseholdRow | VillageRow) -> bool:
    return row.difference_fen != 0 or row.fills_changed > 0


def _row(item: Any, columns: Sequence[str]) -> dict[str, Any]:
    return {column: getattr(item, column) for column in columns}


def household_rows(result: WhatIf, changed_only: bool = False) -> list[dict[str, Any]]:
    return [_row(h, HOUSEHOLD_COLUMNS) for h in result.households if not changed_only or _changed(h)]


def village_rows(result: WhatIf, changed_only: bool = False) -> list[dict[str, Any]]:
    return [_row(v, VILLAGE_COLUMNS) for v in result.villages if not changed_only or _changed(v)]


def totals_row(result: WhatIf) -> dict[str, Any]:
    return {**dataclasses.asdict(result.totals), "difference_fen": result.totals.difference_fen}


def change_rows(result: WhatIf) -> list[dict[str, Any]]:
    return [dataclasses.asdict(change) for change in result.changes]


def as_json(result: WhatIf, changed_only: bool = False) -> dict[str, Any]:
    """One object: format and version, the changed terms, totals, villages, households; `identical` for the
    identity check; `nothing_written` always true."""
    return {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "changes": change_rows(result),
        "identical": result.identical,
        "totals": totals_row(result),
        "villages": village_rows(result, changed_only),
        "households": household_rows(result, changed_only),
        "nothing_written": True,
    }


def as_jsonl(result: WhatIf, changed_only: bool = False) -> list[str]:
    """A JSON line per row, each with its `section` (change, village, household, totals), as `farmlink coverage --format jsonl`."""
    rows = (
        [{"section": "change", **row} for row in change_rows(result)]
        + [{"section": "village", **row} for row in village_rows(result, changed_only)]
        + [{"section": "household", **row} for row in household_rows(result, changed_only)]
        + [{"section": "totals", "identical": result.identical, **totals_row(result)}]
    )
    return [json.dumps(row, ensure_ascii=False, separators=(",", ":")) for row in rows]


def as_csv(result: WhatIf, changed_only: bool = False) -> str:
    """One table for spreadsheets: a row per household, then per village, then the total (`level`); counts of
    households and registered-poor households on every row (1 or 0 on a household's), money in fen."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for h in result.households:
        if not changed_only or _changed(h):
            writer.writerow(
                [
                    "household",
                    h.county,
                    h.township,
                    h.village,
                    h.cooperative_id,
                    h.household_id,
                    1,
                    int(h.registered_poor),
                    h.recorded_fen,
                    h.replayed_fen,
                    h.difference_fen,
                    h.fills_changed,
                ]
            )
    for v in result.villages:
        if not changed_only or _changed(v):
            writer.writerow(
                [
                    "village",
                    v.county,
                    v.township,
                    v.village,
                    "",
                    "",
                    v.households,
                    v.registered_poor,
                    v.recorded_fen,
                    v.replayed_fen,
                    v.difference_fen,
                    v.fills_changed,
                ]
            )
    t = result.totals
    writer.writerow(
        [
            "total",
            "",
            "",
            "",
            "",
            "",
            t.households,
            sum(h.registered_poor for h in result.households),
            t.recorded_fen,
            t.replayed_fen,
            t.difference_fen,
            t.fills_changed,
        ]
    )
    return out.getvalue()


def signed(fen: int) -> str:
    """A difference in fen with its sign: +4000, -120, 0."""
    return f"{fen:+d}" if fen else "0"


def totals_line(result: WhatIf) -> str:
    t = result.totals
    return (
        f"totals: {t.households} households earned {t.recorded_fen} fen as recorded, {t.replayed_fen} fen as replayed "
        f"({signed(t.difference_fen)} fen; {t.households_gaining} gain, {t.households_losing} lose); fills {t.fills_recorded} "
        f"recorded, {t.fills_replayed} replayed, {t.fills_changed} changed; registered-poor households with income "
        f"{t.registered_poor_with_income_recorded} -> {t.registered_poor_with_income_replayed}"
    )


def _cell(column: str, value: Any) -> str:
    if column == "difference_fen":
        return signed(value)
    if value is None:  # a commitment term without a limit
        return NO_LIMIT if column in ("recorded", "replayed") else ""
    return str(value)


def print_tables(result: WhatIf, console: Any, changed_only: bool = False) -> None:
    """The changed terms, villages and households as rich tables (differences signed), then the totals line."""
    from rich.table import Table

    def table(title: str, columns: Sequence[str], rows: list[dict[str, Any]]) -> None:
        shown = Table(title=title)
        for column in columns:
            numbers = bool(rows) and all(type(row[column]) is int for row in rows)  # counts and fen, not flags or terms
            shown.add_column(
                column, overflow="fold", justify="right" if numbers and column not in ("recorded", "replayed") else "left"
            )
        for row in rows:
            shown.add_row(*(_cell(column, row[column]) for column in columns))
        console.print(shown)

    if result.changes:
        table("terms changed", CHANGE_COLUMNS, change_rows(result))
    else:
        console.print("no terms changed: the identity replay (every figure must equal the recorded one)", highlight=False)
    suffix = " (changed only)" if changed_only else ""
    table(f"villages: earned as recorded vs as replayed{suffix}", VILLAGE_COLUMNS, village_rows(result, changed_only))
    table(f"households: earned as recorded vs as replayed{suffix}", HOUSEHOLD_COLUMNS, household_rows(result, changed_only))
    console.print(totals_line(result), highlight=False)
