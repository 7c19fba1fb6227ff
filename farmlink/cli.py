"""`farmlink`: the command line for people — run the services, publish scenarios, read the market, run the demo."""

import asyncio
import json
import logging
import os
import sys
from enum import Enum
from pathlib import Path
from typing import Any

import asyncpg
import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from events.settings import settings
from farmlink import health, processes, reports
from farmlink.gateway_cli import gateway, gateway_health, gateway_port, sign_app
from farmlink.infra_cli import infra_app
from farmlink.rules_cli import rules_app
from farmlink.pairings_cli import pairings
from farmlink.problems_cli import problems
from farmlink.parties_cli import parties_app

# Piped output (CI logs, files) gets wide tables instead of rich's 80-column default.
console = Console(width=None if sys.stdout.isatty() else 160)
app = typer.Typer(
    help="farmlink: event-sourced supply and purchase matching for Yanhe county. "
    "Cooperatives publish harvests, buyers subscribe to offers, auditors replay the log.",
    no_args_is_help=True,
)
app.add_typer(infra_app, name="infra")
app.add_typer(rules_app, name="rules")
app.add_typer(parties_app, name="parties")
app.command()(pairings)
app.command()(problems)
contracts_app = typer.Typer(help="The public event contracts.", no_args_is_help=True)
app.add_typer(contracts_app, name="contracts")
app.command()(gateway)
app.add_typer(sign_app, name="sign")

DEMO_SCENARIO = Path(__file__).parent / "scenarios" / "yanhe-2020.jsonl"


class Format(str, Enum):
    table = "table"
    jsonl = "jsonl"


def _quiet_logs() -> None:
    logging.basicConfig(level=logging.WARNING)
    logging.getLogger("aiokafka").setLevel(logging.CRITICAL)


@contracts_app.command("export")
def contracts_export() -> None:
    """Write the JSON Schema of every event type and version under contracts/schemas/, and of the input
    messages, each input payload and the receipt under contracts/schemas/inputs/."""
    from contracts.schemas import BreakingSchemaChange, export

    try:
        written = export()
    except BreakingSchemaChange as refused:  # a published schema would break its readers: say why, write nothing
        console.print(str(refused), style="red", highlight=False, markup=False)
        raise typer.Exit(1) from None
    for path in written:
        console.print(f"wrote {path}")


@contracts_app.command("asyncapi")
def contracts_asyncapi(
    output: Path = typer.Option(
        Path(__file__).parents[1] / "contracts" / "asyncapi.yaml",
        "--output",
        "-o",
        help="where to write the document ('-' for standard output)",
    ),
) -> None:
    """Write the AsyncAPI 3.0 document of every topic, message and principal, generated from the code."""
    from farmlink.asyncapi import render

    text = render()
    if str(output) == "-":
        typer.echo(text, nl=False)
        return
    output.write_text(text, encoding="utf-8")
    console.print(f"wrote {output}")


