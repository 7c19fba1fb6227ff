"""The local Kafka broker: its jars (resolved once by Maven), server.properties and log4j2 configuration, storage
formatted with a SCRAM credential per principal, and its process (start, pid, stop, version).

The admin operations that work on any broker are in kafka_admin.py; users and ACLs in acls.py.
"""

from __future__ import annotations

import contextlib
import hashlib
import itertools
import os
import re
import shutil
import signal
import subprocess
from pathlib import Path

from tenacity import Retrying, retry_if_result, stop_after_delay, wait_fixed

from events import access
from events.settings import Settings, local_secret
from farmlink.operations.infra.commands import Progress, _check_port_free, _log_progress, _run
from farmlink.operations.infra.layout import InfraError, Layout


_DETACHED: dict[int, subprocess.Popen[bytes]] = {}

KAFKA_POM = Path(__file__).resolve().parent / "kafka-pom.xml"

KAFKA_HEAP = ("-Xms256m", "-Xmx768m")
KAFKA_NODE_ID = 1
KAFKA_STOP_TIMEOUT_S = 60.0


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
        [
            "mvn",
            "-q",
            "-B",
            "-f",
            str(KAFKA_POM),
            "dependency:copy-dependencies",
            "-DincludeScope=runtime",
            f"-DoutputDirectory={partial}",
        ],
        what="Resolving Kafka jars with Maven",
        log_file=layout.maven_log,
        timeout=900,
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


FAULT_LISTENER = "FAULTS"


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
    return (
        f"{FAULT_LISTENER}://127.0.0.1:{layout.kafka_fault_port}" in text
        and f"{FAULT_LISTENER}://127.0.0.1:{layout.kafka_fault_advertised_port}" in text
    )


def log4j_properties(layout: Layout) -> str:
    """log4j2 configuration: INFO to logs/kafka.log, rolled at each start and at 50 MB, config dumps off."""
    return f"""\
# Written by `farmlink infra up` (farmlink/operations/infra/kafka.py) before every start.
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
    header = "# Written by `farmlink infra up` (farmlink/operations/infra/kafka.py) before every start; edit that instead.\n"
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
    say(
        f"Formatting Kafka storage in {layout.kafka_data} (cluster id {cluster_id}, {len(access.ALL_PRINCIPALS)} SCRAM users) ..."
    )
    passwords = {principal: _kafka_password(layout, principal) for principal in access.ALL_PRINCIPALS}
    scram = [
        arg
        for principal, password in passwords.items()
        for arg in ("--add-scram", f"{access.SCRAM_MECHANISM}=[name={principal},password={password}]")
    ]
    _run(
        _java(
            layout,
            "kafka.tools.StorageTool",
            "format",
            "-t",
            cluster_id,
            "-c",
            str(layout.server_properties),
            "--standalone",
            *scram,
        ),
        what="Formatting Kafka storage",
        secrets=passwords.values(),
    )
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
            cmd,
            cwd=layout.kafka,
            stdin=subprocess.DEVNULL,
            stdout=console,
            stderr=subprocess.STDOUT,
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
        stop=stop_after_delay(KAFKA_STOP_TIMEOUT_S),
        wait=wait_fixed(0.2),
        retry=retry_if_result(bool),
        retry_error_callback=lambda state: state.outcome.result(),
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
