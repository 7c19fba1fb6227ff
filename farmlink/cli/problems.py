"""`farmlink problems`: the supervision ledger (farmlink/audit/problems.py) derived from the log: problems opened by the
rules at each supervision round or by an inspector, their rectification records, and how each was closed."""

from __future__ import annotations

import asyncio
import json
from enum import Enum

import typer
from rich.console import Console
from rich.table import Table

from events.settings import settings
from farmlink.audit.log import load_from_postgres
from farmlink.audit.problems import Ledger, derive

console = Console()


class ProblemState(str, Enum):
    open = "open"
    closed = "closed"
    all = "all"


class ProblemsFormat(str, Enum):
    table = "table"
    jsonl = "jsonl"


async def read_ledger() -> Ledger:
    """The ledger of the log in PostgreSQL, read as the auditor's read-only role."""
    return derive(await load_from_postgres(settings().auditor_dsn))


def problems(
    state: ProblemState = typer.Option(ProblemState.all, "--state", help="open, closed or all problems"),
    fmt: ProblemsFormat = typer.Option(ProblemsFormat.table, "--format", help="table, or one JSON object per line"),
) -> None:
    """The supervision ledger (问题清单、整改台账、销号管理), by township, team and kind: each problem, what opened it
    (a supervision round's rules, or an inspector), its rectification record, and how it was closed (cured, as the
    log shows, or by an inspector's signed reason). Derived from the log; nothing is written."""
    ledger = asyncio.run(read_ledger())
    rows = ledger.rows(state.value)
    if fmt is ProblemsFormat.jsonl:
        for row in rows:
            typer.echo(json.dumps(row, ensure_ascii=False, separators=(",", ":")))
        for anomaly in ledger.anomalies:
            typer.echo(json.dumps({"anomaly": anomaly}, ensure_ascii=False))
        return
    rounds = ", ".join(f"{r} (as of {d})" for r, d in ledger.rounds) or "none yet"
    console.print(f"supervision rounds: {rounds}")
    table = Table(title=f"problems ({state.value})")
    columns = ["township", "owner_team", "kind", "problem_id", "state", "reason", "rectifications", "closed"]
    for column in columns:
        table.add_column(column)
    for row in rows:
        table.add_row(*(str(row[c]) for c in columns))
    console.print(table if rows else f"problems ({state.value}): none")
    opened = sum(1 for p in ledger.problems.values() if p.state == "open")
    console.print(f"{len(ledger.problems)} problems: {opened} open, {len(ledger.problems) - opened} closed")
    for anomaly in ledger.anomalies:
        console.print(f"anomaly: {anomaly}", style="red")
