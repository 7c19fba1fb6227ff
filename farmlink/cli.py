"""`farmlink`: the command line for people — run the services, publish scenarios, read the market, run the demo."""

import asyncio
import json
import logging
from enum import Enum
from pathlib import Path
from typing import Any

import asyncpg
import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from events.settings import settings
from farmlink import processes, reports
from farmlink.infra_cli import infra_app

console = Console()
app = typer.Typer(
    help="farmlink: event-sourced supply and purchase matching for Yanhe county. "
    "Cooperatives publish harvests, buyers subscribe to offers, auditors replay the log.",
    no_args_is_help=True,
)
app.add_typer(infra_app, name="infra")
contracts_app = typer.Typer(help="The public event contracts.", no_args_is_help=True)
app.add_typer(contracts_app, name="contracts")

DEMO_SCENARIO = Path(__file__).parent / "scenarios" / "yanhe-2020.jsonl"


class Format(str, Enum):
    table = "table"
    jsonl = "jsonl"


def _quiet_logs() -> None:
    logging.basicConfig(level=logging.WARNING)
    logging.getLogger("aiokafka").setLevel(logging.CRITICAL)


@contracts_app.command("export")
def contracts_export() -> None:
    """Write the JSON Schema of every event type and version under contracts/schemas/."""
    from contracts.schemas import export

    for path in export():
        console.print(f"wrote {path}")


@app.command()
def serve(name: str = typer.Argument(..., help=f"one of: {', '.join(processes.SERVICES)}")) -> None:
    """Run one service in the foreground until Ctrl-C or SIGTERM."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("aiokafka").setLevel(logging.WARNING)
    processes.serve(name)


@app.command()
def up() -> None:
    """Start Kafka and PostgreSQL (unless external ones are configured) and every service."""
    from farmlink import infra

    _quiet_logs()
    infra.ensure_up(progress=lambda message: console.print(message, style="dim", highlight=False))
    processes.start_all(say=lambda message: console.print(message, style="dim"))
    console.print("farmlink is up: " + ", ".join(processes.SERVICES))


@app.command()
def down() -> None:
    """Stop every service (Kafka and PostgreSQL keep running: `farmlink infra down` stops them)."""
    processes.stop_all(say=lambda message: console.print(message, style="dim"))


@app.command()
def publish(
    file: Path = typer.Argument(..., exists=True, dir_okay=False, help="a scenario file: JSON Lines of {type, payload}"),
    strict: bool = typer.Option(False, "--strict", help="stop at the first rejected line"),
) -> None:
    """Send every line through its owning service, in file order; print accepted and rejected lines."""
    _quiet_logs()
    summary = _publish(file, strict)
    raise typer.Exit(1 if summary.rejected else 0)


def _publish(file: Path, strict: bool):
    from farmlink.publisher import publish_lines
    from farmlink.scenario import read_scenario

    lines = read_scenario(file)
    with Progress(TextColumn("publishing"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), console=console) as bar:
        task = bar.add_task("publish", total=len(lines))

        def on_line(line, reason):
            if reason:
                bar.console.print(f"[red]rejected[/] {reason}", highlight=False)
            bar.advance(task)

        summary = asyncio.run(publish_lines(settings().bootstrap, lines, strict=strict, on_line=on_line))
    console.print(
        f"{file}: {summary.accepted} accepted, {len(summary.rejected)} rejected"
        + (" (stopped at the first rejection: --strict)" if summary.stopped_early else "")
    )
    return summary


async def _read(query) -> Any:
    conn = await asyncpg.connect(settings().dsn)
    try:
        return await query(conn)
    finally:
        await conn.close()


def _print_rows(rows: list[dict[str, Any]], fmt: Format, title: str, columns: list[str] | None = None) -> None:
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


FORMAT = typer.Option(Format.table, "--format", help="table for people, jsonl for machines")


@app.command()
def matches(fmt: Format = FORMAT) -> None:
    """Every fill, in the matcher's output order (the fields of matching-rules.md)."""
    fills = asyncio.run(_read(reports.recorded_fills))
    _print_rows([reports.fill_output(fill) for fill in fills], fmt, "fills")


@app.command()
def simulate(
    file: Path = typer.Argument(..., exists=True, dir_okay=False, help="a scenario file"),
    fmt: Format = FORMAT,
) -> None:
    """The fills the rules give for a scenario, computed offline (no Kafka, no database): what `matches` should show."""
    from farmlink.offline import simulate as simulate_fills
    from farmlink.scenario import read_scenario
    from matcher.output import fill_record

    _print_rows([fill_record(fill) for fill in simulate_fills(read_scenario(file))], fmt, "fills the rules give")


@app.command()
def offers(fmt: Format = FORMAT) -> None:
    """Lots on offer now, with what is left of each."""
    _print_rows(asyncio.run(_read(reports.open_offers)), fmt, "open offers")


@app.command()
def incomes(fmt: Format = FORMAT) -> None:
    """The household income ledger: fen paid per household and product."""
    _print_rows(asyncio.run(_read(reports.household_incomes)), fmt, "household incomes (fen paid)")


@app.command()
def coverage(fmt: Format = FORMAT) -> None:
    """Registered-poor households with and without industry income, per village and county; plans vs actuals."""
    view = asyncio.run(_read(reports.coverage))
    if fmt is Format.jsonl:
        for section, rows in view.items():
            for row in rows:
                typer.echo(json.dumps({"section": section, **row}, ensure_ascii=False, separators=(",", ":"), default=str))
        return
    _print_rows(view["villages"], fmt, "registered-poor households by village")
    _print_rows(view["counties"], fmt, "registered-poor households by county")
    _print_rows(view["plans"], fmt, "industry plans beside actuals")


@app.command()
def demo(
    scenario: Path = typer.Option(DEMO_SCENARIO, help="the scenario to publish"),
    fresh: bool = typer.Option(True, "--fresh/--keep", help="wipe farmlink data first so the demo starts clean"),
) -> None:
    """Start everything, publish the Yanhe 2020 scenario, and print fills, floor activations, incomes, coverage."""
    from farmlink import infra
    from farmlink.caughtup import wait_until_caught_up

    _quiet_logs()
    say = lambda message: console.print(message, style="dim", highlight=False)  # noqa: E731
    infra.ensure_up(progress=say)
    if fresh:
        processes.stop_all(say=say)
        infra.reset_data(progress=say)
    processes.start_all(say=say)
    summary = _publish(scenario, strict=False)
    asyncio.run(wait_until_caught_up(settings().bootstrap, settings().dsn))
    fills = asyncio.run(_read(reports.recorded_fills))
    _print_rows([reports.fill_output(fill) for fill in fills], Format.table, "fills, in the matcher's output order")
    _print_rows(reports.floor_activations(fills), Format.table, "floor commitment fills: floor vs market")
    _print_rows(asyncio.run(_read(reports.household_incomes)), Format.table, "household incomes (fen paid)")
    view = asyncio.run(_read(reports.coverage))
    _print_rows(view["counties"], Format.table, "registered-poor households by county")
    _print_rows(view["villages"], Format.table, "registered-poor households by village")
    _print_rows(view["plans"], Format.table, "industry plans beside actuals")
    console.print(
        f"demo: {summary.accepted} lines accepted, {len(summary.rejected)} rejected, {len(fills)} fills. "
        "Services keep running: `farmlink down` stops them, `farmlink infra down` stops Kafka and PostgreSQL."
    )


if __name__ == "__main__":
    app()
