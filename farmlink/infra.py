"""The local infrastructure launcher: a Kafka broker and a PostgreSQL server, no Docker.

`farmlink infra up` starts both as ordinary background processes on loopback, with all
their state under ``settings().farmlink_home`` (default ``.farmlink/``):

    kafka/libs/            Kafka's jars, resolved once by Maven from infra/kafka-pom.xml
    kafka/data/            the broker's log dirs (KRaft combined broker+controller)
    kafka/server.properties, kafka/log4j2.properties, kafka/cluster-id, kafka/kafka.pid
    pg/data/               the PostgreSQL 15 cluster (its own postmaster.pid inside)
    pg/run/                PostgreSQL's unix socket
    logs/kafka.log, logs/kafka.console.log, logs/postgres.log, logs/maven.log

When KAFKA_BOOTSTRAP_SERVERS / DATABASE_URL are set, that part is external: nothing is
started for it, but topics are still created on an external Kafka.

Public API: ensure_up(), status(), down(), reset_data(), and the async helpers
create_topics(), reset_topics(), drop_schemas().
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import hashlib
import itertools
import logging
import os
import pwd
import re
import shlex
import shutil
import signal
import socket
import subprocess
from collections.abc import AsyncIterator, Callable, Coroutine, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import unquote, urlsplit

import asyncpg
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaError, TopicAlreadyExistsError, UnknownTopicOrPartitionError, for_code
from tenacity import AsyncRetrying, Retrying, retry_if_exception_type, retry_if_result, stop_after_delay, wait_fixed

from contracts.topics import TOPICS, Topic
from events import access
from events.settings import (
    APP_ROLE,
    AUDITOR,
    LOCAL_DATABASE,
    Settings,
    kafka_options,
    local_secret,
    role_env,
    role_name,
    settings,
)
from farmlink.processes import GATEWAY, SERVICES

log = logging.getLogger(__name__)

_DETACHED: dict[int, subprocess.Popen[bytes]] = {}

Progress = Callable[[str], None]
T = TypeVar("T")

REPO_ROOT = Path(__file__).resolve().parent.parent
KAFKA_POM = REPO_ROOT / "infra" / "kafka-pom.xml"
PG_BIN = Path("/usr/lib/postgresql/15/bin")
PG_SYSTEM_USER = "postgres"  # initdb/postgres refuse to run as root; as root we run them as this user
PG_SUPERUSER = "postgres"  # the cluster's superuser; reachable only over the 0700 unix socket (trust)

APP_DATABASE = LOCAL_DATABASE

KAFKA_HEAP = ("-Xms256m", "-Xmx768m")
KAFKA_NODE_ID = 1
KAFKA_READY_TIMEOUT_S = 90.0
KAFKA_STOP_TIMEOUT_S = 60.0
DATABASE_READY_TIMEOUT_S = 30.0
TOPICS_TIMEOUT_S = 60.0
SHORT_RETENTION_MS = 7 * 24 * 60 * 60 * 1000  # topics that do not keep forever (receipts): 7 days
LOG_TAIL_LINES = 25


class InfraError(RuntimeError):
    """The launcher could not do what was asked; the message says what and where to look."""


class _NotYet(InfraError):
    """A wait condition is not met yet (retried until its deadline)."""


class _KafkaDied(Exception):
    """The local broker exited while we waited for it (not retried)."""


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
        return cls(s.home, s.farmlink_kafka_port, s.farmlink_kafka_controller_port, s.farmlink_postgres_port,
                   *kafka_fault_listener())

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


# ---------------------------------------------------------------------------------------------
# Small process helpers


def _is_root() -> bool:
    return os.geteuid() == 0


def _tail(path: Path, lines: int = LOG_TAIL_LINES) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


def _run(cmd: list[str], *, what: str, log_file: Path | None = None, timeout: float = 300,
         secrets: Iterable[str] = ()) -> str:
    """Run a command to completion and return its stdout; raise InfraError naming the command and log
    (with `secrets` masked)."""
    shown = shlex.join(cmd)
    for secret in secrets:
        shown = shown.replace(secret, "***")
    out = open(log_file, "a") if log_file else None
    try:
        proc = subprocess.run(
            cmd,
            stdin=subprocess.DEVNULL,
            stdout=out or subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            timeout=timeout,
            start_new_session=True,  # pg_ctl's postmaster must not share our terminal's signals
        )
    except FileNotFoundError as exc:
        raise InfraError(f"{what}: {cmd[0]} is not installed or not on PATH") from exc
    except subprocess.TimeoutExpired as exc:
        raise InfraError(f"{what}: `{shown}` did not finish in {timeout:.0f} s") from exc
    finally:
        if out:
            out.close()
    if proc.returncode != 0:
        detail = _tail(log_file) if log_file else (proc.stdout or "").strip()
        where = f"\nLog: {log_file}" if log_file else ""
        for secret in secrets:
            detail = detail.replace(secret, "***")
        raise InfraError(f"{what} failed (exit {proc.returncode}): `{shown}`\n{detail}{where}")
    return proc.stdout or ""


def _port_in_use(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((host, port)) == 0


def _check_port_free(port: int, what: str) -> None:
    if _port_in_use(port):
        raise InfraError(
            f"Port 127.0.0.1:{port} ({what}) is taken by another process, not the farmlink one in this "
            f"FARMLINK_HOME. Stop it, or point farmlink at it with the environment variables."
        )


def _run_sync(coro: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine from sync code, also when the caller already runs an event loop."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coro)
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, coro).result()


def _quiet(_: str) -> None:
    pass


def _log_progress(message: str) -> None:
    log.info(message)


# ---------------------------------------------------------------------------------------------
# Kafka: jars, configuration, storage, process


def resolve_kafka_libs(layout: Layout, say: Progress = _log_progress) -> None:
    """Copy Kafka's runtime jars into kafka/libs with Maven, unless the pom is unchanged since last time."""
    pom_hash = hashlib.sha256(KAFKA_POM.read_bytes()).hexdigest()
    if layout.libs_marker.is_file() and layout.libs_marker.read_text().strip() == pom_hash:
        return
    if shutil.which("mvn") is None:
        raise InfraError("Maven (mvn) is needed once to fetch Kafka's jars; install it (apt-get install maven)")
    say(f"Resolving Kafka jars with Maven from {KAFKA_POM.name} (first run only, ~30 s) ...")
    partial = layout.kafka / "libs.partial"
    shutil.rmtree(partial, ignore_errors=True)
    layout.logs.mkdir(parents=True, exist_ok=True)
    _run(
        ["mvn", "-q", "-B", "-f", str(KAFKA_POM), "dependency:copy-dependencies",
         "-DincludeScope=runtime", f"-DoutputDirectory={partial}"],
        what="Resolving Kafka jars with Maven", log_file=layout.maven_log, timeout=900,
    )
    shutil.rmtree(layout.libs, ignore_errors=True)
    partial.rename(layout.libs)
    layout.libs_marker.write_text(pom_hash + "\n")


def _kafka_password(layout: Layout, principal: str) -> str:
    return local_secret(Settings(farmlink_home=layout.home), f"kafka-{principal}")


def _jaas(username: str, password: str) -> str:
    return f'org.apache.kafka.common.security.scram.ScramLoginModule required username="{username}" password="{password}";'