@app.command()
def serve(
    name: str = typer.Argument(..., help=f"one of: {', '.join(processes.SERVICES)}"),
    instance: int = typer.Option(
        1,
        "--instance",
        min=1,
        help="which instance of the service this is (its ready file); "
        "instances of one service share its consumer groups and its partitions",
    ),
) -> None:
    """Run one instance of a service in the foreground until Ctrl-C or SIGTERM."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("aiokafka").setLevel(logging.WARNING)
    # Joins, revocations and "Setting newly assigned partitions ...": which instance holds which partitions.
    logging.getLogger("aiokafka.consumer.group_coordinator").setLevel(logging.INFO)
    processes.serve(name, instance)


@app.command()
def up(
    instances: str = typer.Option(
        "",
        "--instances",
        metavar="SERVICE=COUNT,...",
        help="run this many instances of the services named, e.g. matching=2,settlement=2 (they share the "
        "partitions; surplus instances are stopped); services not named run one instance. See docs/scaling.md",
    ),
) -> None:
    """Start Kafka and PostgreSQL (unless external ones are configured), every service and the HTTP gateway."""
    from farmlink import infra

    try:
        counts = processes.parse_instances(instances)
    except processes.InstancesError as error:
        console.print(str(error), style="red", highlight=False)
        raise typer.Exit(2)
    _quiet_logs()
    for service, count in counts.items():
        if count > (useful := processes.useful_instances(service)):
            console.print(
                f"{service}={count}: its busiest topic has {useful} partitions, so {count - useful} "
                f"instance(s) will stand idle as spares",
                style="yellow",
                highlight=False,
            )
    infra.ensure_up(progress=lambda message: console.print(message, style="dim", highlight=False))
    processes.start_all(say=lambda message: console.print(message, style="dim"), instances=counts)
    processes.start_gateway(say=lambda message: console.print(message, style="dim"))
    try:
        unhealthy = [v for v in asyncio.run(health.settled()) if not v.healthy]
    except Exception as error:  # the health probe itself could not run (e.g. an external broker's login may not describe groups)
        console.print(
            f"services started; their health could not be checked: {type(error).__name__}: {error}",
            style="yellow",
            highlight=False,
        )
        unhealthy = []
    for verdict in unhealthy:
        console.print(f"{verdict.service} is running but not working: {verdict.summary}", style="red", highlight=False)
    if unhealthy:
        raise typer.Exit(1)
    running = {service: processes.running_count(service) for service in processes.SERVICES}
    console.print(
        "farmlink is up: "
        + ", ".join(f"{s} x{n}" if n > 1 else s for s, n in running.items())
        + f"; gateway on http://127.0.0.1:{gateway_port()}"
    )


@app.command()
def down() -> None:
    """Stop the gateway and every instance of every service (Kafka and PostgreSQL keep running: `farmlink infra down` stops them)."""
    processes.stop_gateway(say=lambda message: console.print(message, style="dim"))
    processes.stop_all(say=lambda message: console.print(message, style="dim"))


@app.command()
def status(fmt: Format = typer.Option(Format.table, "--format", help="table, or one JSON object a line")) -> None:
    """Each instance of each service: pid, state (running, starting, stopped), whether its service is working
    (farmlink/health.py: relay, schema, consumer group, progress) and log. Exit 1 when a service has none running
    or one is not working."""
    verdicts = _health_verdicts()
    rows = [
        {
            "service": i.service,
            "instance": i.name,
            "pid": i.pid,
            "state": i.state,
            "health": verdicts.get(i.service, "-"),
            "log": str(i.log),
        }
        for i in processes.instances()
    ]
    gateway_pid, gateway_state = processes.gateway_state()
    rows.append(
        {
            "service": "gateway",
            "instance": "gateway",
            "pid": gateway_pid,
            "state": gateway_state,
            "health": gateway_health(gateway_pid),
            "log": str(processes.log_file(processes.GATEWAY)),
        }
    )
    _print_rows(rows, fmt, "services")
    working = all(v in ("ok", "-") for v in verdicts.values())
    raise typer.Exit(0 if working and all(processes.running_count(s) for s in processes.SERVICES) else 1)


def _health_verdicts() -> dict[str, str]:
    """service -> "ok", "-" (not running) or the reasons it is not working; "unknown" when the check cannot run."""
    try:
        return {v.service: v.summary for v in asyncio.run(health.check())}
    except Exception as error:  # Kafka or PostgreSQL unreachable: say so instead of failing the status
        reason = f"unknown: {type(error).__name__}: {error}"[:200]
        return {s: reason if processes.running_count(s) else "-" for s in processes.SERVICES}


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
    conn = await asyncpg.connect(settings().auditor_dsn)  # read-only: the reports never write
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


class WhatIfFormat(str, Enum):
    table = "table"
    json = "json"
    jsonl = "jsonl"
    csv = "csv"


@app.command("what-if")
def what_if(
    floor: list[str] = typer.Option([], "--floor", metavar="PRODUCT|COMMITMENT=FEN", help="the floor price in fen per unit"),
    cap: list[str] = typer.Option([], "--cap", metavar="PRODUCT|COMMITMENT=QTY", help="the cap quantity ('none': no cap)"),
    per_mu: list[str] = typer.Option(
        [], "--per-mu", metavar="PRODUCT|COMMITMENT=QTY", help="the most a cooperative sells per planted mu ('none': no limit)"
    ),
    valid_to: list[str] = typer.Option(
        [], "--valid-to", metavar="PRODUCT|COMMITMENT=YYYY-MM-DD", help="the commitment's last day"
    ),
    fmt: WhatIfFormat = typer.Option(
        WhatIfFormat.table, "--format", help="table for people; json (one object), jsonl (a row a line) or csv for machines"
    ),
    changed_only: bool = typer.Option(False, "--changed-only", help="list only households and villages whose figures change"),
    schema_prefix: str = typer.Option(
        "",
        "--schema-prefix",
        help="read schemas named <prefix><service> (the auditor's role "
        "must be granted reading them, as migrations with readers do)",
    ),
) -> None:
    """Replay the recorded journal with changed commitment terms through the same matcher and print, per household
    and village, what would have been earned against what was. Nothing is written.

    Example: farmlink what-if --floor oil_tea_fruit=460

    Each option is repeatable, as KEY=VALUE: KEY a product (all its commitments) or a commitment id (that one).
    `commitment:ID` names a commitment whose id is also a product's name; a commitment's own term wins over its product's.
    Without options: the identity replay, which must equal the log (exit 1 if it does not: run `farmlink audit`).
    Exit 2 for a term that names nothing in the log or that the commitment contract refuses.
    """
    from events.migrations import check_schema_name
    from farmlink.audit.parallel import no_cyclic_gc
    from farmlink.whatif import ChangeError, Changes, as_csv, as_json, as_jsonl, load_log, print_tables, what_if as replay_what_if

    try:
        changes = Changes.parse(floor, cap, per_mu, valid_to)
    except ChangeError as error:
        console.print(str(error), style="red", highlight=False, markup=False)
        raise typer.Exit(2) from error
    try:
        check_schema_name(f"{schema_prefix}matching")
    except ValueError as error:
        console.print(f"--schema-prefix {schema_prefix}: {error}", style="red", highlight=False, markup=False)
        raise typer.Exit(2) from error
    _quiet_logs()
    config = settings()
    with no_cyclic_gc():
        try:
            log = asyncio.run(load_log(config.auditor_dsn, schema_prefix))
        except asyncpg.InsufficientPrivilegeError as error:
            console.print(
                f"--schema-prefix {schema_prefix!r}: {config.role_of('auditor')} may not read it: {error}",
                style="red",
                highlight=False,
                markup=False,
            )
            raise typer.Exit(2) from error
        try:
            result = replay_what_if(log, changes)
        except ChangeError as error:
            console.print(str(error), style="red", highlight=False, markup=False)
            raise typer.Exit(2) from error
    if fmt is WhatIfFormat.table:
        print_tables(result, console, changed_only)
    elif fmt is WhatIfFormat.json:
        typer.echo(json.dumps(as_json(result, changed_only), ensure_ascii=False))
    elif fmt is WhatIfFormat.jsonl:
        typer.echo("\n".join(as_jsonl(result, changed_only)))
    else:
        typer.echo(as_csv(result, changed_only), nl=False)

    def say(text: str, style: str) -> None:
        if fmt is WhatIfFormat.table:
            console.print(text, style=style, highlight=False)
        else:  # machines read stdout
            typer.echo(text, err=True)

    say(
        f"nothing was written: the log was read as {config.role_of('auditor')} in read-only transactions, the replay ran in memory",
        "dim",
    )
    if changes.empty and not result.identical:
        say("the identity replay differs from the recorded fills: run `farmlink audit`", "red")
        raise typer.Exit(1)


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
        processes.stop_gateway(say=say)
        processes.stop_all(say=say)
        infra.reset_data(progress=say)
    processes.start_all(say=say)
    processes.start_gateway(say=say)
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
    _demo_pairing_office(say)
    console.print(
        f"demo: {summary.accepted} lines accepted, {len(summary.rejected)} rejected, {len(fills)} fills. "
        "Services keep running: `farmlink down` stops them, `farmlink infra down` stops Kafka and PostgreSQL."
    )


def _demo_pairing_office(say: Any) -> None:
    """The pairing office's side of the demo: pairings and projects, the supervision ledger, and one what-if (the
    floor of Yuping's oil-tea promise at 4.60 yuan instead of 4.00: what the county asks before renewing it)."""
    from datetime import date

    from farmlink.pairings_cli import read as read_pairings
    from farmlink.problems_cli import read_ledger
    from farmlink.whatif import Changes, load_log, print_tables, what_if

    pairing_view = asyncio.run(read_pairings(date(2020, 12, 31)))
    _print_rows(
        [{k: v for k, v in row.items() if k != "support_by_kind"} for row in pairing_view["pairings"]],
        Format.table,
        "pairings: support delivered (fen) and the helped area",
    )
    _print_rows(pairing_view["projects"], Format.table, "projects: milestones and state as of 2020-12-31")
    ledger = asyncio.run(read_ledger())
    _print_rows(
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


def _wiped(who: str, yes: bool):
    """Ask (unless --yes), bring the infrastructure up, stop the services and wipe farmlink's data; the progress printer."""
    from farmlink import infra

    if not yes:
        typer.confirm(f"{who} wipes all farmlink data (topics and schemas). Go on?", abort=True)
    say = lambda message: console.print(message, style="dim", highlight=False)  # noqa: E731
    infra.ensure_up(progress=say)
    processes.stop_gateway(say=say)
    processes.stop_all(say=say)
    infra.reset_data(progress=say)
    return say


@app.command()
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
    FAULT_SECONDS, as does the full WAL volume (see farmlink/chaos/).
    """
    from farmlink.chaos import NETWORK_FAULTS, FaultOptions, ask_for_fault_listener, run_chaos

    _quiet_logs()
    config = settings()
    if config.uses_external_kafka or config.uses_external_database:
        console.print(
            "farmlink chaos kills the local broker and server; it refuses to run against external ones "
            "(unset KAFKA_BOOTSTRAP_SERVERS and DATABASE_URL).",
            style="red",
        )
        raise typer.Exit(2)
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
    if network:
        ask_for_fault_listener(config)  # a broker `_wiped` starts has the listener already: no restart for it
    _wiped("The chaos run", yes)
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


class Source(str, Enum):
    postgres = "postgres"
    kafka = "kafka"


class ReportLang(str, Enum):
    en = "en"
    zh = "zh"


audit_app = typer.Typer(help="Replay and check the whole log; digests a third party can hold.")
app.add_typer(audit_app, name="audit")
AUDITOR_KEY = typer.Option(
    None,
    "--key",
    help="the auditor's own Ed25519 key file (default $FARMLINK_HOME/auditor.key, made when "
    "missing): signs checkpoints and checks them",
)


def _auditor_key(path: Path | None):
    from farmlink.audit.checkpoint import CheckpointError, load_or_create_key

    try:
        return load_or_create_key(path or settings().home / "auditor.key")
    except CheckpointError as error:
        console.print(f"[red]{error}[/]", highlight=False)
        raise typer.Exit(2) from error


@audit_app.callback(invoke_without_command=True)
def audit(
    ctx: typer.Context,
    source: Source = typer.Option(
        Source.postgres, "--source", help="read the log from PostgreSQL or from the Kafka topics (offset 0)"
    ),
    as_of: int | None = typer.Option(None, "--as-of", help="also show the market as known at this matching-log global position"),
    as_json: bool = typer.Option(
        False,
        "--json",
        help="print the result as one JSON object for machines (format version 1: "
        "contracts/reports/audit-findings.v1.json; every finding with its stable code)",
    ),
    report: Path | None = typer.Option(
        None, "--report", help="write a self-contained HTML report (summaries, top lists, charts) to this file"
    ),
    lang: ReportLang = typer.Option(ReportLang.en, "--lang", help="the report's language: en, or zh (Chinese)"),
    export: Path | None = typer.Option(
        None,
        "--export",
        help="write the full ledgers (every fill, household, commitment, village, finding) as CSV and JSON into this directory",
    ),
    reconcile_kafka: bool = typer.Option(
        True, "--reconcile/--no-reconcile", help="check every stored event reached Kafka exactly once"
    ),
    since: Path | None = typer.Option(
        None,
        "--since",
        help="an incremental audit: check the log up to this checkpoint against it, verify and re-execute only what came after",
    ),
    checkpoint: Path | None = typer.Option(
        None,
        "--checkpoint",
        help="after a clean audit, write a checkpoint signed with the auditor's key to this file (for a later --since)",
    ),
    key: Path | None = AUDITOR_KEY,
    workers: int | None = typer.Option(
        None, "--workers", min=1, help="worker processes for the costly checks (default: one per core)"
    ),
) -> None:
    """Replay the whole log, verify hash chains, re-execute the matcher, check invariants, reconcile with Kafka.

    Exit 0 when clean, 1 with the list of findings otherwise (2 when a checkpoint cannot be used).
    """
    if ctx.invoked_subcommand is not None:
        return
    from farmlink.audit.checkpoint import Checkpoint, CheckpointError
    from farmlink.audit.run import audit as run_audit, checkpoint_of

    _quiet_logs()
    config = settings()
    auditor_key = _auditor_key(key) if since is not None or checkpoint is not None else None
    start = None
    if since is not None:
        try:
            start = Checkpoint.read(since, auditor_key)
        except CheckpointError as error:
            console.print(f"[red]{error}[/]", highlight=False)
            raise typer.Exit(2) from error
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=Console(stderr=True),
        disable=as_json,
    ) as bar:

        def step(name: str, total: int):
            task = bar.add_task(name, total=total)
            return lambda n: bar.advance(task, n)

        result = asyncio.run(
            run_audit(
                config.bootstrap,
                config.auditor_dsn,
                source.value,
                reconcile_kafka,
                step,
                workers=workers,
                since=start,
                want_books=checkpoint is not None,
            )
        )
    if checkpoint is not None:
        if result.clean:
            checkpoint_of(result, auditor_key).write(checkpoint)
            console.print(f"checkpoint written to {checkpoint}", style="dim", highlight=False)
        else:
            console.print(
                f"no checkpoint written: a checkpoint vouches only for a clean log ({len(result.findings)} findings)",
                style="red",
                highlight=False,
            )
    as_of_view = _as_of(result, as_of) if as_of is not None else None
    if report is not None or export is not None:
        _write_report(result, report, lang.value, export)
    if as_json:
        from farmlink.audit.output import audit_output

        typer.echo(json.dumps(audit_output(result, as_of_view), ensure_ascii=False))
    else:
        _print_audit(result, as_of_view, report)
    raise typer.Exit(0 if result.clean else 1)


def _as_of(result, position: int) -> dict[str, Any]:
    from farmlink.audit.asof import market_as_of
    from matcher.output import quantity_text

    view = market_as_of(result.log, position)
    return {
        "position": view.position,
        "products": {
            product: {
                "journal_seq": p.journal_seq,
                "resting_lots": [
                    {"lot_id": lot.lot_id, "quantity_left": quantity_text(lot.quantity_left)} for lot in p.resting_lots
                ],
                "open_outlets": [
                    {
                        "outlet_kind": o.outlet_kind,
                        "outlet_id": o.outlet_id,
                        "quantity_left": None if o.quantity_left is None else quantity_text(o.quantity_left),
                    }
                    for o in p.open_outlets
                ],
                "fills_so_far": len(p.fills),
            }
            for product, p in sorted(view.products.items())
        },
    }


def _write_report(result, path: Path | None, lang: str = "en", export: Path | None = None) -> None:
    from farmlink.audit.report import write_audit_report

    written = write_audit_report(result, path, lang, export)
    if export is not None:
        typer.echo(
            f"ledgers written to {export}: " + ", ".join(f"{name} ({rows:,} rows)" for name, rows in written.items()), err=True
        )


def _print_audit(result, as_of_view, report: Path | None) -> None:
    summary = result.summary()
    if result.clean:
        console.print(
            f"[green]audit clean[/]: {summary['events_audited']} events from {summary['source']}, "
            f"{summary['journal_inputs']} journal inputs re-executed, {summary['fills']} fills identical; "
            f"reconciled with Kafka: {'yes' if result.reconciled else 'no'}; state hash {summary['state_hash'][:16]}"
        )
    else:
        console.print(f"[red]{len(result.findings)} findings[/] in {summary['events_audited']} events from {summary['source']}:")
        for finding in result.findings:
            console.print(f"  {finding}", highlight=False, markup=False)
    if as_of_view is not None:
        for product, view in as_of_view["products"].items():
            console.print(
                f"as of position {as_of_view['position']}, {product}: journal input {view['journal_seq']}, "
                f"{len(view['resting_lots'])} lots resting, {len(view['open_outlets'])} outlets open, "
                f"{view['fills_so_far']} fills so far"
            )
            for lot in view["resting_lots"]:
                console.print(f"    lot {lot['lot_id']}: {lot['quantity_left']} left")
            for outlet in view["open_outlets"]:
                left = outlet["quantity_left"] or "no cap"
                console.print(f"    {outlet['outlet_kind']} {outlet['outlet_id']}: {left} left")
    if report is not None:
        console.print(f"report written to {report}")


@audit_app.command("digest")
def audit_digest(
    as_json: bool = typer.Option(False, "--json", help="print the digest only (one line of JSON), for a third party to keep"),
) -> None:
    """Print a compact digest of the whole log: a Merkle root over every stream's chain head, with the last position of each schema."""
    from farmlink.audit.ledger import digest_of
    from farmlink.audit.log import load_from_postgres
    from farmlink.audit.parallel import no_cyclic_gc

    _quiet_logs()
    with no_cyclic_gc():
        digest = digest_of(asyncio.run(load_from_postgres(settings().auditor_dsn)))
    if as_json:
        typer.echo(digest.text())
        return
    console.print(f"digest of {digest.events} events in {digest.streams} streams, Merkle root {digest.root}", highlight=False)
    typer.echo(digest.text())


@audit_app.command("verify-digest")
def audit_verify_digest(
    digest_text: str = typer.Argument(..., metavar="DIGEST", help="the digest's JSON text, or a file holding it"),
    event: str | None = typer.Option(
        None, "--event", help="print the proof path of this event id (default: the digest's last matching event)"
    ),
    as_json: bool = typer.Option(False, "--json", help="print findings and the proof as one JSON object"),
) -> None:
    """Prove the current log extends DIGEST: every chain up to the digest's positions holds and its heads give
    the digest's Merkle root (events after it are no finding); print the proof path for one event.
    Exit 0 when it does, 1 with findings, 2 for a digest that cannot be read."""
    from farmlink.audit.checks import check_hash_chains
    from farmlink.audit.ledger import Digest, extends, proof_for
    from farmlink.audit.log import load_from_postgres
    from farmlink.audit.parallel import no_cyclic_gc

    _quiet_logs()
    text = Path(digest_text).read_text(encoding="utf-8") if Path(digest_text).is_file() else digest_text
    try:
        digest = Digest.parse(text.strip())
    except ValueError as error:
        console.print(f"[red]{error}[/]", highlight=False)
        raise typer.Exit(2) from error
    with no_cyclic_gc():
        log = asyncio.run(load_from_postgres(settings().auditor_dsn))
        findings = extends(log, digest, check_hash_chains(log))
        if event is None:
            within = [r for r in log.by_schema.get("matching", []) if r.global_position <= digest.positions.get("matching", 0)]
            event = within[-1].event_id if within else None
        proof = None
        if event is not None:
            try:
                proof = proof_for(log, digest, event)
            except KeyError as error:
                console.print(f"[red]{error.args[0]}[/]", highlight=False)
                raise typer.Exit(2) from error
    if as_json:
        typer.echo(
            json.dumps({"extends": not findings, "findings": [f.as_dict() for f in findings], "proof": proof}, ensure_ascii=False)
        )
    else:
        if findings:
            console.print(f"[red]the log does not extend the digest[/]: {len(findings)} findings")
            for finding in findings:
                console.print(f"  {finding}", highlight=False, markup=False)
        else:
            console.print(
                f"[green]the log extends the digest[/]: {digest.events} events up to {digest.positions} unchanged, "
                f"{log.count() - digest.events} after it"
            )
        if proof is not None:
            _print_proof(proof)
    raise typer.Exit(1 if findings else 0)


def _print_proof(proof: dict[str, Any]) -> None:
    e, head = proof["event"], proof["head"]
    console.print(
        f"proof for event {e['event_id']} ({e['schema']}/{e['stream_id']}@{e['stream_version']}, position "
        f"{e['global_position']}), hash {e['hash']}",
        highlight=False,
    )
    console.print(
        f"  {len(proof['chain_to_head'])} chain links to the stream's head as of the digest: version "
        f"{head['stream_version']} at position {head['global_position']}, hash {head['hash']}",
        highlight=False,
    )
    console.print(f"  leaf {proof['leaf']}", highlight=False)
    for step in proof["merkle_path"]:
        console.print(f"  + {step['side']:<5} {step['hash']}", highlight=False)
    console.print(
        f"  = root {proof['root']} ({'matches' if proof['matches_digest'] else 'does NOT match'} the digest)", highlight=False
    )


bench_app = typer.Typer(help="Benchmarks that print figures; --smoke runs a short version (CI).", no_args_is_help=True)
app.add_typer(bench_app, name="bench")
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
) -> None:
    """Audit a synthetic log of EVENTS events from PostgreSQL, re-execution included; print the figures."""
    from farmlink import infra
    from farmlink.bench.audit_bench import run_audit_bench

    _quiet_logs()
    infra.ensure_up(progress=lambda message: None)
    config = settings()
    figures = asyncio.run(
        run_audit_bench(
            config.bootstrap, config.dsn, 20_000 if smoke else events, say=console.print, reuse=reuse, workers=workers
        )
    )
    _save_bench("audit", figures, smoke)
    if figures["findings"]:
        console.print("[red]the synthetic log did not audit clean[/]")
        raise typer.Exit(1)


