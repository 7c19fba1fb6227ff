"""What `farmlink infra up|status|down|reset` does: `ensure_up` (start what is not running, wait, set users, ACLs,
roles and topics), `status`, `down` and `reset_data`, over the local or external broker and server.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
from aiokafka.errors import KafkaError

from contracts.topics import TOPICS
from events import access
from events.settings import Settings, settings
from farmlink.operations.infra.acls import remove_party_access, sync_access
from farmlink.operations.infra.commands import Progress, _log_progress, _run_sync
from farmlink.operations.infra.kafka import _ensure_kafka_process, _stop_kafka, kafka_pid, kafka_version, read_cluster_id
from farmlink.operations.infra.kafka_admin import (
    _admin,
    _topic_problems,
    _wait_for_kafka,
    create_topics,
    describe_cluster,
    reset_topics,
)
from farmlink.operations.infra.layout import InfraError, Layout, _launcher_lock
from farmlink.operations.infra.postgres import (
    APP_DATABASE,
    _connect_superuser,
    _ensure_app_role_and_database,
    _ensure_postgres_running,
    _stop_postgres,
    _wait_for_database,
    drop_schemas,
    ensure_login_roles,
    login_roles,
    postgres_version,
    redact_dsn,
)


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
    say(
        f"PostgreSQL roles: {', '.join(roles) or 'none (no DATABASE_URL_<NAME> set)'}"
        + (f" ({len(created)} created)" if created else "")
    )
    cluster = await _wait_for_kafka(s.bootstrap, None if s.uses_external_kafka else layout, pid)
    say(f"Kafka ready: {s.bootstrap} (cluster {cluster.get('cluster_id')})")
    if s.uses_external_kafka and not (s.kafka_security_protocol or "").upper().startswith("SASL"):
        say("Kafka ACLs: none set (external broker without SASL: KAFKA_SECURITY_PROTOCOL is not SASL_*).")
    else:
        users, created, deleted = await sync_access(s, None if s.uses_external_kafka else layout)
        say(
            f"Kafka access: {users} SCRAM users set; ACLs of {len(access.BY_NAME)} principals: {created} created, "
            f"{deleted} removed, {len(access.acl_bindings()) - created} already there."
        )
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
        info |= {"kafka_pid": kafka_pid(layout), "kafka_version": kafka_version(layout), "cluster_id": read_cluster_id(layout)}
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
    say(f"Removed {await remove_party_access(s)} party principals (the feeds service makes them again from the log).")
    try:
        conn = await (
            asyncpg.connect(s.dsn, timeout=10) if s.uses_external_database else _connect_superuser(layout, APP_DATABASE)
        )
    except (OSError, asyncpg.PostgresError, asyncio.TimeoutError) as exc:
        raise InfraError(f"PostgreSQL at {redact_dsn(s.dsn)} is not reachable ({exc}); run `farmlink infra up` first") from exc
    try:
        dropped = await drop_schemas(conn)
    finally:
        await conn.close()
    say(f"Dropped schemas: {', '.join(dropped) if dropped else '(none)'}.")