def server_properties(layout: Layout) -> dict[str, str]:
    """The broker's configuration: one KRaft node, broker and controller, on loopback.

    Clients log in with SASL/SCRAM-SHA-512 (the credentials are added when storage is
    formatted); the StandardAuthorizer denies whatever events/access.py does not allow. The
    broker's own connections (inter-broker, broker to controller) log in as the super user.
    """
    admin_jaas = _jaas(access.ADMIN, _kafka_password(layout, access.ADMIN))
    return {
        "process.roles": "broker,controller",
        "node.id": str(KAFKA_NODE_ID),
        "controller.quorum.bootstrap.servers": f"127.0.0.1:{layout.kafka_controller_port}",
        "listeners": f"SASL_PLAINTEXT://127.0.0.1:{layout.kafka_port},CONTROLLER://127.0.0.1:{layout.kafka_controller_port}",
        "advertised.listeners": f"SASL_PLAINTEXT://127.0.0.1:{layout.kafka_port},CONTROLLER://127.0.0.1:{layout.kafka_controller_port}",
        "listener.security.protocol.map": "SASL_PLAINTEXT:SASL_PLAINTEXT,CONTROLLER:SASL_PLAINTEXT",
        "controller.listener.names": "CONTROLLER",
        "inter.broker.listener.name": "SASL_PLAINTEXT",
        "sasl.enabled.mechanisms": access.SCRAM_MECHANISM,
        "sasl.mechanism.inter.broker.protocol": access.SCRAM_MECHANISM,
        "sasl.mechanism.controller.protocol": access.SCRAM_MECHANISM,
        "listener.name.sasl_plaintext.scram-sha-512.sasl.jaas.config": admin_jaas,
        "listener.name.controller.scram-sha-512.sasl.jaas.config": admin_jaas,
        **_fault_listener_properties(layout, admin_jaas),
        "authorizer.class.name": "org.apache.kafka.metadata.authorizer.StandardAuthorizer",
        "super.users": f"User:{access.ADMIN}",
        "allow.everyone.if.no.acl.found": "false",
        "log.dirs": str(layout.kafka_data),
        "auto.create.topics.enable": "false",
        "delete.topic.enable": "true",
        "num.partitions": "1",
        "default.replication.factor": "1",
        "min.insync.replicas": "1",
        "offsets.topic.replication.factor": "1",
        "transaction.state.log.replication.factor": "1",
        "transaction.state.log.min.isr": "1",
        "share.coordinator.state.topic.replication.factor": "1",
        "share.coordinator.state.topic.min.isr": "1",
        "group.initial.rebalance.delay.ms": "0",
    }


KAFKA_FAULT_PORT_ENV = "FARMLINK_KAFKA_FAULT_PORT"
KAFKA_FAULT_ADVERTISED_PORT_ENV = "FARMLINK_KAFKA_FAULT_ADVERTISED_PORT"
FAULT_LISTENER = "FAULTS"


def kafka_fault_listener() -> tuple[int | None, int | None]:
    """(listen port, advertised port) of the local broker's extra listener, or (None, None) when not asked for.

    `farmlink chaos` sets FARMLINK_KAFKA_FAULT_PORT (where the broker listens) and
    FARMLINK_KAFKA_FAULT_ADVERTISED_PORT (where it tells the clients of that listener to connect: the run's
    fault link, farmlink/faults.py). A client bootstrapping through the link is then sent back to the link for
    every later request, instead of to the broker's own address, so a fault on the link reaches all its traffic.
    """
    port, advertised = os.environ.get(KAFKA_FAULT_PORT_ENV), os.environ.get(KAFKA_FAULT_ADVERTISED_PORT_ENV)
    if not port:
        return None, None
    try:
        return int(port), int(advertised or port)
    except ValueError as exc:
        raise InfraError(f"{KAFKA_FAULT_PORT_ENV}={port!r} / {KAFKA_FAULT_ADVERTISED_PORT_ENV}={advertised!r}: "
                         f"expected port numbers") from exc


def _fault_listener_properties(layout: Layout, admin_jaas: str) -> dict[str, str]:
    """The extra FAULTS listener's settings, added to the SASL_PLAINTEXT one (same SCRAM users and ACLs)."""
    if layout.kafka_fault_port is None:
        return {}
    name = FAULT_LISTENER
    return {
        "listeners": f"SASL_PLAINTEXT://127.0.0.1:{layout.kafka_port},CONTROLLER://127.0.0.1:{layout.kafka_controller_port},"
                     f"{name}://127.0.0.1:{layout.kafka_fault_port}",
        "advertised.listeners": f"SASL_PLAINTEXT://127.0.0.1:{layout.kafka_port},CONTROLLER://127.0.0.1:{layout.kafka_controller_port},"
                                f"{name}://127.0.0.1:{layout.kafka_fault_advertised_port}",
        "listener.security.protocol.map": f"SASL_PLAINTEXT:SASL_PLAINTEXT,CONTROLLER:SASL_PLAINTEXT,{name}:SASL_PLAINTEXT",
        f"listener.name.{name.lower()}.scram-sha-512.sasl.jaas.config": admin_jaas,
    }


def kafka_fault_listener_running(layout: Layout | None = None) -> bool:
    """Whether the running local broker was started with the fault listener the environment asks for."""
    layout = layout or Layout.of()
    if layout.kafka_fault_port is None or kafka_pid(layout) is None:
        return False
    try:
        text = layout.server_properties.read_text()
    except OSError:
        return False
    return (f"{FAULT_LISTENER}://127.0.0.1:{layout.kafka_fault_port}" in text
            and f"{FAULT_LISTENER}://127.0.0.1:{layout.kafka_fault_advertised_port}" in text)


def log4j_properties(layout: Layout) -> str:
    """log4j2 configuration: INFO to logs/kafka.log, rolled at each start and at 50 MB, config dumps off."""
    return f"""\
# Written by `farmlink infra up` (farmlink/infra.py) before every start.
status = warn
name = farmlink-kafka
appender.file.type = RollingFile
appender.file.name = file
appender.file.fileName = {layout.kafka_log}
appender.file.filePattern = {layout.logs}/kafka.log.%i
appender.file.layout.type = PatternLayout
appender.file.layout.pattern = [%d] %p %m (%c)%n
appender.file.policies.type = Policies
appender.file.policies.startup.type = OnStartupTriggeringPolicy
appender.file.policies.size.type = SizeBasedTriggeringPolicy
appender.file.policies.size.size = 50MB
appender.file.strategy.type = DefaultRolloverStrategy
appender.file.strategy.max = 3
rootLogger.level = INFO
rootLogger.appenderRef.file.ref = file
# The full config dump of the broker and of each internal client: hundreds of lines per start.
logger.config.name = org.apache.kafka.common.config.AbstractConfig
logger.config.level = WARN
logger.request.name = kafka.request.logger
logger.request.level = WARN
# One line per partition and replica state change: thousands when topics are (re)created.
logger.statechange.name = state.change.logger
logger.statechange.level = WARN
"""


# StorageTool (format, random-uuid): warnings to the console, which the launcher captures and reports.
LOG4J_TOOLS_PROPERTIES = """\
status = warn
appender.console.type = Console
appender.console.name = console
appender.console.target = SYSTEM_ERR
appender.console.layout.type = PatternLayout
appender.console.layout.pattern = %p %m (%c)%n
rootLogger.level = WARN
rootLogger.appenderRef.console.ref = console
"""


def _write_kafka_config(layout: Layout) -> None:
    layout.kafka.mkdir(parents=True, exist_ok=True)
    layout.logs.mkdir(parents=True, exist_ok=True)
    header = "# Written by `farmlink infra up` (farmlink/infra.py) before every start; edit that instead.\n"
    body = "".join(f"{key}={value}\n" for key, value in server_properties(layout).items())
    layout.server_properties.touch(mode=0o600)
    layout.server_properties.chmod(0o600)  # it holds the super user's password
    layout.server_properties.write_text(header + body)
    layout.log4j_config.write_text(log4j_properties(layout))
    layout.log4j_tools_config.write_text(LOG4J_TOOLS_PROPERTIES)


