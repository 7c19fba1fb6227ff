"""Which PostgreSQL role each part connects as, and what the migrations grant it (no server needed;
tests/integration/test_postgres_roles.py proves the grants against the real one)."""

import logging
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest

from events import settings as settings_module
from events.migrations import TABLE_PRIVILEGES, table_privileges
from events.settings import Settings, role_name
from farmlink.operations.infra import login_roles
from farmlink.operations.processes import SERVICES

pytestmark = pytest.mark.unit

OWNER_URL = "postgresql://owner:owner-secret@db.example:5432/farmlink"


@pytest.fixture
def local(tmp_path: Path, monkeypatch) -> Settings:
    monkeypatch.delenv("DATABASE_URL", raising=False)
    return Settings(farmlink_home=tmp_path, farmlink_postgres_port=17999)


@pytest.fixture
def external(monkeypatch) -> Settings:
    for name in (*SERVICES, "auditor"):
        monkeypatch.delenv(f"DATABASE_URL_{name.upper()}", raising=False)
    monkeypatch.setattr(settings_module, "_warned", set())
    return Settings(database_url=OWNER_URL)


def test_locally_each_service_connects_as_its_own_role_with_its_generated_password(local):
    url = urlsplit(local.service_dsn("cooperative"))
    assert (url.username, url.hostname, url.port, url.path) == ("farmlink_cooperative", "127.0.0.1", 17999, "/farmlink")
    secret = (local.home / "secrets" / "postgres-farmlink_cooperative").read_text().strip()
    assert unquote(url.password) == secret
    assert (local.home / "secrets" / "postgres-farmlink_cooperative").stat().st_mode & 0o077 == 0


def test_locally_the_owner_and_the_auditor_are_other_roles(local):
    assert urlsplit(local.dsn).username == "farmlink"
    assert urlsplit(local.auditor_dsn).username == "farmlink_auditor"


def test_an_external_service_uses_its_own_url_when_set(external, monkeypatch):
    monkeypatch.setenv("DATABASE_URL_BUYER", "postgresql://farmlink_buyer:b@db.example:5432/farmlink")
    assert urlsplit(external.service_dsn("buyer")).username == "farmlink_buyer"


def test_an_external_service_without_its_url_falls_back_to_the_owner_and_warns_once(external, caplog):
    with caplog.at_level(logging.WARNING, logger="events.settings"):
        assert external.service_dsn("market") == OWNER_URL
        assert external.service_dsn("market") == OWNER_URL
    warnings = [r.getMessage() for r in caplog.records if "DATABASE_URL_MARKET" in r.getMessage()]
    assert len(warnings) == 1 and "without least privilege" in warnings[0]


def test_infra_up_keeps_every_local_role_in_step_with_its_secret_file(local):
    roles = login_roles(local)
    assert set(roles) == {role_name(n) for n in (*SERVICES, "gateway", "auditor")}
    assert all(roles[r] == (local.home / "secrets" / f"postgres-{r}").read_text().strip() for r in roles)


def test_infra_up_creates_only_the_external_roles_named_by_their_urls(external, monkeypatch):
    monkeypatch.setenv("DATABASE_URL_SETTLEMENT", "postgresql://farmlink_settlement:p%40ss@db.example:5432/farmlink")
    monkeypatch.setenv("DATABASE_URL_MATCHING", OWNER_URL)  # the owner itself: nothing to create
    assert login_roles(external) == {"farmlink_settlement": "p@ss"}


def test_events_are_only_ever_read_and_appended():
    assert table_privileges("events") == ("SELECT", "INSERT")
    for table in TABLE_PRIVILEGES:
        assert not {"TRUNCATE", "REFERENCES", "TRIGGER"} & set(table_privileges(table))


def test_a_table_the_store_does_not_name_is_a_projection_never_deleted():
    assert table_privileges("a_table_a_later_migration_adds") == ("SELECT", "INSERT", "UPDATE")
    assert table_privileges("schema_migrations") == ()


def test_the_auditors_role_is_the_user_of_its_url_or_farmlink_auditor(external, monkeypatch, local):
    assert local.role_of("auditor") == "farmlink_auditor"
    assert external.role_of("auditor") == "farmlink_auditor"
    monkeypatch.setenv("DATABASE_URL_AUDITOR", "postgresql://readonly:r@db.example:5432/farmlink")
    assert external.role_of("auditor") == "readonly"
