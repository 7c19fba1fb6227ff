"""One small migration runner: ordered SQL files applied once per schema, on start.

Each service owns a PostgreSQL schema. `migrate` creates it, applies the event store's
files (events/sql) and then the service's own, each file once, recorded in
`<schema>.schema_migrations`, all in one transaction under an advisory lock so services
starting together do not race.

An applied migration never changes. Each row of `schema_migrations` holds the SHA-256 of the
file it applied (`checksum`); every start first compares every recorded migration with its
file and refuses, applying nothing, when one was edited (`MigrationChanged`) or is gone
(`MigrationMissing`). The fix is never to edit the record: undo the edit and put the change in
a new file.

It runs as the owner (the migration role) and, in the same transaction, grants the
service's own role exactly what the code does to each kind of table (`TABLE_PRIVILEGES`),
and read-only roles SELECT. Privileges are reset and granted again on every start, so a
table added by a later migration file is covered by its kind, without a list to keep.
"""

import hashlib
import re
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import asyncpg

EVENT_STORE_SQL = Path(__file__).parent / "sql"
_ROOT = Path(__file__).resolve().parents[1]
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


def sql_text(data: bytes) -> bytes:
    """A migration file's bytes as they are run: CRLF and lone CR line ends read as LF (what Python's
    text mode does), so a checkout that rewrote line ends neither runs nor hashes differently."""
    return data.replace(b"\r\n", b"\n").replace(b"\r", b"\n")


def checksum(data: bytes) -> str:
    """The checksum recorded for a migration: SHA-256, as 64 hex digits, of its file's bytes with
    line ends read as LF (`sql_text`); any other change to the bytes, whitespace included, changes it."""
    return hashlib.sha256(sql_text(data)).hexdigest()


def short(digest: str) -> str:
    """A checksum as shown in messages: its first 12 hex digits."""
    return digest[:12]


def shown(path: Path) -> str:
    """A file as named in messages: relative to the repository (services/cooperative/sql/001_registry.sql)
    when it lies inside it, else its full path."""
    try:
        return path.resolve().relative_to(_ROOT).as_posix()
    except ValueError:
        return str(path)


@dataclass(frozen=True)
class Migration:
    """One migration file as read on this start: its recorded name, where it is, what runs, its checksum."""

    name: str
    path: Path
    sql: str
    checksum: str


def read_migration(name: str, path: Path) -> Migration:
    """Read one migration file: the SQL that runs and the checksum of exactly those bytes."""
    data = sql_text(path.read_bytes())
    return Migration(name, path, data.decode("utf-8"), checksum(data))


APPLIED_NEVER_CHANGES = "a migration that was applied never changes: add a new file"


class MigrationChanged(ValueError):
    """A migration recorded as applied to a schema no longer matches its file: the schema was built
    by other SQL than the files now say, so nothing is applied until the file is as it was."""

    def __init__(self, message: str, *, schema: str, name: str, path: Path | None, recorded: str | None, actual: str | None):
        super().__init__(message)
        self.schema, self.name, self.path, self.recorded, self.actual = schema, name, path, recorded, actual


class MigrationMissing(MigrationChanged):
    """A migration recorded as applied to a schema has no file any more (deleted or renamed)."""