def _java(layout: Layout, main_class: str, *args: str, broker: bool = False) -> list[str]:
    java = shutil.which("java")
    if java is None:
        raise InfraError("Java 17+ is needed to run Kafka; install it (apt-get install openjdk-17-jre-headless)")
    heap = KAFKA_HEAP if broker else ()
    log_config = layout.log4j_config if broker else layout.log4j_tools_config
    return [java, *heap, f"-Dlog4j2.configurationFile={log_config}", "-cp", f"{layout.libs}/*", main_class, *args]


def read_cluster_id(layout: Layout) -> str | None:
    """The cluster id the local storage was formatted with (kept in kafka/cluster-id)."""
    if layout.cluster_id_file.is_file():
        return layout.cluster_id_file.read_text().strip() or None
    meta = layout.kafka_data / "meta.properties"
    if meta.is_file():
        for line in meta.read_text().splitlines():
            if line.startswith("cluster.id="):
                return line.split("=", 1)[1].strip()
    return None


def _check_formatted_with_scram(layout: Layout) -> None:
    """Storage formatted before SASL/SCRAM (no kafka/scram-formatted) has no credentials: nobody could log in."""
    if layout.scram_marker.is_file():
        return
    raise InfraError(
        f"The Kafka storage in {layout.kafka_data} was formatted before farmlink used SASL/SCRAM (there is no "
        f"{layout.scram_marker}), so it holds no user credentials and no client could log in. Kafka's "
        f"credentials can only be added when storage is formatted; format it again (this deletes every Kafka "
        f"message and consumer offset of this home; PostgreSQL is kept):\n"
        f"  farmlink down; farmlink infra down\n"
        f"  rm -rf {layout.kafka_data} {layout.cluster_id_file}\n"
        f"  farmlink infra up; farmlink infra reset --yes   # Kafka and the event stores start empty together"
    )


def _format_kafka_storage(layout: Layout, say: Progress) -> None:
    """Format the log dir once, with a cluster id kept in kafka/cluster-id and a SCRAM
    credential for every principal of events/access.py."""
    if (layout.kafka_data / "meta.properties").is_file():
        _check_formatted_with_scram(layout)
        return
    cluster_id = read_cluster_id(layout)
    if cluster_id is None:
        output = _run(_java(layout, "kafka.tools.StorageTool", "random-uuid"), what="Generating a Kafka cluster id")
        ids = re.findall(r"^[A-Za-z0-9_-]{22}$", output, flags=re.MULTILINE)
        if not ids:
            raise InfraError(f"kafka.tools.StorageTool random-uuid printed no cluster id:\n{output}")
        cluster_id = ids[-1]
        layout.cluster_id_file.write_text(cluster_id + "\n")
    say(f"Formatting Kafka storage in {layout.kafka_data} (cluster id {cluster_id}, "
        f"{len(access.ALL_PRINCIPALS)} SCRAM users) ...")
    passwords = {principal: _kafka_password(layout, principal) for principal in access.ALL_PRINCIPALS}
    scram = [arg for principal, password in passwords.items() for arg in (
        "--add-scram", f"{access.SCRAM_MECHANISM}=[name={principal},password={password}]")]
    _run(_java(layout, "kafka.tools.StorageTool", "format", "-t", cluster_id,
               "-c", str(layout.server_properties), "--standalone", *scram),
         what="Formatting Kafka storage", secrets=passwords.values())
    layout.scram_marker.write_text("SCRAM-SHA-512 credentials were added when this storage was formatted.\n")


def _proc_state(pid: int) -> tuple[str, bytes] | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return None
    return stat.rsplit(")", 1)[1].split()[0], cmdline


def _reap(pid: int) -> None:
    proc = _DETACHED.pop(pid, None)
    if proc is not None:
        proc.poll()


def _kafka_alive(layout: Layout, pid: int) -> bool:
    """Whether pid is this farmlink_home's broker (not a zombie, not a recycled pid)."""
    state = _proc_state(pid)
    if state is None:
        return False
    if state[0] in ("Z", "X"):
        _reap(pid)  # our own child, when started by this Python process
        return False
    return str(layout.server_properties).encode() in state[1]


def kafka_pid(layout: Layout) -> int | None:
    """The running local broker's pid, or None."""
    try:
        pid = int(layout.kafka_pid_file.read_text().strip())
    except (OSError, ValueError):
        return None
    return pid if _kafka_alive(layout, pid) else None


def _start_kafka(layout: Layout, say: Progress) -> int:
    _check_port_free(layout.kafka_port, "Kafka")
    _check_port_free(layout.kafka_controller_port, "Kafka controller")
    if layout.kafka_fault_port is not None:
        _check_port_free(layout.kafka_fault_port, "Kafka fault listener")
    cmd = _java(layout, "kafka.Kafka", str(layout.server_properties), broker=True)
    say(f"Starting Kafka on 127.0.0.1:{layout.kafka_port} (log: {layout.kafka_log}) ...")
    with open(layout.kafka_console_log, "wb") as console:  # this run only: its tail explains a failed start
        proc = subprocess.Popen(
            cmd, cwd=layout.kafka, stdin=subprocess.DEVNULL, stdout=console, stderr=subprocess.STDOUT,
            start_new_session=True,  # survives the CLI exiting and the terminal's Ctrl-C
        )
    _DETACHED[proc.pid] = proc  # detached on purpose; kept so it is not reported as leaked
    layout.kafka_pid_file.write_text(f"{proc.pid}\n")
    return proc.pid


def _ensure_kafka_process(layout: Layout, say: Progress) -> int:
    """Start the local broker unless it runs; return its pid."""
    pid = kafka_pid(layout)
    if pid is not None:
        say(f"Kafka already running (pid {pid}).")
        return pid
    resolve_kafka_libs(layout, say)
    _write_kafka_config(layout)
    _format_kafka_storage(layout, say)
    return _start_kafka(layout, say)


def _stop_kafka(layout: Layout, say: Progress) -> None:
    pid = kafka_pid(layout)
    if pid is None:
        say("Kafka: not running.")
        layout.kafka_pid_file.unlink(missing_ok=True)
        return
    say(f"Stopping Kafka (pid {pid}) ...")
    os.kill(pid, signal.SIGTERM)
    alive = Retrying(
        stop=stop_after_delay(KAFKA_STOP_TIMEOUT_S), wait=wait_fixed(0.2),
        retry=retry_if_result(bool), retry_error_callback=lambda state: state.outcome.result(),
    )(_kafka_alive, layout, pid)
    if alive:
        say(f"Kafka did not stop in {KAFKA_STOP_TIMEOUT_S:.0f} s; killing it (see {layout.kafka_log}).")
        os.kill(pid, signal.SIGKILL)
    layout.kafka_pid_file.unlink(missing_ok=True)
    say("Kafka stopped.")


def kafka_version(layout: Layout) -> str | None:
    """The local broker's version: the log's 'Kafka version: X' line, else the kafka_2.13-X.jar name."""
    with contextlib.suppress(OSError), open(layout.kafka_log, errors="replace") as fh:
        for line in itertools.islice(fh, 20000):  # rolled at each start: the line sits near the top
            if "Kafka version: " in line:
                return line.split("Kafka version: ", 1)[1].split()[0]
    jars = sorted(layout.libs.glob("kafka_2.13-*.jar")) if layout.libs.is_dir() else []
    return jars[0].name.removeprefix("kafka_2.13-").removesuffix(".jar") if jars else None


# ---------------------------------------------------------------------------------------------
# Kafka: admin operations (work on any broker, local or external)


