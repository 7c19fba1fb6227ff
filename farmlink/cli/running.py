"""`farmlink serve`, `up`, `down` and `status`: the services and the gateway as processes of this machine."""

import asyncio
import logging

import typer

from farmlink.cli.common import Format, console, print_rows, quiet_logs
from farmlink.operations import health, processes
from farmlink.operations.gateway import gateway_health, gateway_port


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
    from farmlink.operations import infra

    try:
        counts = processes.parse_instances(instances)
    except processes.InstancesError as error:
        console.print(str(error), style="red", highlight=False)
        raise typer.Exit(2)
    quiet_logs()
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


def down() -> None:
    """Stop the gateway and every instance of every service (Kafka and PostgreSQL keep running: `farmlink infra down` stops them)."""
    processes.stop_gateway(say=lambda message: console.print(message, style="dim"))
    processes.stop_all(say=lambda message: console.print(message, style="dim"))


def status(fmt: Format = typer.Option(Format.table, "--format", help="table, or one JSON object a line")) -> None:
    """Each instance of each service: pid, state (running, starting, stopped), whether its service is working
    (farmlink/operations/health.py: relay, schema, consumer group, progress) and log. Exit 1 when a service has none running
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
    print_rows(rows, fmt, "services")
    working = all(v in ("ok", "-") for v in verdicts.values())
    raise typer.Exit(0 if working and all(processes.running_count(s) for s in processes.SERVICES) else 1)


def _health_verdicts() -> dict[str, str]:
    """service -> "ok", "-" (not running) or the reasons it is not working; "unknown" when the check cannot run."""
    try:
        return {v.service: v.summary for v in asyncio.run(health.check())}
    except Exception as error:  # Kafka or PostgreSQL unreachable: say so instead of failing the status
        reason = f"unknown: {type(error).__name__}: {error}"[:200]
        return {s: reason if processes.running_count(s) else "-" for s in processes.SERVICES}
