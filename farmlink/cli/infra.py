"""`farmlink infra`: start, inspect, stop and wipe the local Kafka broker and PostgreSQL server."""

from __future__ import annotations

import logging
import time

import typer
from rich.console import Console
from rich.table import Table

from farmlink.operations import infra, processes

console = Console()

infra_app = typer.Typer(
    help=(
        "Local Kafka and PostgreSQL for development, without Docker. State lives in FARMLINK_HOME "
        "(default .farmlink/). Set KAFKA_BOOTSTRAP_SERVERS / DATABASE_URL to use external ones instead."
    ),
    no_args_is_help=True,
)


@infra_app.callback()
def _quiet_client_logs() -> None:
    # aiokafka logs every refused connection while the broker boots; the launcher reports progress itself.
    logging.getLogger("aiokafka").setLevel(logging.CRITICAL)


def _say(message: str) -> None:
    style = "yellow" if message.startswith("warning") else "dim"
    console.print(message, style=style, highlight=False)


def _fail(exc: Exception) -> typer.Exit:
    console.print(f"[bold red]error:[/] {exc}", highlight=False)
    return typer.Exit(1)


def _status_table(st: infra.InfraStatus) -> Table:
    table = Table.grid(padding=(0, 2))
    table.add_column(style="bold")
    table.add_column()
    kafka_where = "external" if st.kafka_external else f"local, pid {st.kafka_pid}" if st.kafka_pid else "local"
    table.add_row("Kafka", "[green]running[/]" if st.kafka_running else "[red]stopped[/]")
    table.add_row("  version", st.kafka_version or "unknown")
    table.add_row("  cluster id", st.cluster_id or "-")
    table.add_row("  bootstrap", f"{st.bootstrap} ({kafka_where})")
    if st.topic_count is not None:
        missing = f", missing: {', '.join(st.missing_topics)}" if st.missing_topics else ""
        table.add_row(
            "  topics",
            f"{st.topic_count} ({len(infra.TOPICS) - len(st.missing_topics)}/{len(infra.TOPICS)} farmlink topics{missing})",
        )
    if st.kafka_error:
        table.add_row("  problem", st.kafka_error)
    table.add_row("PostgreSQL", "[green]reachable[/]" if st.postgres_reachable else "[red]not reachable[/]")
    table.add_row("  version", st.postgres_version or "-")
    table.add_row("  dsn", f"{st.dsn_display} ({'external' if st.postgres_external else 'local'})")
    if st.postgres_error:
        table.add_row("  problem", st.postgres_error)
    if not (st.kafka_external and st.postgres_external):
        table.add_row("Home", str(st.farmlink_home))
    return table


@infra_app.command()
def up() -> None:
    """Start Kafka and PostgreSQL if they are not running, wait until ready, create topics and the database.

    Idempotent: when everything already runs it only checks, and returns in about a second.
    The first run fetches Kafka's jars with Maven (~30 s).
    """
    started = time.monotonic()
    try:
        infra.ensure_up(progress=_say)
    except infra.InfraError as exc:
        raise _fail(exc) from None
    console.print(f"[bold green]Infrastructure up[/] in {time.monotonic() - started:.1f} s.")
    console.print(_status_table(infra.status()))


@infra_app.command()
def status() -> None:
    """Show whether Kafka and PostgreSQL answer, with versions, cluster id, topics and DSN.

    Exit code 0 when both are reachable, 1 otherwise.
    """
    st = infra.status()
    console.print(_status_table(st))
    raise typer.Exit(0 if st.ok else 1)


@infra_app.command()
def down() -> None:
    """Stop the local Kafka (SIGTERM, waits for a clean shutdown) and PostgreSQL (fast shutdown).

    Data stays in FARMLINK_HOME. External Kafka/PostgreSQL are never stopped.
    """
    try:
        infra.down(progress=_say)
    except infra.InfraError as exc:
        raise _fail(exc) from None


@infra_app.command()
def reset(
    yes: bool = typer.Option(False, "--yes", "-y", help="Do not ask for confirmation."),
) -> None:
    """Wipe all farmlink data: delete and re-create every farmlink topic, drop every schema except public.

    Stops this home's running services and gateway first (wiping under them would leave them failing
    forever), and refuses while any other consumer is still in a farmlink consumer group (services run
    elsewhere), naming the groups. Works on external Kafka/PostgreSQL too.
    """
    st = infra.status()
    running = [i.name for i in processes.instances() if i.pid is not None]
    if processes.gateway_state()[0] is not None:
        running.append(processes.GATEWAY)
    if not yes:
        stopping = f" The running {', '.join(running)} will be stopped first." if running else ""
        typer.confirm(
            f"Delete every message in the {len(infra.TOPICS)} farmlink topics on {st.bootstrap} and drop every "
            f"schema (except public) in {st.dsn_display}?{stopping}",
            abort=True,
        )
    if running:
        processes.stop_gateway(say=_say)
        processes.stop_all(say=_say)
        _say(f"Stopped {', '.join(running)} before the wipe; `farmlink up` starts them again.")
    try:
        busy = _busy_groups()
    except Exception as exc:  # noqa: BLE001 - Kafka unreachable: reset_data says so below
        logging.getLogger(__name__).debug("could not describe consumer groups: %s", exc)
        busy = {}
    if busy:
        console.print(
            "[red]Refusing to wipe: consumers are still in farmlink's groups "
            + ", ".join(f"{group} ({n} member{'s' if n > 1 else ''})" for group, n in busy.items())
            + ". Stop those services first (they run outside this farmlink home).[/]",
            highlight=False,
        )
        raise typer.Exit(1)
    try:
        infra.reset_data(progress=_say)
    except infra.InfraError as exc:
        raise _fail(exc) from None
    console.print("[bold green]farmlink data wiped.[/]")


def _busy_groups() -> dict[str, int]:
    """farmlink consumer groups that still have members, and how many."""
    import asyncio

    from events.access import CONSUMER_GROUPS
    from events.settings import settings
    from farmlink.operations.health import members_of

    members = asyncio.run(members_of(settings(), CONSUMER_GROUPS))
    return {group: n for group, n in members.items() if n}
