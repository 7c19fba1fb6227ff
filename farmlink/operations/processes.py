"""Running the services as background processes: `farmlink up`, `farmlink down`, `farmlink status`, `farmlink serve`.

A service may run as several instances (`farmlink up --instances matching=2,settlement=2`): they
join the service's consumer groups, Kafka shares the partitions among them and moves them when
one stops or starts, and the event store's expected-version appends keep any two from writing
the same stream (docs/scaling.md). Each instance has its own pid, ready and log file under
FARMLINK_HOME: the first keeps the service's plain name (`matching.pid`, `logs/matching.log`), so a
single-instance setup looks as it always did; the others are numbered (`matching.2.pid`,
`logs/matching.2.log`).

Each instance serves Prometheus text on 127.0.0.1 (events/metrics.py) at `metrics_port`: FARMLINK_METRICS_PORT
(default 18100; 0 turns it off) + 10 x the service's place in SERVICES + the instance number - 1, so cooperative
18100, buyer 18110, market 18120, matching 18130 (matching.2: 18131), settlement 18140, pairing 18150, feeds 18160.
"""

import asyncio
import importlib
import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from farmlink.operations.instances import (  # what callers have always named as processes.<name>
    InstancesError as InstancesError,
    METRICS_PORT_ENV as METRICS_PORT_ENV,
    SERVICES as SERVICES,
    health_file as health_file,
    instance_name as instance_name,
    log_dir as log_dir,
    log_file as log_file,
    metrics_port as metrics_port,
    parse_instance_name as parse_instance_name,
    parse_instances as parse_instances,
    pid_file as pid_file,
    ready_file as ready_file,
    run_dir as run_dir,
    service_app as service_app,
    useful_instances as useful_instances,
)

READY_TIMEOUT_S = 60.0
HEARTBEAT_S = 2.0
STOP_TIMEOUT_S = 20.0