@contextlib.asynccontextmanager
async def _admin(bootstrap: str, request_timeout_ms: int = 15000) -> AsyncIterator[AIOKafkaAdminClient]:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, client_id="farmlink-infra",
                                request_timeout_ms=request_timeout_ms, **kafka_options(settings(), access.ADMIN))
    try:
        await admin.start()
        yield admin
    finally:
        await admin.close()


async def describe_cluster(bootstrap: str, timeout: float = 5.0) -> dict[str, Any]:
    """The cluster's metadata (cluster_id, brokers, ...); raises when no broker answers."""
    async def probe() -> dict[str, Any]:
        async with _admin(bootstrap, request_timeout_ms=int(timeout * 1000)) as admin:
            cluster = await admin.describe_cluster()
        if not cluster.get("brokers"):
            raise InfraError(f"Kafka at {bootstrap} answered without any broker")
        return cluster

    return await asyncio.wait_for(probe(), timeout)


async def _wait_for_kafka(bootstrap: str, layout: Layout | None, pid: int | None) -> dict[str, Any]:
    """Wait until the broker answers; fail fast when the local process dies."""
    where = (f" See {layout.kafka_log} and {layout.kafka_console_log}. A 'SaslAuthenticationFailed' there means "
             f"{layout.home}/secrets/kafka-admin no longer matches the credential storage was formatted with "
             f"(format again: infra/README.md)." if layout else "")
    try:
        async for attempt in AsyncRetrying(
            stop=stop_after_delay(KAFKA_READY_TIMEOUT_S), wait=wait_fixed(0.5), reraise=True,
            retry=retry_if_exception_type((KafkaError, OSError, asyncio.TimeoutError, InfraError)),
        ):
            with attempt:
                if layout is not None and pid is not None and not _kafka_alive(layout, pid):
                    raise _KafkaDied(f"Kafka (pid {pid}) exited during startup.{where}\n"
                                     f"{_tail(layout.kafka_console_log) or _tail(layout.kafka_log)}")
                return await describe_cluster(bootstrap)
    except _KafkaDied as exc:
        raise InfraError(str(exc)) from None
    except (KafkaError, OSError, asyncio.TimeoutError, InfraError) as exc:
        raise InfraError(f"Kafka at {bootstrap} did not answer within {KAFKA_READY_TIMEOUT_S:.0f} s "
                         f"({type(exc).__name__}: {exc}).{where}") from exc
    raise AssertionError("unreachable")


# ---------------------------------------------------------------------------------------------
# Kafka: SCRAM users and ACLs (confluent-kafka's AdminClient: aiokafka 0.14 has no ACL or SCRAM API)

SCRAM_ITERATIONS = 4096
_ACL_TIMEOUT_S = 15.0


def _confluent_config(bootstrap: str, options: dict[str, Any]) -> dict[str, Any]:
    """librdkafka's names for the options events.settings.kafka_options gives aiokafka."""
    config: dict[str, Any] = {"bootstrap.servers": bootstrap, "client.id": "farmlink-infra"}
    if "security_protocol" in options:
        config["security.protocol"] = options["security_protocol"]
    if options.get("sasl_plain_username"):
        config |= {"sasl.mechanism": options["sasl_mechanism"], "sasl.username": options["sasl_plain_username"],
                   "sasl.password": options["sasl_plain_password"]}
    return config


def _acl_key(principal: str, resource_type: str, name: str, pattern: str, operation: str) -> tuple[str, ...]:
    return (principal, resource_type.upper(), name, pattern.upper(), operation.upper())


def _sync_access_blocking(config: dict[str, Any], passwords: dict[str, str]) -> tuple[int, int, int]:
    """Upsert the SCRAM users given, then make the ACLs of events/access.py's principals exactly the
    matrix (missing ones created, others of theirs deleted). Returns (users, created, deleted)."""
    from confluent_kafka import KafkaException
    from confluent_kafka.admin import (AclBinding, AclBindingFilter, AclOperation, AclPermissionType, AdminClient,
                                       ResourcePatternType, ResourceType, ScramCredentialInfo, ScramMechanism,
                                       UserScramCredentialUpsertion)

    admin = AdminClient(config)
    where = f"Kafka at {config['bootstrap.servers']} as {config.get('sasl.username', 'an anonymous client')}"
    try:
        if passwords:
            info = ScramCredentialInfo(ScramMechanism.SCRAM_SHA_512, SCRAM_ITERATIONS)
            upserts = [UserScramCredentialUpsertion(user, info, password.encode()) for user, password in passwords.items()]
            for future in admin.alter_user_scram_credentials(upserts, request_timeout=_ACL_TIMEOUT_S).values():
                future.result()
        everything = AclBindingFilter(ResourceType.ANY, None, ResourcePatternType.ANY, None, None,
                                      AclOperation.ANY, AclPermissionType.ANY)
        ours = {f"User:{name}" for name in access.BY_NAME}
        have = {
            _acl_key(b.principal, b.restype.name, b.name, b.resource_pattern_type.name, b.operation.name): b
            for b in admin.describe_acls(everything, request_timeout=_ACL_TIMEOUT_S).result()
            if b.principal in ours and b.permission_type == AclPermissionType.ALLOW and b.host == "*"
        }
        want = {
            _acl_key(a.kafka_principal, a.resource_type, a.resource_name, a.pattern_type, a.operation): AclBinding(
                ResourceType[a.resource_type], a.resource_name, ResourcePatternType[a.pattern_type], a.kafka_principal,
                "*", AclOperation[a.operation], AclPermissionType.ALLOW)
            for a in access.acl_bindings()
        }
        missing = [binding for key, binding in want.items() if key not in have]
        extra = [binding for key, binding in have.items() if key not in want]
        if missing:
            for future in admin.create_acls(missing, request_timeout=_ACL_TIMEOUT_S).values():
                future.result()
        if extra:
            filters = [AclBindingFilter(b.restype, b.name, b.resource_pattern_type, b.principal, b.host, b.operation,
                                        b.permission_type) for b in extra]
            for future in admin.delete_acls(filters, request_timeout=_ACL_TIMEOUT_S).values():
                future.result()
    except KafkaException as exc:
        raise InfraError(f"Setting up Kafka users and ACLs failed on {where}: {exc.args[0]}. It needs the super "
                         f"user ({access.ADMIN}) and a broker with an authorizer (see infra/README.md).") from exc
    return len(passwords), len(missing), len(extra)


async def sync_access(s: Settings, layout: Layout | None) -> tuple[int, int, int]:
    """SCRAM users (local broker only) and the ACL matrix of events/access.py, idempotently."""
    passwords = ({p: _kafka_password(layout, p) for p in access.ALL_PRINCIPALS if p != access.ADMIN}
                 if layout is not None else {})
    config = _confluent_config(s.bootstrap, kafka_options(s, access.ADMIN))
    return await asyncio.to_thread(_sync_access_blocking, config, passwords)


def topic_configs(topic: Topic) -> dict[str, str]:
    """Per-topic configuration: event and input topics keep everything; receipts keep 7 days;
    the relay's checkpoints keep the last one per key (compacted)."""
    configs = {"min.insync.replicas": "1"}
    if topic.compacted:  # the last record of each key stays; nothing expires by age or size
        configs |= {"cleanup.policy": "compact", "segment.ms": str(10 * 60 * 1000), "min.cleanable.dirty.ratio": "0.1",
                    "retention.ms": "-1", "retention.bytes": "-1"}
    elif topic.keep_forever:
        configs |= {"retention.ms": "-1", "retention.bytes": "-1"}
    else:
        configs["retention.ms"] = str(SHORT_RETENTION_MS)
    return configs