def check_applied(
    schema: str,
    recorded: Mapping[str, str | None],
    migrations: Sequence[Migration],
    directories: Mapping[str, Path] | None = None,
) -> None:
    """Raise for the first recorded migration (in file order, then missing ones by name) whose file changed
    (`MigrationChanged`) or is gone (`MigrationMissing`). `recorded` maps each applied name to its checksum;
    None (a row from before checksums) is not compared, but its file must still exist. `directories` (label
    to directory) only lets a missing file's message say where it was looked for."""
    on_disk = {m.name: m for m in migrations}
    for m in migrations:
        was = recorded.get(m.name)
        if was is not None and was != m.checksum:
            raise MigrationChanged(
                f"migration file {shown(m.path)} was edited after it was applied to schema {schema!r}: "
                f"recorded sha256 {short(was)}, file now {short(m.checksum)}. Nothing was migrated; "
                f"{APPLIED_NEVER_CHANGES} (restore this one as it was, e.g. from git, and put the change "
                f"in a file after the last one)",
                schema=schema,
                name=m.name,
                path=m.path,
                recorded=was,
                actual=m.checksum,
            )
    for name in sorted(set(recorded) - set(on_disk)):
        label, _, file_name = name.rpartition("/")
        where = (directories or {}).get(label)
        path = where / file_name if where is not None else None
        was = recorded[name]
        looked = (
            f"file {shown(path)} does not exist" if path is not None else f"this start passed no directory labelled {label!r}"
        )
        raise MigrationMissing(
            f"migration {name} was applied to schema {schema!r} (sha256 {short(was) if was else 'not recorded'}) "
            f"but {looked}. Nothing was migrated; a migration that was applied is never deleted or renamed: "
            f"restore it (e.g. from git), and put any change in a new file",
            schema=schema,
            name=name,
            path=path,
            recorded=was,
            actual=None,
        )


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

    First every migration recorded as applied is checked against its file (`check_applied`):
    an edited or missing one raises `MigrationChanged` / `MigrationMissing` and nothing is
    applied (the transaction rolls back). Each migration applied now is recorded with its
    `checksum`. Rows from before checksums were recorded (checksum NULL) are trusted as they
    are: they get the checksum of the file as it is on the first start that sees them.

    With `service_role`, grant it its privileges in the schema (see `grant`); `readers` (roles
    that exist) get SELECT on every table. Both in the migration's transaction.
    """
    check_schema_name(schema)
    migrations = [read_migration(name, path) for name, path in migration_files(directories)]
    labelled = {"events": EVENT_STORE_SQL, **{label: Path(directory) for label, directory in directories}}
    applied_now: list[str] = []
    async with _connection(db) as conn, conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock(hashtext('farmlink.migrate.' || $1))", schema)
        await conn.execute(f'CREATE SCHEMA IF NOT EXISTS "{schema}"')
        await conn.execute(f'SET LOCAL search_path TO "{schema}"')
        await conn.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations (name text PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now(), "
            "checksum text)"
        )
        await conn.execute("ALTER TABLE schema_migrations ADD COLUMN IF NOT EXISTS checksum text")  # tables from before
        recorded: dict[str, str | None] = {
            row["name"]: row["checksum"] for row in await conn.fetch("SELECT name, checksum FROM schema_migrations")
        }
        check_applied(schema, recorded, migrations, labelled)
        for m in migrations:
            if m.name in recorded:
                if recorded[m.name] is None:
                    await conn.execute("UPDATE schema_migrations SET checksum = $2 WHERE name = $1", m.name, m.checksum)
                continue
            await conn.execute(m.sql)
            await conn.execute("INSERT INTO schema_migrations (name, checksum) VALUES ($1, $2)", m.name, m.checksum)
            applied_now.append(m.name)
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
    existing = {
        r["rolname"]
        for r in await conn.fetch(
            "SELECT rolname FROM pg_roles WHERE rolname = ANY($1::text[])", [r for r in (service_role, *readers) if r]
        )
    }
    if service_role is not None and service_role not in existing:
        raise ValueError(
            f"PostgreSQL role {service_role!r} does not exist: `farmlink infra up` creates the service "
            f"roles (see farmlink/operations/infra/README.md, 'PostgreSQL roles')"
        )
    grantees = [r for r in dict.fromkeys((service_role, *readers)) if r and r in existing and r != owner]
    q = _ident(schema)
    tables = [
        r["relname"]
        for r in await conn.fetch(
            "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE n.nspname = $1 AND c.relkind IN ('r', 'p') ORDER BY c.relname",
            schema,
        )
    ]
    statements = []
    for role in ["PUBLIC", *map(_ident, grantees)]:
        statements += [
            f"REVOKE ALL ON SCHEMA {q} FROM {role}",
            f"REVOKE ALL ON ALL TABLES IN SCHEMA {q} FROM {role}",
            f"REVOKE ALL ON ALL SEQUENCES IN SCHEMA {q} FROM {role}",
        ]
    for role in map(_ident, grantees):
        statements.append(f"GRANT USAGE ON SCHEMA {q} TO {role}")
        if role != _ident(service_role or ""):
            statements.append(f"GRANT SELECT ON ALL TABLES IN SCHEMA {q} TO {role}")
            continue
        statements += [
            f"GRANT {', '.join(table_privileges(table))} ON {q}.{_ident(table)} TO {role}"
            for table in tables
            if table_privileges(table)
        ]
        statements.append(f"GRANT USAGE ON ALL SEQUENCES IN SCHEMA {q} TO {role}")
    await conn.execute(";\n".join(statements))
