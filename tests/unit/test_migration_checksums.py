"""An applied migration never changes: the checksum the runner records, and how a recorded one is compared with its file."""

import hashlib
from pathlib import Path

import pytest

from events.migrations import (
    EVENT_STORE_SQL,
    Migration,
    MigrationChanged,
    MigrationMissing,
    check_applied,
    checksum,
    read_migration,
    shown,
    sql_text,
)

pytestmark = pytest.mark.unit

SQL = b"CREATE TABLE t (id int);\nCREATE INDEX ON t (id);\n"


def migration(name: str, data: bytes, path: Path | None = None) -> Migration:
    data = sql_text(data)
    return Migration(name, path or Path(f"/nowhere/{name}"), data.decode(), checksum(data))


def test_the_checksum_is_the_sha256_in_hex_of_the_files_bytes():
    assert checksum(SQL) == hashlib.sha256(SQL).hexdigest()
    assert len(checksum(SQL)) == 64


def test_crlf_and_lone_cr_line_ends_read_as_lf_so_a_checkout_that_rewrote_them_is_not_an_edit():
    assert checksum(SQL.replace(b"\n", b"\r\n")) == checksum(SQL)
    assert checksum(SQL.replace(b"\n", b"\r")) == checksum(SQL)


@pytest.mark.parametrize(
    "edit",
    [
        SQL + b"\n",  # a blank line more
        SQL.replace(b"int", b"bigint"),
        SQL.replace(b"CREATE", b"create", 1),
        SQL.replace(b" ", b"  ", 1),
        b"",
    ],
)
def test_any_other_change_to_the_bytes_changes_the_checksum(edit):
    assert checksum(edit) != checksum(SQL)


def test_a_read_migration_runs_the_same_text_it_hashed(tmp_path):
    path = tmp_path / "001_x.sql"
    path.write_bytes(SQL.replace(b"\n", b"\r\n"))
    m = read_migration("svc/001_x.sql", path)
    assert m.sql == SQL.decode()
    assert m.checksum == checksum(SQL) == hashlib.sha256(m.sql.encode()).hexdigest()


def test_recorded_migrations_that_match_their_files_pass():
    files = [migration("events/001_a.sql", SQL), migration("services/x/001_b.sql", b"SELECT 1;\n")]
    check_applied("x", {m.name: m.checksum for m in files}, files)


def test_migrations_not_yet_applied_are_not_a_mismatch():
    files = [migration("events/001_a.sql", SQL), migration("services/x/001_b.sql", b"SELECT 1;\n")]
    check_applied("x", {}, files)
    check_applied("x", {"events/001_a.sql": files[0].checksum}, files)


def test_a_row_from_before_checksums_is_trusted_as_it_is():
    check_applied("x", {"events/001_a.sql": None}, [migration("events/001_a.sql", SQL)])


def test_an_edited_migration_is_refused_with_the_file_the_schema_both_checksums_and_what_to_do(tmp_path):
    path = tmp_path / "001_registry.sql"
    before, after = migration("services/x/001_registry.sql", SQL), migration("services/x/001_registry.sql", SQL + b"--\n", path)
    with pytest.raises(MigrationChanged) as refused:
        check_applied("cooperative", {before.name: before.checksum}, [after])
    message = str(refused.value)
    assert message.startswith(f"migration file {path} was edited after it was applied to schema 'cooperative'")
    assert before.checksum[:12] in message and after.checksum[:12] in message
    assert "a migration that was applied never changes: add a new file" in message
    assert "Nothing was migrated" in message
    assert (refused.value.name, refused.value.recorded, refused.value.actual) == (before.name, before.checksum, after.checksum)
    assert not isinstance(refused.value, MigrationMissing)


def test_the_first_edited_migration_in_file_order_is_the_one_named():
    files = [migration("events/001_a.sql", b"SELECT 1;\n"), migration("events/002_b.sql", b"SELECT 2;\n")]
    with pytest.raises(MigrationChanged) as refused:
        check_applied("x", {"events/001_a.sql": checksum(b"one"), "events/002_b.sql": checksum(b"two")}, files)
    assert refused.value.name == "events/001_a.sql"


def test_a_recorded_migration_whose_file_is_gone_is_refused_naming_the_file_it_looked_for(tmp_path):
    with pytest.raises(MigrationMissing) as refused:
        check_applied("x", {"services/x/003_gone.sql": checksum(SQL)}, [], {"services/x": tmp_path})
    message = str(refused.value)
    assert message.startswith("migration services/x/003_gone.sql was applied to schema 'x'")
    assert f"file {tmp_path / '003_gone.sql'} does not exist" in message
    assert "a migration that was applied is never deleted or renamed: restore it" in message
    assert refused.value.path == tmp_path / "003_gone.sql"
    assert isinstance(refused.value, MigrationChanged) and isinstance(refused.value, ValueError)


def test_a_recorded_migration_from_a_directory_this_start_did_not_pass_is_refused_too():
    with pytest.raises(MigrationMissing, match="passed no directory labelled 'services/y'"):
        check_applied("x", {"services/y/001_a.sql": None}, [])


def test_files_inside_the_repository_are_named_from_its_root():
    assert shown(EVENT_STORE_SQL / "001_event_store.sql") == "events/sql/001_event_store.sql"
    assert shown(Path("/tmp/elsewhere/001.sql")) == "/tmp/elsewhere/001.sql"
