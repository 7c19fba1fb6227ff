"""`farmlink bench ...`: benchmarks that print figures and write them to bench/results/; --smoke for CI."""

import asyncio
import json
import os
from pathlib import Path
from typing import Any

import typer

from events.settings import settings
from farmlink.operations import processes
from farmlink.cli.common import SMOKE, console, quiet_logs, wiped


bench_app = typer.Typer(help="Benchmarks that print figures; --smoke runs a short version (CI).", no_args_is_help=True)
BENCH_RESULTS = Path("bench/results")


def _save_bench(name: str, figures: dict[str, Any], smoke: bool) -> None:
    import platform

    BENCH_RESULTS.mkdir(parents=True, exist_ok=True)
    path = BENCH_RESULTS / f"{name}{'-smoke' if smoke else ''}.json"
    machine = {"cpus": os.cpu_count(), "python": platform.python_version(), "machine": platform.machine()}
    path.write_text(json.dumps({"benchmark": name, "smoke": smoke, "machine": machine, **figures}, indent=2) + "\n")
    console.print(f"figures written to {path}")


@bench_app.command("audit")
def bench_audit(
    events: int = typer.Option(1_000_000, help="size of the synthetic log"),
    smoke: bool = typer.Option(False, "--smoke", help="a 20,000-event run that only proves the benchmark works"),
    reuse: bool = typer.Option(
        False, "--reuse", help="audit the synthetic log of this size already in the bench schemas instead of generating it again"
    ),
    workers: int | None = typer.Option(
        None, "--workers", min=1, help="worker processes for the costly checks (default: one per core)"
    ),
    report: bool = typer.Option(
        True,
        "--report/--no-report",
        help="then write the audit's report in English and Chinese and load each in headless Chromium (when installed)",
    ),
) -> None:
    """Audit a synthetic log of EVENTS events from PostgreSQL, re-execution included; print the figures."""
    from farmlink.operations import infra
    from farmlink.operations.bench.audit_bench import run_audit_bench

    quiet_logs()
    infra.ensure_up(progress=lambda message: None)
    config = settings()
    figures = asyncio.run(
        run_audit_bench(
            config.bootstrap,
            config.dsn,
            20_000 if smoke else events,
            say=console.print,
            reuse=reuse,
            workers=workers,
            report_dir=config.home / "bench" / "audit-report" if report else None,
        )
    )
    _save_bench("audit", figures, smoke)
    if figures["findings"]:
        console.print("[red]the synthetic log did not audit clean[/]")
        raise typer.Exit(1)


@bench_app.command("append")
def bench_append(seconds: float = typer.Option(10.0, help="seconds per case and side"), smoke: bool = SMOKE) -> None:
    """Our event store vs eventsourcing's PostgreSQL recorder: 1 and 4 writers one event per transaction, 100-event batches."""
    from farmlink.operations import infra
    from farmlink.operations.bench.store_bench import run_append_bench

    quiet_logs()
    infra.ensure_up(progress=lambda message: None)
    _save_bench("append", asyncio.run(run_append_bench(settings().dsn, seconds=seconds, smoke=smoke, say=console.print)), smoke)


@bench_app.command("replay")
def bench_replay(events: int = typer.Option(200_000, help="events in each log"), smoke: bool = SMOKE) -> None:
    """Read the whole log and fold it into a projection, vs eventsourcing's select_notifications paging."""
    from farmlink.operations import infra
    from farmlink.operations.bench.store_bench import run_replay_bench

    quiet_logs()
    infra.ensure_up(progress=lambda message: None)
    _save_bench("replay", asyncio.run(run_replay_bench(settings().dsn, events=events, smoke=smoke, say=console.print)), smoke)


@bench_app.command("matcher")
def bench_matcher(inputs: int = typer.Option(1_000_000, help="journal inputs"), smoke: bool = SMOKE) -> None:
    """The pure matcher on a synthetic journal: inputs/s, memory per resting lot or outlet, fills vs the reference rules."""
    from farmlink.operations.bench.matcher_bench import run_matcher_bench

    _save_bench("matcher", run_matcher_bench(inputs=inputs, smoke=smoke, say=console.print), smoke)


@bench_app.command("restart")
def bench_restart(
    inputs: int = typer.Option(1_000_000, help="journal inputs of one product"),
    runs: int = typer.Option(3, help="restarts per case (best of)"),
    reuse: bool = typer.Option(False, "--reuse", help="keep the journal an earlier run of the same size left"),
    smoke: bool = SMOKE,
) -> None:
    """A restarted matching instance after INPUTS journal inputs of one product: seconds to its first new fill, from snapshots and without."""
    from farmlink.operations import infra
    from farmlink.operations.bench.restart_bench import run_restart_bench

    quiet_logs()
    infra.ensure_up(progress=lambda message: None)
    _save_bench(
        "restart",
        asyncio.run(run_restart_bench(settings().dsn, inputs=inputs, runs=runs, smoke=smoke, reuse=reuse, say=console.print)),
        smoke,
    )


@bench_app.command("publish")
def bench_publish(messages: int = typer.Option(100_000, help="messages per round"), smoke: bool = SMOKE) -> None:
    """farmlink's publish path (the outbox relay) vs raw aiokafka's producer, same messages and broker."""
    from farmlink.operations import infra
    from farmlink.operations.bench.publish_bench import run_publish_bench

    quiet_logs()
    infra.ensure_up(progress=lambda message: None)
    config = settings()
    _save_bench(
        "publish",
        asyncio.run(run_publish_bench(config.bootstrap, config.dsn, messages=messages, smoke=smoke, say=console.print)),
        smoke,
    )


@bench_app.command("e2e")
def bench_e2e(
    inputs: int = typer.Option(20_000, help="orders for the sustained-rate run"),
    rate: int = typer.Option(500, help="inputs/s for the latency run (issue 10: p99 <= 250 ms at 500/s)"),
    seconds: float = typer.Option(20.0, help="length of the latency run"),
    yes: bool = typer.Option(False, "--yes", help="do not ask before wiping farmlink data"),
    smoke: bool = SMOKE,
) -> None:
    """All services on the real broker and database: sustained input rate, and latency from input to fill at a steady rate."""
    from farmlink.operations.bench.e2e_bench import run_e2e_bench

    quiet_logs()
    say = wiped("The end-to-end bench", yes)
    processes.start_all(say=say)
    config = settings()
    figures = asyncio.run(
        run_e2e_bench(
            config.bootstrap, config.dsn, sustained_inputs=inputs, rate=rate, seconds=seconds, smoke=smoke, say=console.print
        )
    )
    _save_bench("e2e", figures, smoke)


@bench_app.command("scenario")
def bench_scenario(
    lines: int = typer.Option(3_000, help="about this many scenario lines"),
    keep: Path | None = typer.Option(None, "--keep", help="also write the generated scenario to this file"),
    yes: bool = typer.Option(False, "--yes", help="do not ask before wiping farmlink data"),
    smoke: bool = SMOKE,
) -> None:
    """`farmlink publish` of a generated scenario with every input type through all five services: lines/s,
    one outcome per line, fills equal to the offline rules per product, fen paid = household incomes."""
    from farmlink.operations.bench.scenario_bench import run_scenario_bench

    quiet_logs()
    say = wiped("The scenario bench", yes)
    processes.start_all(say=say)
    config = settings()
    figures = asyncio.run(
        run_scenario_bench(config.bootstrap, config.dsn, lines=lines, smoke=smoke, say=console.print, keep=keep)
    )
    _save_bench("scenario", figures, smoke)