SMOKE = typer.Option(False, "--smoke", help="a short run that only proves the benchmark works (what CI runs)")


@bench_app.command("append")
def bench_append(seconds: float = typer.Option(10.0, help="seconds per case and side"), smoke: bool = SMOKE) -> None:
    """Our event store vs eventsourcing's PostgreSQL recorder: 1 and 4 writers one event per transaction, 100-event batches."""
    from farmlink import infra
    from farmlink.bench.store_bench import run_append_bench

    _quiet_logs()
    infra.ensure_up(progress=lambda message: None)
    _save_bench("append", asyncio.run(run_append_bench(settings().dsn, seconds=seconds, smoke=smoke, say=console.print)), smoke)


@bench_app.command("replay")
def bench_replay(events: int = typer.Option(200_000, help="events in each log"), smoke: bool = SMOKE) -> None:
    """Read the whole log and fold it into a projection, vs eventsourcing's select_notifications paging."""
    from farmlink import infra
    from farmlink.bench.store_bench import run_replay_bench

    _quiet_logs()
    infra.ensure_up(progress=lambda message: None)
    _save_bench("replay", asyncio.run(run_replay_bench(settings().dsn, events=events, smoke=smoke, say=console.print)), smoke)


@bench_app.command("matcher")
def bench_matcher(inputs: int = typer.Option(1_000_000, help="journal inputs"), smoke: bool = SMOKE) -> None:
    """The pure matcher on a synthetic journal: inputs/s, memory per resting lot or outlet, fills vs the reference rules."""
    from farmlink.bench.matcher_bench import run_matcher_bench

    _save_bench("matcher", run_matcher_bench(inputs=inputs, smoke=smoke, say=console.print), smoke)


