"""`farmlink infra`: start, inspect, stop and wipe the local Kafka broker and PostgreSQL server."""

from __future__ import annotations

import logging
import time

import typer
from rich.console import Console
from rich.table import Table

from farmlink import infra

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
        table.add_row("  topics", f"{st.topic_count} ({len(infra.TOPICS) - len(st.missing_topics)}"
                                  f"/{len(infra.TOPICS)} farmlink topics{missing})")
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

    Works on external Kafka/PostgreSQL too. Stop the farmlink services first.
    """
    st = infra.status()
    if not yes:
        typer.confirm(
            f"Delete every message in the {len(infra.TOPICS)} farmlink topics on {st.bootstrap} and drop every "
            f"schema (except public) in {st.dsn_display}?",
            abort=True,
        )
    try:
        infra.reset_data(progress=_say)
    except infra.InfraError as exc:
        raise _fail(exc) from None
    console.print("[bold green]farmlink data wiped.[/]")
