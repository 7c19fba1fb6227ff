"""`farmlink demo`: everything started, the Yanhe 2020 scenario published, the market and the pairing office printed."""

import asyncio
from pathlib import Path
from typing import Any

import typer

from events.settings import settings
from farmlink.operations import processes
from farmlink.buyers import reports
from farmlink.cli.common import Format, console, dim, print_rows, quiet_logs, read_as_auditor
from farmlink.cli.producer import publish_file

DEMO_SCENARIO = Path(__file__).parents[1] / "producers" / "scenarios" / "yanhe-2020.jsonl"


def demo(
    scenario: Path = typer.Option(DEMO_SCENARIO, help="the scenario to publish"),
    fresh: bool = typer.Option(True, "--fresh/--keep", help="wipe farmlink data first so the demo starts clean"),
) -> None:
    """Start everything, publish the Yanhe 2020 scenario, and print fills, floor activations, incomes, coverage."""
    from farmlink.operations import infra
    from farmlink.operations.caughtup import wait_until_caught_up

    quiet_logs()
    say = dim
    infra.ensure_up(progress=say)
    if fresh:
        processes.stop_gateway(say=say)
        processes.stop_all(say=say)
        infra.reset_data(progress=say)
    processes.start_all(say=say)
    processes.start_gateway(say=say)
    summary = publish_file(scenario, strict=False)
    asyncio.run(wait_until_caught_up(settings().bootstrap, settings().dsn))
    fills = asyncio.run(read_as_auditor(reports.recorded_fills))
    print_rows([reports.fill_output(fill) for fill in fills], Format.table, "fills, in the matcher's output order")
    print_rows(reports.floor_activations(fills), Format.table, "floor commitment fills: floor vs market")
    print_rows(asyncio.run(read_as_auditor(reports.household_incomes)), Format.table, "household incomes (fen paid)")
    view = asyncio.run(read_as_auditor(reports.coverage))
    print_rows(view["counties"], Format.table, "registered-poor households by county")
    print_rows(view["villages"], Format.table, "registered-poor households by village")
    print_rows(view["plans"], Format.table, "industry plans beside actuals")
    _demo_pairing_office(say)
    console.print(
        f"demo: {summary.accepted} lines accepted, {len(summary.rejected)} rejected, {len(fills)} fills. "
        "Services keep running: `farmlink down` stops them, `farmlink infra down` stops Kafka and PostgreSQL."
    )


def _demo_pairing_office(say: Any) -> None:
    """The pairing office's side of the demo: pairings and projects, the supervision ledger, and one what-if (the
    floor of Yuping's oil-tea promise at 4.60 yuan instead of 4.00: what the county asks before renewing it)."""
    from datetime import date

    from farmlink.cli.pairings import read as read_pairings
    from farmlink.cli.problems import read_ledger
    from farmlink.office.whatif import Changes, load_log, print_tables, what_if

    pairing_view = asyncio.run(read_pairings(date(2020, 12, 31)))
    print_rows(
        [{k: v for k, v in row.items() if k != "support_by_kind"} for row in pairing_view["pairings"]],
        Format.table,
        "pairings: support delivered (fen) and the helped area",
    )
    print_rows(pairing_view["projects"], Format.table, "projects: milestones and state as of 2020-12-31")
    ledger = asyncio.run(read_ledger())
    print_rows(
        [
            {k: row[k] for k in ("township", "owner_team", "kind", "problem_id", "state", "reason", "closed")}
            for row in ledger.rows()
        ],
        Format.table,
        "the supervision ledger (farmlink problems)",
    )
    say("what if Yuping's floor had been 460 fen/kg? (farmlink what-if --floor oil_tea_fruit=460 --changed-only)")
    result = what_if(asyncio.run(load_log(settings().auditor_dsn)), Changes.parse(["oil_tea_fruit=460"], [], [], []))
    print_tables(result, console, changed_only=True)