def serve(name: str, instance: int = 1) -> None:
    """Run one instance of a service in this process until SIGTERM or Ctrl-C; mark it ready once it consumes,
    and keep its health file fresh."""
    app = service_app(name)
    runtime = importlib.import_module(f"services.{name}.app").runtime
    try:
        runtime.metrics_port = metrics_port(name, instance)
    except ValueError as bad:  # a wrong FARMLINK_METRICS_PORT costs the metrics, not the service
        print(f"{instance_name(name, instance)}: serving no /metrics: {bad}", file=sys.stderr)
    ready = ready_file(instance_name(name, instance))
    health = health_file(instance_name(name, instance))
    beating: list[asyncio.Task] = []

    async def heartbeat() -> None:
        while True:
            relay = runtime.relay
            state = {
                "pid": os.getpid(),
                "at": time.time(),
                "relay_failure": getattr(relay, "failure", None),
                "relay_failure_at": getattr(relay, "failure_at", None),
                "metrics": getattr(runtime.metrics_server, "url", None),
            }
            draft = health.with_suffix(".health.tmp")
            draft.write_text(json.dumps(state))
            draft.replace(health)
            await asyncio.sleep(HEARTBEAT_S)

    @app.after_startup
    async def mark_ready() -> None:
        ready.write_text(str(os.getpid()))
        beating.append(asyncio.create_task(heartbeat()))

    try:
        # asyncio's own loop, not uvloop: under uvloop a write to a connection the broker closed raises
        # RuntimeError, which kills aiokafka's group coordination for good (a consumer that never consumes
        # again after a broker bounce, seen in the short chaos run); asyncio's transport does not raise there.
        asyncio.run(app.run())
    finally:
        ready.unlink(missing_ok=True)
        health.unlink(missing_ok=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    state = Path(f"/proc/{pid}/stat")
    try:
        return not state.read_text().split(") ")[-1].startswith("Z")
    except OSError:
        return True


def _reap(pid: int) -> None:
    """Collect an exited child of this process (a zombie otherwise); nothing for other processes."""
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass


def running_pid(name: str) -> int | None:
    """The pid of a running instance (`matching`, `matching.2`), or None."""
    path = pid_file(name)
    if not path.exists():
        return None
    try:
        pid = int(path.read_text().strip() or 0)
    except (OSError, ValueError):
        return None
    return pid if pid and _alive(pid) else None


@dataclass(frozen=True)
class Instance:
    """One instance of a service as `farmlink status` shows it."""

    service: str
    index: int
    pid: int | None
    ready: bool

    @property
    def name(self) -> str:
        return instance_name(self.service, self.index)

    @property
    def state(self) -> str:
        if self.pid is None:
            return "stopped"
        return "running" if self.ready else "starting"

    @property
    def log(self) -> Path:
        return log_file(self.name)


def known_instances(service: str | None = None) -> list[tuple[str, int]]:
    """(service, index) of every instance with a pid file, in service order then number; a service's first
    instance is always listed. Only `service`'s when given."""
    found: set[tuple[str, int]] = {(s, 1) for s in SERVICES if service in (None, s)}
    for path in run_dir().glob("*.pid"):
        parsed = parse_instance_name(path.name.removesuffix(".pid"))
        if parsed is not None and service in (None, parsed[0]):
            found.add(parsed)
    return sorted(found, key=lambda item: (SERVICES.index(item[0]), item[1]))


def instances(service: str | None = None) -> list[Instance]:
    """Every instance (running or with a pid file left), and each service's first instance even when stopped."""
    result = []
    for name, index in known_instances(service):
        pid = running_pid(instance_name(name, index))
        result.append(Instance(name, index, pid, pid is not None and ready_file(instance_name(name, index)).exists()))
    return result


def running_count(service: str) -> int:
    return sum(1 for instance in instances(service) if instance.pid is not None)


def launch(service: str, index: int = 1, say=print) -> int:
    """Start one instance in the background (not waiting for it to be ready); returns its pid."""
    name = instance_name(service, index)
    ready_file(name).unlink(missing_ok=True)
    command = [sys.executable, "-m", "farmlink.cli", "serve", service]
    if index != 1:
        command += ["--instance", str(index)]
    with log_file(name).open("ab") as log:
        process = subprocess.Popen(
            command,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
    pid_file(name).write_text(str(process.pid))
    say(f"started {name} (pid {process.pid}, log {log_file(name)})")
    return process.pid


def wait_ready(names: list[str], timeout: float = READY_TIMEOUT_S) -> None:
    """Wait until every named instance consumes; RuntimeError naming the log when one exits or is too slow."""
    deadline = time.monotonic() + timeout
    for name in names:
        while not ready_file(name).exists():
            if not running_pid(name):
                raise RuntimeError(f"service {name} exited during start; see {log_file(name)}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"service {name} not ready after {timeout:.0f} s; see {log_file(name)}")
            time.sleep(0.1)


def start_instance(service: str, index: int = 1, say=print, wait: bool = True) -> int:
    """Start one instance unless it runs already (then its pid); wait until it consumes unless `wait` is False."""
    name = instance_name(service, index)
    pid = running_pid(name)
    if pid is None:
        pid = launch(service, index, say)
    if wait:
        wait_ready([name])
    return pid


def start_all(say=print, instances: dict[str, int] | None = None) -> None:
    """Start every service that is not running, then wait until each started instance consumes.

    `instances` ({service: count}, see parse_instances) sets how many instances of the services it
    names run: missing ones are started, surplus ones (the highest numbers) stopped. A service it does
    not name gets its first instance started when that is not running; its other instances are left as they are."""
    counts = instances or {}
    for service, count in counts.items():
        instance_name(service)  # unknown service: ValueError
        if count < 1:
            raise ValueError(f"{service}: an instance count must be at least 1, not {count}")
    surplus = [
        instance_name(service, index)
        for service, count in counts.items()
        for _, index in known_instances(service)
        if index > count and running_pid(instance_name(service, index))
    ]
    if surplus:
        stop(surplus, say=say)
    started = []
    for service in SERVICES:
        for index in range(1, counts.get(service, 1) + 1):
            name = instance_name(service, index)
            if running_pid(name):
                continue
            launch(service, index, say)
            started.append(name)
    wait_ready(started)


def stop(names: list[str], say=print, timeout: float = STOP_TIMEOUT_S) -> None:
    """Stop the named instances together: SIGTERM to each, SIGKILL to any still alive after `timeout`."""
    signalled: dict[str, int] = {}
    for name in names:
        pid = running_pid(name)
        if pid is None:
            pid_file(name).unlink(missing_ok=True)
            ready_file(name).unlink(missing_ok=True)
            continue
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        signalled[name] = pid
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and any(_alive(pid) for pid in signalled.values()):
        for pid in signalled.values():
            _reap(pid)
        time.sleep(0.1)
    for name, pid in signalled.items():
        if _alive(pid):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            say(f"{name} did not stop within {timeout:.0f} s: killed")
        _reap(pid)
        pid_file(name).unlink(missing_ok=True)
        ready_file(name).unlink(missing_ok=True)
        say(f"stopped {name}")


def stop_instance(service: str, index: int = 1, say=print, timeout: float = STOP_TIMEOUT_S) -> None:
    """Stop one instance (SIGTERM, SIGKILL after `timeout`); the others of its service keep running."""
    stop([instance_name(service, index)], say=say, timeout=timeout)


def stop_all(say=print, timeout: float = STOP_TIMEOUT_S) -> None:
    """Stop every instance of every service, all at once (SIGTERM; SIGKILL after `timeout`)."""
    stop([instance_name(service, index) for service, index in known_instances()], say=say, timeout=timeout)


def service_status() -> dict[str, int | None]:
    """The pid of each service's first instance (None: not running); `instances()` lists them all."""
    return {name: running_pid(name) for name in SERVICES}


# -- the HTTP gateway (services/gateway): one process beside the services ------------------------
GATEWAY = "gateway"
"""`farmlink up` starts it on 127.0.0.1:FARMLINK_GATEWAY_PORT (18080); its pid, ready file and log
are named `gateway` like a service instance's. Chaos leaves it alone (it is not in SERVICES)."""


def start_gateway(say=print, wait: bool = True) -> int:
    """Start the gateway unless it runs already (`farmlink gateway` in the background); wait until it serves."""
    pid = running_pid(GATEWAY)
    if pid is None:
        ready_file(GATEWAY).unlink(missing_ok=True)
        with log_file(GATEWAY).open("ab") as log:
            process = subprocess.Popen(
                [sys.executable, "-m", "farmlink.cli", "gateway"],
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                env={**os.environ, "PYTHONUNBUFFERED": "1"},
            )
        pid_file(GATEWAY).write_text(str(process.pid))
        say(f"started {GATEWAY} (pid {process.pid}, log {log_file(GATEWAY)})")
        pid = process.pid
    if wait:
        wait_ready([GATEWAY])
    return pid


def stop_gateway(say=print, timeout: float = STOP_TIMEOUT_S) -> None:
    stop([GATEWAY], say=say, timeout=timeout)


def gateway_state() -> tuple[int | None, str]:
    """The gateway's pid (None: not running) and state (running, starting, stopped) for `farmlink status`."""
    pid = running_pid(GATEWAY)
    return pid, "stopped" if pid is None else ("running" if ready_file(GATEWAY).exists() else "starting")
