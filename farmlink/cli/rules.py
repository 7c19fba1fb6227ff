"""`farmlink rules`: the matching rules versions this matcher knows, since when each applies, what changed,
and (with --log) where each product's journal adopted one (matcher/versions.py)."""

from __future__ import annotations

import asyncio
import json
from enum import Enum
from typing import Any

import asyncpg
import typer
from rich.console import Console
from rich.table import Table

from matcher.versions import ADOPTION_TYPE, versions

console = Console()


class RulesFormat(str, Enum):
    table = "table"
    jsonl = "jsonl"


rules_app = typer.Typer(help="The matching rules versions: since when each applies and what changed.")


def version_rows() -> list[dict[str, Any]]:
    """One row per rules version, oldest first."""
    return [
        {
            "rules_version": info.version,
            "applies_from": None if info.applies_from is None else info.applies_from.isoformat(),
            "changes": info.changes,
        }
        for info in versions()
    ]


async def adoption_rows(dsn: str) -> list[dict[str, Any]]:
    """Every rules adoption recorded in the matching log: product, journal position, stream version, when."""
    conn = await asyncpg.connect(dsn)
    try:
        if not await conn.fetchval("SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = 'matching')"):
            return []
        rows = await conn.fetch(
            "SELECT payload->>'product' AS product, (payload->>'rules_version')::int AS rules_version, "
            "(payload->>'journal_seq')::int AS journal_seq, stream_version, occurred_at FROM matching.events "
            "WHERE event_type = 'InputJournaled' AND payload->>'source_event_type' = $1 ORDER BY global_position",
            ADOPTION_TYPE,
        )
    finally:
        await conn.close()
    return [{**dict(row), "occurred_at": row["occurred_at"].isoformat()} for row in rows]


def _emit(rows: list[dict[str, Any]], fmt: RulesFormat, title: str) -> None:
    if fmt is RulesFormat.jsonl:
        for row in rows:
            typer.echo(json.dumps(row, ensure_ascii=False, separators=(",", ":")))
        return
    table = Table(title=title)
    for name in rows[0] if rows else ["(none)"]:
        table.add_column(name)
    for row in rows:
        table.add_row(*("" if value is None else str(value) for value in row.values()))
    console.print(table)


@rules_app.callback(invoke_without_command=True)
def rules(
    fmt: RulesFormat = typer.Option(RulesFormat.table, "--format", help="table for people, jsonl for machines"),
    log: bool = typer.Option(False, "--log", help="also list where each product's journal adopted a version (reads PostgreSQL)"),
) -> None:
    """Every rules version, the day from which the matching service journals inputs under it (version 1: from
    the first journal entry), and what it changed; a product's journal switches at the rules adoption it records."""
    rows = version_rows()
    if fmt is RulesFormat.table:
        rows = [{**row, "applies_from": row["applies_from"] or "from the first journal entry"} for row in rows]
    _emit(rows, fmt, "matching rules versions")
    if log:
        from events.settings import settings

        adoptions = asyncio.run(adoption_rows(settings().auditor_dsn))
        _emit(adoptions, fmt, "rules adoptions in the matching log (product journals not listed are under version 1)")