def _check_topic_errors(errors: Iterable[tuple[Any, ...]], what: str, ignore: tuple[type, ...]) -> None:
    failures = []
    for topic, code, *message in errors:
        error = for_code(code)
        if code != 0 and not issubclass(error, ignore):
            failures.append(f"{topic}: {error.__name__} {message[0] if message and message[0] else ''}".rstrip())
    if failures:
        raise InfraError(f"{what} failed: " + "; ".join(failures))


async def create_topics(bootstrap: str, topics: Iterable[Topic] = TOPICS, *,
                        replication_factor: int = 1) -> list[str]:
    """Create the topics that do not exist yet (existing ones are left alone); return the names created."""
    topics = list(topics)
    async with _admin(bootstrap) as admin:
        existing = set(await admin.list_topics())
        missing = [t for t in topics if t.name not in existing]
        if missing:
            response = await admin.create_topics(
                [NewTopic(t.name, t.partitions, replication_factor, topic_configs=topic_configs(t)) for t in missing]
            )
            _check_topic_errors(response.topic_errors, "Creating topics", ignore=(TopicAlreadyExistsError,))
    await wait_for_topics(bootstrap, topics)
    return [t.name for t in missing]


async def _topic_partitions(admin: AIOKafkaAdminClient, names: list[str]) -> dict[str, int]:
    """Partition counts of the named topics that exist with a leader on every partition."""
    described = await admin.describe_topics(names)
    return {
        t["topic"]: len(t["partitions"])
        for t in described
        if t["error_code"] == 0 and t["partitions"] and all(p["leader"] >= 0 for p in t["partitions"])
    }


async def wait_for_topics(bootstrap: str, topics: Iterable[Topic] = TOPICS,
                          timeout: float = TOPICS_TIMEOUT_S) -> dict[str, int]:
    """Wait until every topic exists with leaders; return their partition counts."""
    names = [t.name for t in topics]
    async with _admin(bootstrap) as admin:
        async for attempt in AsyncRetrying(stop=stop_after_delay(timeout), wait=wait_fixed(0.25), reraise=True,
                                           retry=retry_if_exception_type((_NotYet, KafkaError))):
            with attempt:
                ready = await _topic_partitions(admin, names)
                if missing := [n for n in names if n not in ready]:
                    raise _NotYet(f"topics not ready after {timeout:.0f} s: {', '.join(missing)}")
                return ready
    raise AssertionError("unreachable")


async def _wait_until_deleted(admin: AIOKafkaAdminClient, names: set[str], timeout: float) -> None:
    async for attempt in AsyncRetrying(stop=stop_after_delay(timeout), wait=wait_fixed(0.25), reraise=True,
                                       retry=retry_if_exception_type(_NotYet)):
        with attempt:
            if left := names & set(await admin.list_topics()):
                raise _NotYet(f"topics still present after deletion: {', '.join(sorted(left))}")


async def reset_topics(bootstrap: str, topics: Iterable[Topic] = TOPICS, *,
                       timeout: float = TOPICS_TIMEOUT_S) -> None:
    """Delete the topics (all their messages), wait until they are gone, create them again."""
    topics = list(topics)
    names = {t.name for t in topics}
    async with _admin(bootstrap) as admin:
        present = sorted(names & set(await admin.list_topics()))
        if present:
            response = await admin.delete_topics(present)
            _check_topic_errors(response.topic_error_codes, "Deleting topics", ignore=(UnknownTopicOrPartitionError,))
        await _wait_until_deleted(admin, names, timeout)
    await create_topics(bootstrap, topics)


async def _topic_problems(bootstrap: str) -> list[str]:
    """Existing topics whose partition count differs from contracts.topics (never changed automatically)."""
    actual = await wait_for_topics(bootstrap)
    return [f"{t.name} has {actual[t.name]} partitions, contracts/topics.py says {t.partitions}"
            for t in TOPICS if actual.get(t.name) != t.partitions]


# ---------------------------------------------------------------------------------------------
# PostgreSQL: cluster, configuration, process


def _pg(binary: str, *args: str) -> list[str]:
    """A PostgreSQL command line; as root it runs as the postgres system user (initdb/postgres refuse root)."""
    cmd = [str(PG_BIN / binary), *args]
    return ["runuser", "-u", PG_SYSTEM_USER, "--", *cmd] if _is_root() else cmd


def _chown_to_pg_user(*paths: Path) -> None:
    if not _is_root():
        return
    user = pwd.getpwnam(PG_SYSTEM_USER)
    for path in paths:
        os.chown(path, user.pw_uid, user.pw_gid)


def _prepare_pg_dirs(layout: Layout) -> None:
    """Folders the postgres system user can use: pg/ and pg/run/ are its own, logs/postgres.log too."""
    if not (PG_BIN / "pg_ctl").exists():
        raise InfraError(f"PostgreSQL 15 binaries not found in {PG_BIN} (apt-get install postgresql-15)")
    for folder in (layout.home, layout.logs, layout.pg, layout.pg_socket_dir):
        folder.mkdir(parents=True, exist_ok=True)
    layout.pg_socket_dir.chmod(0o700)
    layout.postgres_log.touch()
    if _is_root():
        for folder in (layout.home, layout.logs):
            folder.chmod(folder.stat().st_mode | 0o055)  # traversable by the postgres user
        _chown_to_pg_user(layout.pg, layout.pg_socket_dir, layout.postgres_log)
        _check_pg_user_access(layout)
    if len(str(layout.pg_socket_dir / f".s.PGSQL.{layout.postgres_port}")) > 100:
        raise InfraError(f"The socket path under {layout.pg_socket_dir} is too long for a unix socket; "
                         f"set FARMLINK_HOME to a shorter path")


def _check_pg_user_access(layout: Layout) -> None:
    probe = ["runuser", "-u", PG_SYSTEM_USER, "--", "test", "-w", str(layout.pg), "-a", "-w", str(layout.postgres_log)]
    if subprocess.run(probe, stdin=subprocess.DEVNULL, capture_output=True).returncode != 0:
        raise InfraError(
            f"The '{PG_SYSTEM_USER}' system user cannot write {layout.pg} or {layout.postgres_log}: every parent "
            f"folder of {layout.home} must be traversable (chmod o+x), or set FARMLINK_HOME to a folder it can reach"
        )


def postgres_conf(layout: Layout) -> str:
    """farmlink.conf, included from postgresql.conf: port, loopback only, durability explicitly on."""
    return f"""\
# Written by `farmlink infra up` (farmlink/infra.py) before every start; edit that instead.
port = {layout.postgres_port}
listen_addresses = '127.0.0.1'
unix_socket_directories = '{layout.pg_socket_dir}'
unix_socket_permissions = 0700
max_connections = 200
# Durability stays on: farmlink's projections and outbox rely on committed means on disk.
fsync = on
synchronous_commit = on
full_page_writes = on
"""


def _initdb(layout: Layout, say: Progress) -> None:
    """Create the cluster once: superuser over the local socket (trust), scram-sha-256 over TCP."""
    if (layout.pg_data / "PG_VERSION").is_file():
        return
    say(f"Creating the PostgreSQL cluster in {layout.pg_data} ...")
    _run(_pg("initdb", "-D", str(layout.pg_data), "-U", PG_SUPERUSER, "-E", "UTF8", "--locale=C.UTF-8",
             "--auth-local=trust", "--auth-host=scram-sha-256"),
         what="initdb")
    with open(layout.pg_data / "postgresql.conf", "a") as conf:
        conf.write("\n# farmlink: settings managed by farmlink/infra.py\ninclude_if_exists = 'farmlink.conf'\n")


def _write_postgres_conf(layout: Layout) -> None:
    conf = layout.pg_data / "farmlink.conf"
    conf.write_text(postgres_conf(layout))
    conf.chmod(0o600)
    _chown_to_pg_user(conf)


