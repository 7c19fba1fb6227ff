"""Where each service instance keeps its files and serves its metrics: instance names (`matching`, `matching.2`), the
pid, ready, health and log files under FARMLINK_HOME, metrics ports, and `--instances` (farmlink/operations/processes.py runs
them; its docstring tells the scheme)."""

import importlib
import os
import re
from pathlib import Path

from contracts.topics import RELAY_CHECKPOINTS, TOPICS
from events.access import BY_NAME, service_principal
from events.settings import settings

SERVICES = ("cooperative", "buyer", "market", "matching", "settlement", "pairing", "feeds")
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
