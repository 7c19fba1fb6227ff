"""`farmlink chaos`: a bounded fault run on the local broker and server, and its verdict."""

import asyncio
import json
import os
import sys
from pathlib import Path

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from events.settings import settings
from farmlink.operations import processes
from farmlink.cli.common import console, quiet_logs, wiped


def chaos(
    events: int = typer.Option(100_000, help="input events to send through the services during the run"),
    seed: int = typer.Option(2020, help="seed of the workload and of the fault points"),
    kills_per_service: int = typer.Option(3, help="SIGKILLs of each service, at random points"),
    services: str = typer.Option(",".join(processes.SERVICES), help="the services to kill, comma-separated"),
    window: int = typer.Option(2000, help="inputs in flight at most (sent, no outcome yet)"),
    network_faults: str = typer.Option(
        "kafka-latency,kafka-partition,postgres-latency,postgres-partition",
        "--network-faults",
        help="network faults between --network-service and the broker or PostgreSQL, comma-separated ('' for none)",
    ),
    network_service: str = typer.Option(
        "matching",
        help="the service whose links to Kafka and PostgreSQL the network "
        "faults strike (it talks to both through the run's loopback links)",
    ),
    latency_ms: int = typer.Option(300, help="latency the latency faults add in each direction, in milliseconds"),
    fault_seconds: float = typer.Option(30.0, help="how long each network fault and the full WAL volume are held"),
    wal_full: bool = typer.Option(
        True,
        "--wal-full/--no-wal-full",
        help="fill PostgreSQL's WAL volume (pg_wal on a tmpfs for the run; needs root), then free it",
    ),
    yes: bool = typer.Option(False, "--yes", help="do not ask before wiping farmlink data"),
    json_out: Path | None = typer.Option(None, "--json", help="also write the figures to this file"),
) -> None:
    """A bounded fault run on the local broker and server: kill services, bounce Kafka, restart PostgreSQL, slow down
    and cut one service's network to both, fill the WAL volume, then prove nothing was lost or done twice and the
    audit is clean. Exit 1 otherwise.

    Loopback only; stops by itself. Every service is SIGKILLed KILLS_PER_SERVICE times, the broker is stopped
    once with SIGTERM and once with SIGKILL, PostgreSQL is restarted once; each network fault strikes once, held
    FAULT_SECONDS, as does the full WAL volume (see farmlink/operations/chaos/).
    """
    from farmlink.operations.chaos import ask_for_fault_listener

    quiet_logs()
    config = settings()
    if config.uses_external_kafka or config.uses_external_database:
        console.print(
            "farmlink chaos kills the local broker and server; it refuses to run against external ones "
            "(unset KAFKA_BOOTSTRAP_SERVERS and DATABASE_URL).",
            style="red",
        )
        raise typer.Exit(2)
    beyond = _fault_options(services, network_faults, network_service, latency_ms, fault_seconds, wal_full)
    targets = tuple(name.strip() for name in services.split(",") if name.strip())
    if beyond.network:
        ask_for_fault_listener(config)  # a broker `_wiped` starts has the listener already: no restart for it
    wiped("The chaos run", yes)
    report = _run_with_progress(events, seed, kills_per_service, window, targets, beyond)
    _print_verdict(report, json_out)


def _fault_options(
    services: str, network_faults: str, network_service: str, latency_ms: int, fault_seconds: float, wal_full: bool
):
    """The run's faults beyond kill, from the options; exit 2 naming the option that is wrong."""
    from farmlink.operations.chaos import NETWORK_FAULTS, FaultOptions

    targets = tuple(name.strip() for name in services.split(",") if name.strip())
    if unknown := [name for name in targets if name not in processes.SERVICES]:
        console.print(f"--services: unknown service {', '.join(unknown)}; known: {', '.join(processes.SERVICES)}", style="red")
        raise typer.Exit(2)
    network = tuple(name.strip() for name in network_faults.split(",") if name.strip())
    if unknown := [name for name in network if name not in NETWORK_FAULTS]:
        console.print(f"--network-faults: unknown fault {', '.join(unknown)}; known: {', '.join(NETWORK_FAULTS)}", style="red")
        raise typer.Exit(2)
    if network and network_service not in processes.SERVICES:
        console.print(
            f"--network-service: unknown service {network_service}; known: {', '.join(processes.SERVICES)}", style="red"
        )
        raise typer.Exit(2)
    if latency_ms < 0 or fault_seconds <= 0:
        console.print("--latency-ms must be 0 or more and --fault-seconds more than 0", style="red")
        raise typer.Exit(2)
    if wal_full and os.geteuid() != 0:
        console.print("--wal-full mounts a tmpfs for pg_wal and needs root; run as root or pass --no-wal-full", style="red")
        raise typer.Exit(2)
    beyond = FaultOptions(network, network_service, latency_ms / 1000, fault_seconds, wal_full)
    return beyond