def postgres_running(layout: Layout) -> bool:
    """Whether the local cluster's postmaster runs (pg_ctl status)."""
    if not (layout.pg_data / "PG_VERSION").is_file():
        return False
    return subprocess.run(_pg("pg_ctl", "status", "-D", str(layout.pg_data)), stdin=subprocess.DEVNULL,
                          capture_output=True).returncode == 0


def _ensure_postgres_running(layout: Layout, say: Progress) -> None:
    _prepare_pg_dirs(layout)
    if postgres_running(layout):
        say("PostgreSQL already running.")
        return
    _initdb(layout, say)
    _write_postgres_conf(layout)
    _check_port_free(layout.postgres_port, "PostgreSQL")
    say(f"Starting PostgreSQL on 127.0.0.1:{layout.postgres_port} (log: {layout.postgres_log}) ...")
    _run(_pg("pg_ctl", "-D", str(layout.pg_data), "-l", str(layout.postgres_log), "-w", "-t", "60", "start"),
         what="Starting PostgreSQL", log_file=None)


def _stop_postgres(layout: Layout, say: Progress) -> None:
    if not postgres_running(layout):
        say("PostgreSQL: not running.")
        return
    say("Stopping PostgreSQL ...")
    _run(_pg("pg_ctl", "-D", str(layout.pg_data), "-m", "fast", "-w", "-t", "60", "stop"),
         what=f"Stopping PostgreSQL (log: {layout.postgres_log})")
    say("PostgreSQL stopped.")


# ---------------------------------------------------------------------------------------------
# PostgreSQL: roles, database, schemas


