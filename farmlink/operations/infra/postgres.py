"""The local PostgreSQL server (initdb, farmlink.conf, pg_ctl start/stop, run as the postgres system user when
root), and what any server needs: the owner role and database, the services' least-privilege login roles,
readiness, dropping schemas, DSNs without their password.
"""

from __future__ import annotations

import asyncio
import os
import pwd
import subprocess
from collections.abc import Iterable
from pathlib import Path
from urllib.parse import unquote, urlsplit

import asyncpg
from tenacity import AsyncRetrying, retry_if_exception_type, stop_after_delay, wait_fixed

from events.settings import APP_ROLE, AUDITOR, LOCAL_DATABASE, Settings, local_secret, role_env, role_name
from farmlink.operations.infra.commands import Progress, _check_port_free, _is_root, _run
from farmlink.operations.infra.layout import InfraError, Layout
from farmlink.operations.processes import GATEWAY, SERVICES


PG_BIN = Path("/usr/lib/postgresql/15/bin")
PG_SYSTEM_USER = "postgres"  # initdb/postgres refuse to run as root; as root we run them as this user
PG_SUPERUSER = "postgres"  # the cluster's superuser; reachable only over the 0700 unix socket (trust)

APP_DATABASE = LOCAL_DATABASE

DATABASE_READY_TIMEOUT_S = 30.0


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
        raise InfraError(
            f"The socket path under {layout.pg_socket_dir} is too long for a unix socket; set FARMLINK_HOME to a shorter path"
        )


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
# Written by `farmlink infra up` (farmlink/operations/infra/postgres.py) before every start; edit that instead.
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
    _run(
        _pg(
            "initdb",
            "-D",
            str(layout.pg_data),
            "-U",
            PG_SUPERUSER,
            "-E",
            "UTF8",
            "--locale=C.UTF-8",
            "--auth-local=trust",
            "--auth-host=scram-sha-256",
        ),
        what="initdb",
    )
    with open(layout.pg_data / "postgresql.conf", "a") as conf:
        conf.write(
            "\n# farmlink: settings managed by farmlink/operations/infra/postgres.py\ninclude_if_exists = 'farmlink.conf'\n"
        )


def _write_postgres_conf(layout: Layout) -> None:
    conf = layout.pg_data / "farmlink.conf"
    conf.write_text(postgres_conf(layout))
    conf.chmod(0o600)
    _chown_to_pg_user(conf)


def postgres_running(layout: Layout) -> bool:
    """Whether the local cluster's postmaster runs (pg_ctl status)."""
    if not (layout.pg_data / "PG_VERSION").is_file():
        return False
    return (
        subprocess.run(
            _pg("pg_ctl", "status", "-D", str(layout.pg_data)), stdin=subprocess.DEVNULL, capture_output=True
        ).returncode
        == 0
    )


def _ensure_postgres_running(layout: Layout, say: Progress) -> None:
    _prepare_pg_dirs(layout)
    if postgres_running(layout):
        say("PostgreSQL already running.")
        return
    _initdb(layout, say)
    _write_postgres_conf(layout)
    _check_port_free(layout.postgres_port, "PostgreSQL")
    say(f"Starting PostgreSQL on 127.0.0.1:{layout.postgres_port} (log: {layout.postgres_log}) ...")
    _run(
        _pg("pg_ctl", "-D", str(layout.pg_data), "-l", str(layout.postgres_log), "-w", "-t", "60", "start"),
        what="Starting PostgreSQL",
        log_file=None,
    )


def _stop_postgres(layout: Layout, say: Progress) -> None:
    if not postgres_running(layout):
        say("PostgreSQL: not running.")
        return
    say("Stopping PostgreSQL ...")
    _run(
        _pg("pg_ctl", "-D", str(layout.pg_data), "-m", "fast", "-w", "-t", "60", "stop"),
        what=f"Stopping PostgreSQL (log: {layout.postgres_log})",
    )
    say("PostgreSQL stopped.")


# ---------------------------------------------------------------------------------------------
# PostgreSQL: roles, database, schemas


def _ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _literal(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


async def _connect_superuser(layout: Layout, database: str = "postgres") -> asyncpg.Connection:
    """The local cluster's superuser, over the unix socket only (0700 folder, trust)."""
    return await asyncpg.connect(
        host=str(layout.pg_socket_dir), port=layout.postgres_port, user=PG_SUPERUSER, database=database, timeout=10
    )


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
            can_create = await conn.fetchval("SELECT rolcreaterole OR rolsuper FROM pg_roles WHERE rolname = current_user")
            for role, password in roles.items():
                exists = await conn.fetchval("SELECT 1 FROM pg_roles WHERE rolname = $1", role)
                if not can_create:
                    if not exists:
                        raise InfraError(
                            f"PostgreSQL role {role!r} does not exist and {redact_dsn(dsn)} may not "
                            f"create roles (no CREATEROLE): create it, or give the owner CREATEROLE"
                        )
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
        async for attempt in AsyncRetrying(
            stop=stop_after_delay(timeout),
            wait=wait_fixed(0.5),
            reraise=True,
            retry=retry_if_exception_type((OSError, asyncpg.PostgresError, asyncio.TimeoutError)),
        ):
            with attempt:
                return await postgres_version(dsn)
    except (OSError, asyncpg.PostgresError, asyncio.TimeoutError) as exc:
        raise InfraError(
            f"PostgreSQL at {redact_dsn(dsn)} did not answer within {timeout:.0f} s ({type(exc).__name__}: {exc})"
        ) from exc
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
