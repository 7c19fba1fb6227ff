"""`farmlink pairings`: the pairing office's report (farmlink/office/pairings.py): each pairing's support and how
the helped township or village is doing; each project's milestones and state as of a date."""

from __future__ import annotations

import asyncio
import json
from datetime import date
from enum import Enum
from typing import Any

import asyncpg
import typer
from rich.console import Console
from rich.table import Table

from events.settings import settings
from farmlink.office import pairings as report

console = Console()


class PairingsFormat(str, Enum):
    table = "table"
    jsonl = "jsonl"


def _as_of(text: str | None) -> date:
    if text is None:
        return date.today()
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise typer.BadParameter(f"{text!r} is not a date YYYY-MM-DD", param_hint="--as-of") from None


async def read(as_of: date) -> dict[str, list[dict[str, Any]]]:
    """Both sections, read as the auditor's read-only role."""
    conn = await asyncpg.connect(settings().auditor_dsn)
    try:
        return {"pairings": await report.pairing_rows(conn), "projects": await report.project_rows(conn, as_of)}
    finally:
        await conn.close()


def _table(rows: list[dict[str, Any]], title: str) -> None:
    table = Table(title=title)
    names = list(rows[0]) if rows else []
    for name in names:
        table.add_column(name)
    for row in rows:
        table.add_row(*(json.dumps(v, ensure_ascii=False) if isinstance(v, dict) else str(v) for v in row.values()))
    console.print(table if rows else f"{title}: none")


def pairings(
    as_of: str | None = typer.Option(
        None, "--as-of", metavar="YYYY-MM-DD", help="the date milestones are judged by (default: today)"
    ),
    fmt: PairingsFormat = typer.Option(PairingsFormat.table, "--format", help="table, or one JSON object per line"),
) -> None:
    """The pairing office's report: per pairing ("9+2", "1+1"), the support delivered (fen by kind) and the helped
    township's or village's households, registered-poor coverage, fills and income, and its fills and the household
    income paid for them before the day the pairing began (`registered_on`) and since; per project, milestones
    reached, overdue and its state. Example: farmlink pairings --as-of 2020-12-31"""
    view = asyncio.run(read(_as_of(as_of)))
    if fmt is PairingsFormat.jsonl:
        for section, rows in view.items():
            for row in rows:
                typer.echo(json.dumps({"section": section, **row}, ensure_ascii=False, separators=(",", ":"), default=str))
        return
    _table(view["pairings"], "pairings: support delivered and the helped area")
    _table(view["projects"], "projects: milestones and state")
