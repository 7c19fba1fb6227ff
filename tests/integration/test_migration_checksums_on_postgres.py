"""An applied migration never changes, against the real PostgreSQL: the runner records each file's
checksum, and a start whose files differ from what was applied is refused before anything is applied.

Each test migrates a scratch schema of its own from SQL files in a temporary directory (after the
event store's own files, as every service does), and drops the schema afterwards.
"""

from pathlib import Path

import asyncpg
import pytest

from events.migrations import EVENT_STORE_SQL, MigrationChanged, MigrationMissing, checksum, migrate
from events.runtime import ServiceRuntime

pytestmark = pytest.mark.integration

LABEL = "services/scratch"
FIRST = "CREATE TABLE crops (crop_id text PRIMARY KEY);\n"
SECOND = "CREATE TABLE plots (plot_id text PRIMARY KEY, crop_id text REFERENCES crops);\n"


@pytest.fixture
async def scratch(pool, unique, tmp_path):
    """A schema name nothing uses yet and a directory of migrations holding 001_crops.sql; the schema is dropped afterwards."""
    schema = f"test_migrations_{unique}"
    (tmp_path / "001_crops.sql").write_text(FIRST)
    yield schema, tmp_path
    await pool.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


async def recorded(pool: asyncpg.Pool, schema: str) -> dict[str, str | None]:
    rows = await pool.fetch(f'SELECT name, checksum FROM "{schema}".schema_migrations')
    return {row["name"]: row["checksum"] for row in rows}


async def has_table(pool: asyncpg.Pool, schema: str, table: str) -> bool:
    return await pool.fetchval("SELECT to_regclass($1) IS NOT NULL", f'"{schema}".{table}')


def expected(directory: Path) -> dict[str, str]:
    """Every migration's name and the checksum of its file's bytes: the event store's and the directory's."""
    files = {f"events/{p.name}": p for p in EVENT_STORE_SQL.glob("*.sql")}
    files |= {f"{LABEL}/{p.name}": p for p in directory.glob("*.sql")}
    return {name: checksum(path.read_bytes()) for name, path in files.items()}


async def test_each_applied_migration_is_recorded_with_the_sha256_of_its_files_bytes(pool, scratch):
    schema, directory = scratch
    applied = await migrate(pool, schema, [(LABEL, directory)])
    assert f"{LABEL}/001_crops.sql" in applied
    assert await recorded(pool, schema) == expected(directory)


async def test_an_unchanged_start_applies_nothing_and_keeps_the_checksums(pool, scratch):
    schema, directory = scratch
    await migrate(pool, schema, [(LABEL, directory)])
    assert await migrate(pool, schema, [(LABEL, directory)]) == []
    assert await recorded(pool, schema) == expected(directory)


async def test_a_new_file_is_applied_and_recorded_with_its_checksum(pool, scratch):
    schema, directory = scratch
    await migrate(pool, schema, [(LABEL, directory)])
    (directory / "002_plots.sql").write_text(SECOND)
    assert await migrate(pool, schema, [(LABEL, directory)]) == [f"{LABEL}/002_plots.sql"]
    assert await has_table(pool, schema, "plots")
    assert (await recorded(pool, schema))[f"{LABEL}/002_plots.sql"] == checksum(SECOND.encode())


async def test_an_edited_applied_migration_stops_the_start_naming_the_file_and_nothing_is_applied(pool, scratch):
    schema, directory = scratch
    await migrate(pool, schema, [(LABEL, directory)])
    before = await recorded(pool, schema)
    edited = directory / "001_crops.sql"
    edited.write_text(FIRST.replace("text PRIMARY KEY", "text PRIMARY KEY, name text"))
    (directory / "002_plots.sql").write_text(SECOND)  # would be applied, were the start not refused
    with pytest.raises(MigrationChanged) as refused:
        await migrate(pool, schema, [(LABEL, directory)])
    message = str(refused.value)
    assert message.startswith(f"migration file {edited} was edited after it was applied to schema '{schema}'")
    assert checksum(FIRST.encode())[:12] in message and checksum(edited.read_bytes())[:12] in message
    assert "a migration that was applied never changes: add a new file" in message
    assert not await has_table(pool, schema, "plots")
    assert await recorded(pool, schema) == before


async def test_an_event_store_migration_is_checked_as_well(pool, scratch):
    schema, directory = scratch
    await migrate(pool, schema, [(LABEL, directory)])
    await pool.execute(f"""UPDATE "{schema}".schema_migrations SET checksum = repeat('0', 64)
                           WHERE name = 'events/001_event_store.sql'""")  # as if the file had been edited since
    with pytest.raises(MigrationChanged, match="migration file events/sql/001_event_store.sql was edited"):
        await migrate(pool, schema, [(LABEL, directory)])


async def test_a_recorded_migration_whose_file_was_deleted_stops_the_start_naming_it(pool, scratch):
    schema, directory = scratch
    (directory / "002_plots.sql").write_text(SECOND)
    await migrate(pool, schema, [(LABEL, directory)])
    (directory / "002_plots.sql").unlink()
    (directory / "003_later.sql").write_text("CREATE TABLE later (id int);\n")
    with pytest.raises(MigrationMissing) as refused:
        await migrate(pool, schema, [(LABEL, directory)])
    assert str(refused.value).startswith(f"migration {LABEL}/002_plots.sql was applied to schema '{schema}'")
    assert f"file {directory / '002_plots.sql'} does not exist" in str(refused.value)
    assert not await has_table(pool, schema, "later")


async def test_rows_from_before_checksums_get_their_files_checksum_once_and_are_checked_from_then_on(pool, scratch):
    schema, directory = scratch
    await migrate(pool, schema, [(LABEL, directory)])
    # A schema migrated before checksums were recorded: schema_migrations without the column.
    await pool.execute(f'ALTER TABLE "{schema}".schema_migrations DROP COLUMN checksum')
    assert await migrate(pool, schema, [(LABEL, directory)]) == []
    assert await recorded(pool, schema) == expected(directory)
    # A NULL row is trusted as it is, even when its file was edited before the checksum was taken.
    await pool.execute(f"UPDATE \"{schema}\".schema_migrations SET checksum = NULL WHERE name = '{LABEL}/001_crops.sql'")
    (directory / "001_crops.sql").write_text(FIRST + "-- edited before checksums\n")
    assert await migrate(pool, schema, [(LABEL, directory)]) == []
    assert (await recorded(pool, schema))[f"{LABEL}/001_crops.sql"] == checksum((directory / "001_crops.sql").read_bytes())
    (directory / "001_crops.sql").write_text(FIRST)
    with pytest.raises(MigrationChanged, match="001_crops.sql was edited"):
        await migrate(pool, schema, [(LABEL, directory)])


async def test_a_service_whose_applied_migration_was_edited_exits_with_the_reason_and_no_traceback(pool, scratch, infrastructure):
    schema, directory = scratch
    await migrate(pool, schema, [(LABEL, directory)])
    (directory / "001_crops.sql").write_text(FIRST + "-- edited\n")
    runtime = ServiceRuntime("cooperative", directory, config=infrastructure)
    runtime.schema, runtime.sql_dirs = schema, [(LABEL, directory)]
    with pytest.raises(SystemExit) as exit_:
        async with runtime.lifespan():
            pass
    assert str(exit_.value.code).startswith(
        f"cooperative service cannot start: migration file {directory / '001_crops.sql'} "
        f"was edited after it was applied to schema '{schema}'"
    )
    assert exit_.value.__cause__ is None and exit_.value.__suppress_context__
