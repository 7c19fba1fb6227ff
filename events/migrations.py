"""One small migration runner: ordered SQL files applied once per schema, on start.

Each service owns a PostgreSQL schema. `migrate` creates it, applies the event store's
files (events/sql) and then the service's own, each file once, recorded in
`<schema>.schema_migrations`, all in one transaction under an advisory lock so services
starting together do not race.
"""

import re
from collections.abc import Sequence
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


async def migrate(pool: asyncpg.Pool, schema: str, directories: Sequence[tuple[str, Path]] = ()) -> list[str]:
    """Bring a schema up to date; returns the names of the migrations applied now."""
    check_schema_name(schema)
    applied_now: list[str] = []
    async with pool.acquire() as conn, conn.transaction():
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
    return applied_now
