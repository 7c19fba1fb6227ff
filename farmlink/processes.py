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
import re
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from contracts.topics import RELAY_CHECKPOINTS, TOPICS
from events.access import BY_NAME, service_principal
from events.settings import settings

SERVICES = ("cooperative", "buyer", "market", "matching", "settlement", "pairing", "feeds")
READY_TIMEOUT_S = 60.0
HEARTBEAT_S = 2.0
STOP_TIMEOUT_S = 20.0
METRICS_PORT_ENV = "FARMLINK_METRICS_PORT"
METRICS_PORT_DEFAULT = 18100
METRICS_PORTS_PER_SERVICE = 10
"""Instances beyond the tenth of a service serve no metrics (their ports would be the next service's)."""

_INSTANCE_NAME = re.compile(r"^(?P<service>[a-z]+)(?:\.(?P<index>[1-9][0-9]*))?$")


class InstancesError(ValueError):
    """An --instances argument farmlink cannot use; the message names the bad part."""


def run_dir() -> Path:
    path = settings().farmlink_home.resolve() / "run"
    path.mkdir(parents=True, exist_ok=True)
    return path


def log_dir() -> Path:
    path = settings().farmlink_home.resolve() / "logs"
    path.mkdir(parents=True, exist_ok=True)
    return path


def instance_name(service: str, index: int = 1) -> str:
    """The name of a service's instance: the plain service name for the first, `service.N` for the N-th."""
    if service not in SERVICES:
        raise ValueError(f"unknown service {service!r}; known: {', '.join(SERVICES)}")
    if index < 1:
        raise ValueError(f"instance numbers start at 1, not {index}")
    return service if index == 1 else f"{service}.{index}"


def parse_instance_name(name: str) -> tuple[str, int] | None:
    """(service, index) of an instance name (`matching` -> (matching, 1), `matching.2` -> (matching, 2)); None if it is none."""
    match = _INSTANCE_NAME.match(name)
    if match is None or match["service"] not in SERVICES:
        return None
    index = int(match["index"] or 1)
    if match["index"] == "1":  # `matching.1` is spelled `matching`
        return None
    return match["service"], index


def metrics_base() -> int:
    """FARMLINK_METRICS_PORT, the first port of the scheme (METRICS_PORT_DEFAULT when unset; 0: no metrics)."""
    text = os.environ.get(METRICS_PORT_ENV, "").strip()
    if not text:
        return METRICS_PORT_DEFAULT
    highest = 65535 - METRICS_PORTS_PER_SERVICE * len(SERVICES) + 1
    if not text.isdigit() or not (int(text) == 0 or 1024 <= int(text) <= highest):
        raise ValueError(
            f"{METRICS_PORT_ENV}={text!r}: a port from 1024 to {highest} (the first of "
            f"{METRICS_PORTS_PER_SERVICE * len(SERVICES)}), or 0 for no metrics"
        )
    return int(text)


def metrics_port(service: str, index: int = 1, base: int | None = None) -> int | None:
    """The port an instance serves /metrics on: base + 10 x the service's place in SERVICES + index - 1
    (cooperative 18100, matching.2 18131); None when metrics are off (base 0) or past the tenth instance."""
    instance_name(service, index)  # an unknown service or instance number: ValueError
    base = metrics_base() if base is None else base
    if not base or index > METRICS_PORTS_PER_SERVICE:
        return None
    return base + METRICS_PORTS_PER_SERVICE * SERVICES.index(service) + index - 1


def pid_file(name: str) -> Path:
    """The pid file of an instance (`matching`, `matching.2`)."""
    return run_dir() / f"{name}.pid"


def ready_file(name: str) -> Path:
    """Written by an instance once it consumes (`matching.ready`, `matching.2.ready`)."""
    return run_dir() / f"{name}.ready"


def log_file(name: str) -> Path:
    """The log of an instance (`logs/matching.log`, `logs/matching.2.log`)."""
    return log_dir() / f"{name}.log"


def parse_instances(spec: str | None) -> dict[str, int]:
    """`matching=2,settlement=2` -> {"matching": 2, "settlement": 2}; an empty spec -> {}.

    Raises InstancesError naming the bad part: a part that is not SERVICE=COUNT, an unknown
    service, a count that is not a whole number of at least 1, a service named twice."""
    counts: dict[str, int] = {}
    if spec is None or not spec.strip():
        return counts
    for raw in spec.split(","):
        part = raw.strip()
        if not part:
            raise InstancesError(
                f"--instances {spec!r}: an empty part; write SERVICE=COUNT[,SERVICE=COUNT...], e.g. matching=2,settlement=2"
            )
        name, equals, count_text = part.partition("=")
        name, count_text = name.strip(), count_text.strip()
        if not equals or not name or not count_text:
            raise InstancesError(f"--instances: {part!r} is not SERVICE=COUNT (e.g. matching=2)")
        if name not in SERVICES:
            raise InstancesError(f"--instances: {part!r}: unknown service {name!r}; known: {', '.join(SERVICES)}")
        if not re.fullmatch(r"[+-]?[0-9]+", count_text):
            raise InstancesError(f"--instances: {part!r}: the count {count_text!r} is not a whole number")
        count = int(count_text)
        if count < 1:
            raise InstancesError(
                f"--instances: {part!r}: the count must be at least 1, not {count} (`farmlink down` stops services)"
            )
        if name in counts:
            raise InstancesError(f"--instances: {name} is named twice ({spec!r})")
        counts[name] = count
    return counts


def useful_instances(service: str) -> int:
    """How many instances of a service can have work at once: the most partitions of any topic it consumes.
    Kafka gives a partition to one member of a group, so instances beyond this stand idle (as hot spares)."""
    consumed = [t for t in BY_NAME[service_principal(service)].read if t != RELAY_CHECKPOINTS]
    partitions = {topic.name: topic.partitions for topic in TOPICS}
    return max(partitions[t] for t in consumed)


def service_app(name: str):
    """The FastStream app of a service, imported by name."""
    if name not in SERVICES:
        raise ValueError(f"unknown service {name!r}; known: {', '.join(SERVICES)}")
    return importlib.import_module(f"services.{name}.app").app


def health_file(name: str) -> Path:
    """Rewritten every HEARTBEAT_S by a running instance: its relay's last failure (`farmlink status`) and where
    it serves /metrics (`metrics`, None when it does not)."""
    return run_dir() / f"{name}.health"


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
