"""One small migration runner: ordered SQL files applied once per schema, on start.

Each service owns a PostgreSQL schema. `migrate` creates it, applies the event store's
files (events/sql) and then the service's own, each file once, recorded in
`<schema>.schema_migrations`, all in one transaction under an advisory lock so services
starting together do not race.

It runs as the owner (the migration role) and, in the same transaction, grants the
service's own role exactly what the code does to each kind of table (`TABLE_PRIVILEGES`),
and read-only roles SELECT. Privileges are reset and granted again on every start, so a
table added by a later migration file is covered by its kind, without a list to keep.
"""

import re
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from pathlib import Path

import asyncpg

EVENT_STORE_SQL = Path(__file__).parent / "sql"
_SCHEMA_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")


def check_schema_name(schema: str) -> str:
    """A schema name we can safely put into SQL: lower-case letters, digits, underscores."""
    if not _SCHEMA_NAME.match(schema):
        raise ValueError(f"invalid schema name {schema!r}: use lower-case letters, digits and _")
    return schema


def migration_files(directories: Sequence[tuple[str, Path]]) -> list[tuple[str, Path]]:
    """Every migration as (name, file): the event store's first, then each directory's in file-name order."""
    files = [(f"events/{path.name}", path) for path in sorted(EVENT_STORE_SQL.glob("*.sql"))]
    for label, directory in directories:
        files += [(f"{label}/{path.name}", path) for path in sorted(Path(directory).glob("*.sql"))]
    return files


# What a service's role may do to the tables of its own schema, by kind. Never UPDATE, DELETE or
# TRUNCATE on `events`; nothing on the owner's bookkeeping; never TRUNCATE, REFERENCES or TRIGGER.
APPEND_ONLY = ("SELECT", "INSERT")  # history: read and added to, never rewritten
TABLE_PRIVILEGES: dict[str, tuple[str, ...]] = {
    "events": APPEND_ONLY,  # events/store.py appends and reads
    "inbox": APPEND_ONLY,  # events/store.py first_time: INSERT ... ON CONFLICT DO NOTHING
    "outbox": ("SELECT", "INSERT", "DELETE"),  # appended in the unit of work; the relay reads and deletes
    "schema_migrations": (),  # the migration role's own record
    "snapshots": APPEND_ONLY,  # services/matching/snapshots.py: derived books, written once, never changed
}
# Every other table is a projection (services/<name>/sql): read, inserted, updated in place
# (UPDATE ..., INSERT ... ON CONFLICT DO UPDATE); never deleted.
PROJECTION = ("SELECT", "INSERT", "UPDATE")


def table_privileges(table: str) -> tuple[str, ...]:
    """What a service's role may do to one table of its schema."""
    return TABLE_PRIVILEGES.get(table, PROJECTION)


@asynccontextmanager
async def _connection(db: asyncpg.Pool | asyncpg.Connection) -> AsyncIterator[asyncpg.Connection]:
    if isinstance(db, asyncpg.Pool):
        async with db.acquire() as conn:
            yield conn
    else:
        yield db


async def migrate(
    db: asyncpg.Pool | asyncpg.Connection,
    schema: str,
    directories: Sequence[tuple[str, Path]] = (),
    *,
    service_role: str | None = None,
    readers: Sequence[str] = (),
) -> list[str]:
    """Bring a schema up to date as its owner; returns the names of the migrations applied now.

    With `service_role`, grant it its privileges in the schema (see `grant`); `readers` (roles
    that exist) get SELECT on every table. Both in the migration's transaction.
    """
    check_schema_name(schema)
    applied_now: list[str] = []
    async with _connection(db) as conn, conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock(hashtext('farmlink.migrate.' || $1))", schema)
        await conn.execute(f'CREATE SCHEMA IF NOT EXISTS "{schema}"')
        await conn.execute(f'SET LOCAL search_path TO "{schema}"')
        await conn.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations (name text PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())"
        )
        done = {row["name"] for row in await conn.fetch("SELECT name FROM schema_migrations")}
        for name, path in migration_files(directories):
            if name in done:
                continue
            await conn.execute(path.read_text(encoding="utf-8"))
            await conn.execute("INSERT INTO schema_migrations (name) VALUES ($1)", name)
            applied_now.append(name)
        await grant(conn, schema, service_role, readers)
    return applied_now


def _ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


async def grant(conn: asyncpg.Connection, schema: str, service_role: str | None, readers: Sequence[str] = ()) -> None:
    """Reset every privilege of the schema's tables and sequences, then grant, by table kind.

    The service role: USAGE on the schema (never CREATE), `table_privileges` on each table,
    USAGE on each sequence (bigserial defaults). Readers: USAGE and SELECT. PUBLIC: nothing.
    Run by the schema's owner; a role that is the owner itself (DATABASE_URL without a
    service role) is left alone. Raises ValueError naming a service role that does not exist.
    """
    check_schema_name(schema)
    owner = await conn.fetchval("SELECT pg_get_userbyid(nspowner) FROM pg_namespace WHERE nspname = $1", schema)
    existing = {r["rolname"] for r in await conn.fetch("SELECT rolname FROM pg_roles WHERE rolname = ANY($1::text[])",
                                                         [r for r in (service_role, *readers) if r])}
    if service_role is not None and service_role not in existing:
        raise ValueError(f"PostgreSQL role {service_role!r} does not exist: `farmlink infra up` creates the service "
                         f"roles (see infra/README.md, 'PostgreSQL roles')")
    grantees = [r for r in dict.fromkeys((service_role, *readers)) if r and r in existing and r != owner]
    q = _ident(schema)
    tables = [r["relname"] for r in await conn.fetch(
        "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE n.nspname = $1 AND c.relkind IN ('r', 'p') ORDER BY c.relname", schema)]
    statements = []
    for role in ["PUBLIC", *map(_ident, grantees)]:
        statements += [f"REVOKE ALL ON SCHEMA {q} FROM {role}", f"REVOKE ALL ON ALL TABLES IN SCHEMA {q} FROM {role}",
                       f"REVOKE ALL ON ALL SEQUENCES IN SCHEMA {q} FROM {role}"]
    for role in map(_ident, grantees):
        statements.append(f"GRANT USAGE ON SCHEMA {q} TO {role}")
        if role != _ident(service_role or ""):
            statements.append(f"GRANT SELECT ON ALL TABLES IN SCHEMA {q} TO {role}")
            continue
        statements += [f"GRANT {', '.join(table_privileges(table))} ON {q}.{_ident(table)} TO {role}"
                       for table in tables if table_privileges(table)]
        statements.append(f"GRANT USAGE ON ALL SEQUENCES IN SCHEMA {q} TO {role}")
    await conn.execute(";\n".join(statements))