def _print_verdict(report, json_out: Path | None) -> None:
    """The run's figures, its recovery times and its verdict (exit 1 when something was lost or done twice)."""
    figures = report.as_dict()
    table = Table(title="chaos run", show_header=False)
    for label, value in (
        ("inputs sent (per service)", f"{report.events:,} {report.sent_by_service}"),
        ("inputs with one outcome", f"{report.outcomes:,}"),
        ("lost inputs", f"{report.lost}" + (f" e.g. {', '.join(report.lost_examples)}" if report.lost_examples else "")),
        ("journal: missing / duplicated", f"{report.journal_missing} / {report.journal_duplicates}"),
        ("fills: made / duplicated / settled", f"{report.fills:,} / {report.duplicate_fills} / {report.settled_fills:,}"),
        ("fills on Kafka (read_committed) / repeated", f"{report.fills_on_kafka:,} / {report.fill_redeliveries_on_kafka}"),
        ("payments / duplicated", f"{report.payments:,} / {report.duplicate_payments}"),
        ("fen paid / fen in household incomes", f"{report.paid_fen:,} / {report.income_fen:,}"),
        ("faults", ", ".join(f"{kind} x{count}" for kind, count in sorted(report.fault_count.items()))),
        ("services that exited by themselves", str(report.unplanned_restarts or "none")),
        ("audit (PostgreSQL + Kafka)", "clean" if report.audit_clean else "NOT CLEAN: " + "; ".join(report.audit_findings[:5])),
        ("state hash: store / fresh Kafka replay", f"{report.state_hash_postgres[:16]} / {report.state_hash_kafka[:16]}"),
        ("run time", f"{report.seconds:,.1f} s"),
    ):
        table.add_row(label, value)
    console.print(table)
    recoveries = Table(
        "fault",
        "held (s)",
        "component back (s)",
        "first new outcome (s)",
        title="recovery times (from the fault; for a held fault, from its heal)",
    )
    for recovery in report.recoveries:
        recoveries.add_row(
            recovery.fault,
            *("-" if value is None else f"{value:.2f}" for value in (recovery.held_s, recovery.back_s, recovery.first_outcome_s)),
        )
    console.print(recoveries)
    if json_out is not None:
        json_out.write_text(json.dumps(figures, indent=2) + "\n")
    console.print(
        json.dumps(
            {"chaos": {k: figures[k] for k in ("ok", "events", "lost", "duplicate_fills", "duplicate_payments", "audit_clean")}}
        )
    )
    if not report.ok:
        console.print("chaos run FAILED: something was lost, done twice, or the audit is not clean", style="red")
        raise typer.Exit(1)
    console.print("chaos run passed: zero lost, zero duplicated, audit clean", style="green")


def _run_with_progress(events: int, seed: int, kills_per_service: int, window: int, targets: tuple[str, ...], beyond):
    """The run itself, with a progress bar of inputs that have their outcome; the services are stopped after it."""
    from farmlink.operations.chaos import run_chaos

    with Progress(
        TextColumn("inputs with an outcome"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=not sys.stdout.isatty(),
    ) as bar:
        task = bar.add_task("chaos", total=events)
        try:
            report = asyncio.run(
                run_chaos(
                    events,
                    seed,
                    kills_per_service,
                    window,
                    say=bar.console.print,
                    progress=lambda done, total: bar.update(task, completed=done),
                    services=targets,
                    beyond=beyond,
                )
            )
        finally:
            processes.stop_all(say=lambda message: None)
    return report
