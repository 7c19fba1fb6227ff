"""Producers' tools on the command line: `farmlink publish` (a scenario through the services, in file order) and
`farmlink simulate` (the fills the rules give for it, offline)."""

import asyncio
from pathlib import Path

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from events.settings import settings
from farmlink.cli.common import FORMAT, Format, console, print_rows, quiet_logs


def publish(
    file: Path = typer.Argument(..., exists=True, dir_okay=False, help="a scenario file: JSON Lines of {type, payload}"),
    strict: bool = typer.Option(False, "--strict", help="stop at the first rejected line"),
) -> None:
    """Send every line through its owning service, in file order; print accepted and rejected lines."""
    quiet_logs()
    summary = publish_file(file, strict)
    raise typer.Exit(1 if summary.rejected else 0)


def publish_file(file: Path, strict: bool):
    from farmlink.producers.publisher import publish_lines
    from farmlink.producers.scenario import read_scenario

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


def simulate(
    file: Path = typer.Argument(..., exists=True, dir_okay=False, help="a scenario file"),
    fmt: Format = FORMAT,
) -> None:
    """The fills the rules give for a scenario, computed offline (no Kafka, no database): what `matches` should show."""
    from farmlink.producers.offline import simulate as simulate_fills
    from farmlink.producers.scenario import read_scenario
    from matcher.output import fill_record

    print_rows([fill_record(fill) for fill in simulate_fills(read_scenario(file))], fmt, "fills the rules give")
