"""What every `farmlink` command shares: the console, output formats, table printing, quiet logs, reading as the auditor."""

import json
import logging
import sys
from enum import Enum
from typing import Any

import asyncpg
import typer
from rich.console import Console
from rich.table import Table

from events.settings import settings
from farmlink.operations import processes

# Piped output (CI logs, files) gets wide tables instead of rich's 80-column default.
console = Console(width=None if sys.stdout.isatty() else 160)


class Format(str, Enum):
    table = "table"
    jsonl = "jsonl"


FORMAT = typer.Option(Format.table, "--format", help="table for people, jsonl for machines")
SMOKE = typer.Option(False, "--smoke", help="a short run that only proves the benchmark works (what CI runs)")


def quiet_logs() -> None:
    logging.basicConfig(level=logging.WARNING)
    logging.getLogger("aiokafka").setLevel(logging.CRITICAL)


def dim(message: str) -> None:
    """Progress lines: dimmed, no highlighting."""
    console.print(message, style="dim", highlight=False)


async def read_as_auditor(query) -> Any:
    conn = await asyncpg.connect(settings().auditor_dsn)  # read-only: the reports never write
    try:
        return await query(conn)
    finally:
        await conn.close()


def print_rows(rows: list[dict[str, Any]], fmt: Format, title: str, columns: list[str] | None = None) -> None:
    if fmt is Format.jsonl:
        for row in rows:
            typer.echo(json.dumps(row, ensure_ascii=False, separators=(",", ":"), default=str))
        return
    table = Table(title=title)
    names = columns or (list(rows[0]) if rows else [])
    for name in names:
        table.add_column(name, overflow="fold")
    for row in rows:
        table.add_row(*(_cell(row.get(name)) for name in names))
    console.print(table)


def _cell(value: Any) -> str:
    if isinstance(value, dict):
        return ", ".join(f"{k}: {v}" for k, v in value.items())
    return "" if value is None else str(value)


def wiped(who: str, yes: bool):
    """Ask (unless --yes), bring the infrastructure up, stop the services and wipe farmlink's data; the progress printer."""
    from farmlink.operations import infra

    if not yes:
        typer.confirm(f"{who} wipes all farmlink data (topics and schemas). Go on?", abort=True)
    infra.ensure_up(progress=dim)
    processes.stop_gateway(say=dim)
    processes.stop_all(say=dim)
    infra.reset_data(progress=dim)
    return dim
