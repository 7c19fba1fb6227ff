"""The local infrastructure launcher: a Kafka broker and a PostgreSQL server, no Docker.

`farmlink infra up` starts both as ordinary background processes on loopback, with all
their state under ``settings().farmlink_home`` (default ``.farmlink/``):

    kafka/libs/            Kafka's jars, resolved once by Maven from farmlink/operations/infra/kafka-pom.xml
    kafka/data/            the broker's log dirs (KRaft combined broker+controller)
    kafka/server.properties, kafka/log4j2.properties, kafka/cluster-id, kafka/kafka.pid
    pg/data/               the PostgreSQL 15 cluster (its own postmaster.pid inside)
    pg/run/                PostgreSQL's unix socket
    logs/kafka.log, logs/kafka.console.log, logs/postgres.log, logs/maven.log

When KAFKA_BOOTSTRAP_SERVERS / DATABASE_URL are set, that part is external: nothing is
started for it, but topics are still created on an external Kafka.

Public API: ensure_up(), status(), down(), reset_data(), and the async helpers
create_topics(), reset_topics(), drop_schemas().

The modules, each importing only those above it:

    layout.py       Layout (folders, files, ports), InfraError, the launcher's lock, the fault listener's ports
    commands.py     running commands and coroutines, port probes, log tails, progress
    kafka.py        the local broker: jars, server.properties, SCRAM-formatted storage, process
    kafka_admin.py  admin operations on any broker: readiness, topics
    acls.py         SCRAM users and the ACL matrix of events/access.py
    postgres.py     the local server (initdb, pg_ctl), owner and login roles, schemas, DSNs
    launcher.py     ensure_up, status, down, reset_data (what `farmlink infra` runs)
    faults.py       for `farmlink chaos`: kill Kafka, restart PostgreSQL, the WAL volume
"""

from contracts.topics import TOPICS
from farmlink.operations.infra.acls import SCRAM_ITERATIONS, _confluent_config, sync_access
from farmlink.operations.infra.commands import LOG_TAIL_LINES, Progress
from farmlink.operations.infra.faults import (
    WAL_FILLER_PREFIX,
    WAL_VOLUME_SETTINGS,
    kill_kafka,
    move_wal_back,
    move_wal_to_volume,
    restart_postgres,
    switch_wal,
    wal_on_volume,
    wal_volume,
)
from farmlink.operations.infra.kafka import (
    FAULT_LISTENER,
    KAFKA_HEAP,
    KAFKA_NODE_ID,
    KAFKA_POM,
    KAFKA_STOP_TIMEOUT_S,
    LOG4J_TOOLS_PROPERTIES,
    _format_kafka_storage,
    kafka_fault_listener_running,
    kafka_pid,
    kafka_version,
    log4j_properties,
    read_cluster_id,
    resolve_kafka_libs,
    server_properties,
)
from farmlink.operations.infra.kafka_admin import (
    KAFKA_READY_TIMEOUT_S,
    SHORT_RETENTION_MS,
    TOPICS_TIMEOUT_S,
    create_topics,
    describe_cluster,
    reset_topics,
    topic_configs,
    wait_for_topics,
)
from farmlink.operations.infra.launcher import InfraStatus, down, ensure_up, reset_data, status
from farmlink.operations.infra.layout import (
    KAFKA_FAULT_ADVERTISED_PORT_ENV,
    KAFKA_FAULT_PORT_ENV,
    InfraError,
    Layout,
    kafka_fault_listener,
)
from farmlink.operations.infra.postgres import (
    APP_DATABASE,
    DATABASE_READY_TIMEOUT_S,
    PG_BIN,
    PG_SUPERUSER,
    PG_SYSTEM_USER,
    drop_schemas,
    ensure_login_roles,
    login_roles,
    postgres_conf,
    postgres_running,
    postgres_version,
    redact_dsn,
)

__all__ = [
    # launcher.py: what `farmlink infra` runs
    "InfraStatus",
    "down",
    "ensure_up",
    "reset_data",
    "status",
    # layout.py
    "InfraError",
    "KAFKA_FAULT_ADVERTISED_PORT_ENV",
    "KAFKA_FAULT_PORT_ENV",
    "Layout",
    "kafka_fault_listener",
    # commands.py
    "LOG_TAIL_LINES",
    "Progress",
    # kafka.py
    "FAULT_LISTENER",
    "KAFKA_HEAP",
    "KAFKA_NODE_ID",
    "KAFKA_POM",
    "KAFKA_STOP_TIMEOUT_S",
    "LOG4J_TOOLS_PROPERTIES",
    "_format_kafka_storage",  # tests/unit/test_kafka_access.py
    "kafka_fault_listener_running",
    "kafka_pid",
    "kafka_version",
    "log4j_properties",
    "read_cluster_id",
    "resolve_kafka_libs",
    "server_properties",
    # kafka_admin.py
    "KAFKA_READY_TIMEOUT_S",
    "SHORT_RETENTION_MS",
    "TOPICS",
    "TOPICS_TIMEOUT_S",
    "create_topics",
    "describe_cluster",
    "reset_topics",
    "topic_configs",
    "wait_for_topics",
    # acls.py
    "SCRAM_ITERATIONS",
    "_confluent_config",  # farmlink/operations/health.py
    "sync_access",
    # postgres.py
    "APP_DATABASE",
    "DATABASE_READY_TIMEOUT_S",
    "PG_BIN",
    "PG_SUPERUSER",
    "PG_SYSTEM_USER",
    "drop_schemas",
    "ensure_login_roles",
    "login_roles",
    "postgres_conf",
    "postgres_running",
    "postgres_version",
    "redact_dsn",
    # faults.py: for `farmlink chaos`
    "WAL_FILLER_PREFIX",
    "WAL_VOLUME_SETTINGS",
    "kill_kafka",
    "move_wal_back",
    "move_wal_to_volume",
    "restart_postgres",
    "switch_wal",
    "wal_on_volume",
    "wal_volume",
]