@bench_app.command("restart")
def bench_restart(
    inputs: int = typer.Option(1_000_000, help="journal inputs of one product"),
    runs: int = typer.Option(3, help="restarts per case (best of)"),
    reuse: bool = typer.Option(False, "--reuse", help="keep the journal an earlier run of the same size left"),
    smoke: bool = SMOKE,
) -> None:
    """A restarted matching instance after INPUTS journal inputs of one product: seconds to its first new fill, from snapshots and without."""
    from farmlink import infra
    from farmlink.bench.restart_bench import run_restart_bench

    _quiet_logs()
    infra.ensure_up(progress=lambda message: None)
    _save_bench(
        "restart",
        asyncio.run(run_restart_bench(settings().dsn, inputs=inputs, runs=runs, smoke=smoke, reuse=reuse, say=console.print)),
        smoke,
    )


@bench_app.command("publish")
def bench_publish(messages: int = typer.Option(100_000, help="messages per round"), smoke: bool = SMOKE) -> None:
    """farmlink's publish path (the outbox relay) vs raw aiokafka's producer, same messages and broker."""
    from farmlink import infra
    from farmlink.bench.publish_bench import run_publish_bench

    _quiet_logs()
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
    from farmlink.bench.e2e_bench import run_e2e_bench

    _quiet_logs()
    say = _wiped("The end-to-end bench", yes)
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
    from farmlink.bench.scenario_bench import run_scenario_bench

    _quiet_logs()
    say = _wiped("The scenario bench", yes)
    processes.start_all(say=say)
    config = settings()
    figures = asyncio.run(
        run_scenario_bench(config.bootstrap, config.dsn, lines=lines, smoke=smoke, say=console.print, keep=keep)
    )
    _save_bench("scenario", figures, smoke)


if __name__ == "__main__":
    app()
