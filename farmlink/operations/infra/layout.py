"""Where the local launcher keeps things: the `Layout` of folders, files and ports under farmlink_home,
the ports of the broker's extra listener for `farmlink chaos`, the launcher's error and its lock.

Every other module of farmlink.operations.infra takes a `Layout`; this one imports none of them.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from events.settings import Settings, settings


class InfraError(RuntimeError):
    """The launcher could not do what was asked; the message says what and where to look."""


# ---------------------------------------------------------------------------------------------
# Where things live


@dataclass(frozen=True)
class Layout:
    """The folders and files under farmlink_home, all absolute."""

    home: Path
    kafka_port: int = 19092
    kafka_controller_port: int = 19093
    postgres_port: int = 15432
    kafka_fault_port: int | None = None  # the broker's extra listener for `farmlink chaos` (see kafka_fault_listener)
    kafka_fault_advertised_port: int | None = None

    @classmethod
    def of(cls, s: Settings | None = None) -> Layout:
        s = s or settings()
        return cls(
            s.home, s.farmlink_kafka_port, s.farmlink_kafka_controller_port, s.farmlink_postgres_port, *kafka_fault_listener()
        )

    kafka = property(lambda self: self.home / "kafka")
    libs = property(lambda self: self.kafka / "libs")
    libs_marker = property(lambda self: self.libs / ".pom-sha256")
    kafka_data = property(lambda self: self.kafka / "data")
    server_properties = property(lambda self: self.kafka / "server.properties")
    log4j_config = property(lambda self: self.kafka / "log4j2.properties")
    log4j_tools_config = property(lambda self: self.kafka / "log4j2-tools.properties")
    cluster_id_file = property(lambda self: self.kafka / "cluster-id")
    scram_marker = property(lambda self: self.kafka / "scram-formatted")
    kafka_pid_file = property(lambda self: self.kafka / "kafka.pid")
    pg = property(lambda self: self.home / "pg")
    pg_data = property(lambda self: self.pg / "data")
    pg_socket_dir = property(lambda self: self.pg / "run")
    logs = property(lambda self: self.home / "logs")
    kafka_log = property(lambda self: self.logs / "kafka.log")
    kafka_console_log = property(lambda self: self.logs / "kafka.console.log")
    postgres_log = property(lambda self: self.logs / "postgres.log")
    maven_log = property(lambda self: self.logs / "maven.log")
    lock_file = property(lambda self: self.home / ".launcher.lock")


@contextlib.contextmanager
def _launcher_lock(layout: Layout) -> Iterator[None]:
    """Serialise launchers on one farmlink_home (two test processes must not start two brokers)."""
    layout.home.mkdir(parents=True, exist_ok=True)
    with open(layout.lock_file, "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


KAFKA_FAULT_PORT_ENV = "FARMLINK_KAFKA_FAULT_PORT"
KAFKA_FAULT_ADVERTISED_PORT_ENV = "FARMLINK_KAFKA_FAULT_ADVERTISED_PORT"


def kafka_fault_listener() -> tuple[int | None, int | None]:
    """(listen port, advertised port) of the local broker's extra listener, or (None, None) when not asked for.

    `farmlink chaos` sets FARMLINK_KAFKA_FAULT_PORT (where the broker listens) and
    FARMLINK_KAFKA_FAULT_ADVERTISED_PORT (where it tells the clients of that listener to connect: the run's
    fault link, farmlink/operations/chaos/faults.py). A client bootstrapping through the link is then sent back to the link for
    every later request, instead of to the broker's own address, so a fault on the link reaches all its traffic.
    """
    port, advertised = os.environ.get(KAFKA_FAULT_PORT_ENV), os.environ.get(KAFKA_FAULT_ADVERTISED_PORT_ENV)
    if not port:
        return None, None
    try:
        return int(port), int(advertised or port)
    except ValueError as exc:
        raise InfraError(
            f"{KAFKA_FAULT_PORT_ENV}={port!r} / {KAFKA_FAULT_ADVERTISED_PORT_ENV}={advertised!r}: expected port numbers"
        ) from exc