def _ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _literal(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


async def _connect_superuser(layout: Layout, database: str = "postgres") -> asyncpg.Connection:
    """The local cluster's superuser, over the unix socket only (0700 folder, trust)."""
    return await asyncpg.connect(host=str(layout.pg_socket_dir), port=layout.postgres_port,
                                 user=PG_SUPERUSER, database=database, timeout=10)


async def _ensure_app_role_and_database(layout: Layout) -> None:
    """Role farmlink (LOGIN, CREATEROLE, development-only password) owning database farmlink."""
    conn = await _connect_superuser(layout)
    try:
        exists = await conn.fetchval("SELECT 1 FROM pg_roles WHERE rolname = $1", APP_ROLE)
        verb = "ALTER" if exists else "CREATE"
        password = local_secret(Settings(farmlink_home=layout.home), f"postgres-{APP_ROLE}")
        await conn.execute(f"{verb} ROLE {_ident(APP_ROLE)} LOGIN CREATEROLE PASSWORD {_literal(password)}")
        if await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", APP_DATABASE):
            await conn.execute(f"ALTER DATABASE {_ident(APP_DATABASE)} OWNER TO {_ident(APP_ROLE)}")
        else:
            await conn.execute(f"CREATE DATABASE {_ident(APP_DATABASE)} OWNER {_ident(APP_ROLE)}")
    finally:
        await conn.close()


def login_roles(s: Settings) -> dict[str, str | None]:
    """The least-privilege login roles `up` keeps in step: role -> password (None: leave it alone).

    Local: farmlink_<service> for every service and farmlink_auditor, with generated passwords.
    External: the role and password of each DATABASE_URL_<NAME> that is set (and is not the owner).
    """
    names = (*SERVICES, GATEWAY, AUDITOR)
    if not s.uses_external_database:
        return {role_name(n): local_secret(s, f"postgres-{role_name(n)}") for n in names}
    owner = urlsplit(s.dsn).username
    roles: dict[str, str | None] = {}
    for name in names:
        url = os.environ.get(role_env(name))
        if url and (parts := urlsplit(url)).username and parts.username != owner:
            roles[unquote(parts.username)] = unquote(parts.password) if parts.password is not None else None
    return roles


async def ensure_login_roles(dsn: str, roles: dict[str, str | None]) -> list[str]:
    """As the owner (DATABASE_URL or the local `farmlink`): create or bring in step each login role
    (LOGIN, no other attribute, its password), give it CONNECT, and take from PUBLIC what it
    has by default: CONNECT and TEMP on the database, USAGE on schema public, EXECUTE on the
    owner's future functions. Schema and table privileges are the migrations' (events/migrations.py).
    Returns the roles created now. Idempotent."""
    conn = await asyncpg.connect(dsn, timeout=10)
    created = []
    try:
        async with conn.transaction():  # one `up` at a time: concurrent GRANTs fail with "tuple concurrently updated"
            await conn.execute("SELECT pg_advisory_xact_lock(hashtext('farmlink.roles'))")
            database = await conn.fetchval("SELECT current_database()")
            can_create = await conn.fetchval(
                "SELECT rolcreaterole OR rolsuper FROM pg_roles WHERE rolname = current_user")
            for role, password in roles.items():
                exists = await conn.fetchval("SELECT 1 FROM pg_roles WHERE rolname = $1", role)
                if not can_create:
                    if not exists:
                        raise InfraError(f"PostgreSQL role {role!r} does not exist and {redact_dsn(dsn)} may not "
                                         f"create roles (no CREATEROLE): create it, or give the owner CREATEROLE")
                    continue
                secret = f" PASSWORD {_literal(password)}" if password is not None else ""
                if exists:
                    await conn.execute(f"ALTER ROLE {_ident(role)} LOGIN NOCREATEDB NOCREATEROLE{secret}")
                else:
                    await conn.execute(f"CREATE ROLE {_ident(role)} LOGIN{secret}")
                    created.append(role)
            await conn.execute(f"REVOKE ALL ON DATABASE {_ident(database)} FROM PUBLIC")
            for role in roles:
                await conn.execute(f"GRANT CONNECT ON DATABASE {_ident(database)} TO {_ident(role)}")
            await conn.execute("REVOKE ALL ON SCHEMA public FROM PUBLIC")
            await conn.execute("ALTER DEFAULT PRIVILEGES REVOKE EXECUTE ON FUNCTIONS FROM PUBLIC")
    finally:
        await conn.close()
    return created


async def _wait_for_database(dsn: str, timeout: float = DATABASE_READY_TIMEOUT_S) -> str:
    """Wait until the database answers; return its version()."""
    try:
        async for attempt in AsyncRetrying(stop=stop_after_delay(timeout), wait=wait_fixed(0.5), reraise=True,
                                           retry=retry_if_exception_type((OSError, asyncpg.PostgresError,
                                                                          asyncio.TimeoutError))):
            with attempt:
                return await postgres_version(dsn)
    except (OSError, asyncpg.PostgresError, asyncio.TimeoutError) as exc:
        raise InfraError(f"PostgreSQL at {redact_dsn(dsn)} did not answer within {timeout:.0f} s "
                         f"({type(exc).__name__}: {exc})") from exc
    raise AssertionError("unreachable")


async def postgres_version(dsn: str, timeout: float = 5.0) -> str:
    conn = await asyncpg.connect(dsn, timeout=timeout)
    try:
        return await conn.fetchval("SELECT version()")
    finally:
        await conn.close()


async def drop_schemas(conn: asyncpg.Connection, only: Iterable[str] | None = None) -> list[str]:
    """Drop (cascade) every non-system schema except public, in one transaction; return their names.

    With ``only``, drop just those of them (tests use a dedicated schema).
    """
    rows = await conn.fetch(
        r"SELECT nspname FROM pg_namespace WHERE nspname NOT LIKE 'pg\_%' "
        "AND nspname NOT IN ('information_schema', 'public') ORDER BY nspname"
    )
    names = [r["nspname"] for r in rows]
    if only is not None:
        wanted = set(only)
        names = [n for n in names if n in wanted]
    async with conn.transaction():
        await conn.execute("SET LOCAL lock_timeout = '15s'")  # a running service holding locks: fail, not hang
        for name in names:
            await conn.execute(f"DROP SCHEMA {_ident(name)} CASCADE")
    return names


def redact_dsn(dsn: str) -> str:
    """The DSN without its password."""
    parts = urlsplit(dsn)
    if parts.password is None:
        return dsn
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    netloc = f"{parts.username}@{host}" + (f":{parts.port}" if parts.port else "")
    return parts._replace(netloc=netloc).geturl()


# ---------------------------------------------------------------------------------------------
# Public API


@dataclass(frozen=True)
class InfraStatus:
    """What `farmlink infra status` reports."""

    kafka_running: bool
    kafka_version: str | None
    cluster_id: str | None
    bootstrap: str
    postgres_reachable: bool
    postgres_version: str | None
    dsn_display: str
    kafka_external: bool = False
    postgres_external: bool = False
    kafka_pid: int | None = None
    topic_count: int | None = None
    missing_topics: tuple[str, ...] = ()
    kafka_error: str | None = None
    postgres_error: str | None = None
    farmlink_home: Path | None = None

    @property
    def ok(self) -> bool:
        return self.kafka_running and self.postgres_reachable


def ensure_up(progress: Progress | None = None) -> None:
    """Start what is not running, wait until ready, create the topics and the database. Idempotent."""
    say = progress or _log_progress
    s = settings()
    layout = Layout.of(s)
    local = not (s.uses_external_kafka and s.uses_external_database)
    with _launcher_lock(layout) if local else contextlib.nullcontext():
        _run_sync(_ensure_up(s, layout, say))


async def _ensure_up(s: Settings, layout: Layout, say: Progress) -> None:
    pid = None
    if s.uses_external_kafka:
        say(f"Kafka: external at {s.bootstrap} (KAFKA_BOOTSTRAP_SERVERS); starting nothing.")
    else:
        pid = _ensure_kafka_process(layout, say)  # boots while PostgreSQL starts
    if s.uses_external_database:
        say(f"PostgreSQL: external at {redact_dsn(s.dsn)} (DATABASE_URL); starting nothing.")
    else:
        _ensure_postgres_running(layout, say)
        await _ensure_app_role_and_database(layout)
    await _wait_for_database(s.dsn)
    say(f"PostgreSQL ready: {redact_dsn(s.dsn)}")
    roles = login_roles(s)
    created = await ensure_login_roles(s.dsn, roles)
    say(f"PostgreSQL roles: {', '.join(roles) or 'none (no DATABASE_URL_<NAME> set)'}"
        + (f" ({len(created)} created)" if created else ""))
    cluster = await _wait_for_kafka(s.bootstrap, None if s.uses_external_kafka else layout, pid)
    say(f"Kafka ready: {s.bootstrap} (cluster {cluster.get('cluster_id')})")
    if s.uses_external_kafka and not (s.kafka_security_protocol or "").upper().startswith("SASL"):
        say("Kafka ACLs: none set (external broker without SASL: KAFKA_SECURITY_PROTOCOL is not SASL_*).")
    else:
        users, created, deleted = await sync_access(s, None if s.uses_external_kafka else layout)
        say(f"Kafka access: {users} SCRAM users set; ACLs of {len(access.BY_NAME)} principals: {created} created, "
            f"{deleted} removed, {len(access.acl_bindings()) - created} already there.")
    created = await create_topics(s.bootstrap)
    say(f"Topics: created {len(created)}, {len(TOPICS) - len(created)} already there.")
    for problem in await _topic_problems(s.bootstrap):
        say(f"warning: {problem}")


def status() -> InfraStatus:
    """Probe both parts (a few seconds at most when something is down)."""
    s = settings()
    layout = Layout.of(s)
    return _run_sync(_status(s, layout))


async def _kafka_status(s: Settings, layout: Layout) -> dict[str, Any]:
    info: dict[str, Any] = {"kafka_external": s.uses_external_kafka, "bootstrap": s.bootstrap}
    if not s.uses_external_kafka:
        info |= {"kafka_pid": kafka_pid(layout), "kafka_version": kafka_version(layout),
                 "cluster_id": read_cluster_id(layout)}
        if info["kafka_pid"] is None:
            return info | {"kafka_running": False, "kafka_error": "not running (farmlink infra up)"}
    try:
        cluster = await describe_cluster(s.bootstrap, timeout=5.0)
        async with _admin(s.bootstrap, request_timeout_ms=5000) as admin:
            names = set(await admin.list_topics())
    except (KafkaError, OSError, asyncio.TimeoutError, InfraError) as exc:
        return info | {"kafka_running": False, "kafka_error": f"{type(exc).__name__}: {exc}"}
    return info | {
        "kafka_running": True,
        "cluster_id": cluster.get("cluster_id") or info.get("cluster_id"),
        "topic_count": len([n for n in names if not n.startswith("__")]),
        "missing_topics": tuple(t.name for t in TOPICS if t.name not in names),
    }


async def _postgres_status(s: Settings) -> dict[str, Any]:
    info: dict[str, Any] = {"postgres_external": s.uses_external_database, "dsn_display": redact_dsn(s.dsn)}
    try:
        version = await asyncio.wait_for(postgres_version(s.dsn), 8)
    except (OSError, asyncpg.PostgresError, asyncio.TimeoutError) as exc:
        return info | {"postgres_reachable": False, "postgres_error": f"{type(exc).__name__}: {exc}"}
    return info | {"postgres_reachable": True, "postgres_version": version}


async def _status(s: Settings, layout: Layout) -> InfraStatus:
    kafka, pg = await asyncio.gather(_kafka_status(s, layout), _postgres_status(s))
    defaults = {"kafka_version": None, "cluster_id": None, "postgres_version": None}
    return InfraStatus(**(defaults | kafka | pg), farmlink_home=layout.home)


def down(progress: Progress | None = None) -> None:
    """Stop the local broker (SIGTERM, wait) and server (pg_ctl stop -m fast). Idempotent; external parts untouched."""
    say = progress or _log_progress
    s = settings()
    layout = Layout.of(s)
    if s.uses_external_kafka:
        say(f"Kafka: external at {s.bootstrap}; not stopping it.")
    else:
        with _launcher_lock(layout):
            _stop_kafka(layout, say)
    if s.uses_external_database:
        say(f"PostgreSQL: external at {redact_dsn(s.dsn)}; not stopping it.")
    else:
        _stop_postgres(layout, say)


def reset_data(progress: Progress | None = None) -> None:
    """Wipe farmlink's data, no questions asked: re-create every topic, drop every non-public schema."""
    say = progress or _log_progress
    s = settings()
    _run_sync(_reset_data(s, Layout.of(s), say))


async def _reset_data(s: Settings, layout: Layout, say: Progress) -> None:
    try:
        await describe_cluster(s.bootstrap)
    except (KafkaError, OSError, asyncio.TimeoutError, InfraError) as exc:
        raise InfraError(f"Kafka at {s.bootstrap} is not reachable ({exc}); run `farmlink infra up` first") from exc
    say(f"Deleting and re-creating {len(TOPICS)} topics on {s.bootstrap} ...")
    await reset_topics(s.bootstrap)
    try:
        conn = await (asyncpg.connect(s.dsn, timeout=10) if s.uses_external_database
                      else _connect_superuser(layout, APP_DATABASE))
    except (OSError, asyncpg.PostgresError, asyncio.TimeoutError) as exc:
        raise InfraError(f"PostgreSQL at {redact_dsn(s.dsn)} is not reachable ({exc}); "
                         f"run `farmlink infra up` first") from exc
    try:
        dropped = await drop_schemas(conn)
    finally:
        await conn.close()
    say(f"Dropped schemas: {', '.join(dropped) if dropped else '(none)'}.")


# ---------------------------------------------------------------------------------------------
# Faults, for `farmlink chaos` (the local broker and server only)


def kill_kafka(sig: signal.Signals, progress: Progress | None = None) -> None:
    """Stop the local broker with `sig`: SIGTERM waits for its clean shutdown, SIGKILL for the process to vanish."""
    say = progress or _log_progress
    layout = Layout.of()
    if sig == signal.SIGTERM:
        _stop_kafka(layout, say)
    else:
        pid = kafka_pid(layout)
        if pid is None:
            raise InfraError("Kafka is not running here; nothing to kill")
        say(f"Killing Kafka (pid {pid}) with {sig.name} ...")
        os.kill(pid, sig)
        Retrying(stop=stop_after_delay(KAFKA_STOP_TIMEOUT_S), wait=wait_fixed(0.1),
                 retry=retry_if_result(bool), retry_error_callback=lambda state: state.outcome.result())(_kafka_alive, layout, pid)
        layout.kafka_pid_file.unlink(missing_ok=True)
    # A dying JVM may still hold its listeners for a moment after /proc stops naming it.
    Retrying(stop=stop_after_delay(30), wait=wait_fixed(0.1), retry=retry_if_result(bool),
             retry_error_callback=lambda state: state.outcome.result())(
        lambda: _port_in_use(layout.kafka_port) or _port_in_use(layout.kafka_controller_port)
        or (layout.kafka_fault_port is not None and _port_in_use(layout.kafka_fault_port)))


def restart_postgres(progress: Progress | None = None) -> None:
    """Restart the local server (pg_ctl restart -m fast): every connection is cut, then it accepts again."""
    say = progress or _log_progress
    layout = Layout.of()
    if not postgres_running(layout):
        raise InfraError("PostgreSQL is not running here; nothing to restart")
    say("Restarting PostgreSQL ...")
    _run(_pg("pg_ctl", "-D", str(layout.pg_data), "-l", str(layout.postgres_log), "-m", "fast", "-w", "-t", "60", "restart"),
         what=f"Restarting PostgreSQL (log: {layout.postgres_log})")


# ---------------------------------------------------------------------------------------------
# The WAL volume, for `farmlink chaos` (the local server only; root only: it mounts a tmpfs)

WAL_VOLUME_SETTINGS = {"wal_recycle": "off", "max_wal_size": "64MB", "min_wal_size": "32MB"}
"""While pg_wal is on the small volume: every new WAL segment is a new file (no recycling by renaming), so a
full volume stops WAL writes at the next segment, and the checkpoints keep the volume's use small."""


def wal_volume(layout: Layout | None = None) -> Path:
    """Where `move_wal_to_volume` mounts the tmpfs that holds pg_wal during a chaos run."""
    return (layout or Layout.of()).pg / "wal-volume"


def wal_on_volume(layout: Layout | None = None) -> bool:
    layout = layout or Layout.of()
    wal = layout.pg_data / "pg_wal"
    return wal.is_symlink() and os.path.ismount(wal_volume(layout))


async def _alter_system(layout: Layout, values: dict[str, str | None]) -> None:
    """ALTER SYSTEM SET (or RESET, for None) each setting as the superuser, then reload."""
    conn = await _connect_superuser(layout)
    try:
        for name, value in values.items():
            if not re.fullmatch(r"[a-z_]+", name):
                raise InfraError(f"not a PostgreSQL setting name: {name!r}")
            await conn.execute(f"ALTER SYSTEM RESET {name}" if value is None else f"ALTER SYSTEM SET {name} = {_literal(value)}")
        await conn.execute("SELECT pg_reload_conf()")
    finally:
        await conn.close()


def move_wal_to_volume(size_mb: int, progress: Progress | None = None) -> Path:
    """Stop the local server, mount a tmpfs of `size_mb` MB at pg/wal-volume, move pg_wal onto it (pg_wal becomes a
    symlink, as `initdb --waldir` makes it) and start the server again with WAL_VOLUME_SETTINGS; the volume's path.

    Not durable across a machine crash (tmpfs): only for a chaos run's throw-away data; `move_wal_back` undoes it."""
    say = progress or _log_progress
    if not _is_root():
        raise InfraError("moving pg_wal onto a tmpfs needs root (mount -t tmpfs); run farmlink chaos as root or "
                         "leave the WAL-full fault out (--no-wal-full)")
    s = settings()
    if s.uses_external_database:
        raise InfraError("DATABASE_URL is set: the WAL volume is only for the local server")
    layout = Layout.of(s)
    volume = wal_volume(layout)
    wal = layout.pg_data / "pg_wal"
    if not wal_on_volume(layout):
        _stop_postgres(layout, say)
        volume.mkdir(exist_ok=True)
        if not os.path.ismount(volume):
            _run(["mount", "-t", "tmpfs", "-o", f"size={int(size_mb)}m,mode=0700", "farmlink-wal", str(volume)],
                 what="Mounting the WAL volume")
        _chown_to_pg_user(volume)
        if not wal.is_symlink():
            say(f"Moving pg_wal onto a {size_mb} MB tmpfs at {volume} ...")
            _run(["cp", "-a", f"{wal}/.", f"{volume}/"], what="Copying pg_wal onto the WAL volume")
            shutil.rmtree(wal)
            wal.symlink_to(volume, target_is_directory=True)
    _ensure_postgres_running(layout, say)
    _run_sync(_alter_system(layout, dict(WAL_VOLUME_SETTINGS)))
    return volume


def move_wal_back(progress: Progress | None = None) -> None:
    """Undo `move_wal_to_volume`: stop the server, copy pg_wal back onto the data directory's disk (every file of
    the volume but the chaos run's fillers), start it, reset the settings, unmount the volume. Idempotent."""
    say = progress or _log_progress
    layout = Layout.of()
    volume = wal_volume(layout)
    wal = layout.pg_data / "pg_wal"
    if wal.is_symlink():
        say(f"Moving pg_wal back from {volume} onto the data directory's disk ...")
        _stop_postgres(layout, say)
        staging = layout.pg_data / "pg_wal.back"
        if staging.exists():
            shutil.rmtree(staging)
        staging.mkdir(mode=0o700)
        for entry in volume.iterdir():
            if entry.name.startswith(WAL_FILLER_PREFIX):
                continue
            _run(["cp", "-a", str(entry), f"{staging}/"], what="Copying pg_wal back from the WAL volume")
        _chown_to_pg_user(staging)
        wal.unlink()
        staging.rename(wal)
        _ensure_postgres_running(layout, say)
    if os.path.ismount(volume):
        _run(["umount", str(volume)], what="Unmounting the WAL volume")
    if postgres_running(layout):
        _run_sync(_alter_system(layout, dict.fromkeys(WAL_VOLUME_SETTINGS)))


WAL_FILLER_PREFIX = "farmlink-filler"
"""The files `farmlink chaos` writes onto the WAL volume to fill it (never WAL: PostgreSQL ignores them)."""


def switch_wal() -> None:
    """Write to WAL and close its current segment (CHECKPOINT, pg_switch_wal, CHECKPOINT): the second checkpoint's
    record needs the next segment, a new file when WAL_VOLUME_SETTINGS apply. Raises when the server cannot."""
    async def switch() -> None:
        conn = await _connect_superuser(Layout.of())
        try:
            await conn.execute("CHECKPOINT")
            await conn.execute("SELECT pg_switch_wal()")
            await conn.execute("CHECKPOINT")
        finally:
            await conn.close()

    _run_sync(switch())
