"""Least privilege in PostgreSQL, against the real server: what a service's role may and may not do.

Each test works as a login role of its own, created the way `farmlink infra up` creates the
services' roles (farmlink.operations.infra.ensure_login_roles) and granted the way a service's start
grants them (events.migrations.migrate with service_role): so the denials proven here are
the ones the services live under. The last tests check the services' real roles.
"""

import secrets
import uuid
from datetime import date
from pathlib import Path
from urllib.parse import quote, urlsplit

import asyncpg
import pytest

from contracts.market import MarketPriceObserved
from events.migrations import migrate
from events.relay import publish_pending, transactional_producer
from events.settings import APP_ROLE, AUDITOR, role_env, role_name
from events.store import EventStore, NewEvent
from farmlink.operations.infra import ensure_login_roles
from farmlink.operations.processes import SERVICES
from tests.kafka_helpers import login, read_topic

pytestmark = pytest.mark.integration

SETTLEMENT_SQL = Path(__file__).resolve().parents[2] / "services" / "settlement" / "sql"
DENIED = asyncpg.InsufficientPrivilegeError


def as_role(dsn: str, role: str, password: str) -> str:
    """The owner's DSN with another role's name and password."""
    parts = urlsplit(dsn)
    host = f"[{parts.hostname}]" if ":" in (parts.hostname or "") else parts.hostname
    netloc = f"{quote(role, safe='')}:{quote(password, safe='')}@{host}" + (f":{parts.port}" if parts.port else "")
    return parts._replace(netloc=netloc).geturl()


async def drop_role(owner: asyncpg.Connection, role: str) -> None:
    database = await owner.fetchval("SELECT current_database()")
    await owner.execute(f'REVOKE ALL ON DATABASE "{database}" FROM "{role}"')
    await owner.execute(f'DROP ROLE IF EXISTS "{role}"')


@pytest.fixture
async def owner(infrastructure):
    conn = await asyncpg.connect(infrastructure.dsn)
    yield conn
    await conn.close()


@pytest.fixture
async def world(infrastructure, owner, unique):
    """Two service schemas migrated by the owner (settlement's tables: events, outbox, inbox and
    projections); a service role granted on the first only; a reader role on both."""
    service, reader = f"farmlink_test_{unique}", f"farmlink_test_reader_{unique}"
    passwords = {service: secrets.token_urlsafe(18), reader: secrets.token_urlsafe(18)}
    await ensure_login_roles(infrastructure.dsn, passwords)
    mine, theirs = f"test_roles_{unique}", f"test_roles_other_{unique}"
    for schema in (mine, theirs):
        await migrate(
            owner,
            schema,
            [("services/settlement", SETTLEMENT_SQL)],
            service_role=service if schema == mine else None,
            readers=(reader,),
        )
    conn = await asyncpg.connect(as_role(infrastructure.dsn, service, passwords[service]))
    await conn.execute(f'SET search_path TO "{mine}"')
    reader_conn = await asyncpg.connect(as_role(infrastructure.dsn, reader, passwords[reader]))
    yield dict(
        conn=conn,
        reader=reader_conn,
        mine=mine,
        theirs=theirs,
        role=service,
        dsn=as_role(infrastructure.dsn, service, passwords[service]),
    )
    await conn.close()
    await reader_conn.close()
    for schema in (mine, theirs):
        await owner.execute(f'DROP SCHEMA "{schema}" CASCADE')
    for role in passwords:
        await drop_role(owner, role)


def price(fen: int) -> NewEvent:
    return NewEvent(
        MarketPriceObserved(product="chili", grade="A", market="Tongren", price_fen=fen, observed_on=date(2020, 8, 1))
    )


async def test_a_service_role_appends_and_reads_events_in_its_own_schema(world):
    pool = await asyncpg.create_pool(world["dsn"], min_size=1, max_size=2)
    try:
        store = EventStore(pool, world["mine"], producer="test", router=lambda _: None)
        await store.append("prices-chili", [price(800), price(810)], 0, correlation_id="c")
        async with store.transaction() as uow:
            assert await uow.first_time("test-consumer", "m1")
            assert not await uow.first_time("test-consumer", "m1")
        assert [e.payload["price_fen"] for e in await store.read_stream("prices-chili")] == [800, 810]
    finally:
        await pool.close()


async def test_the_relay_publishes_and_deletes_outbox_rows_as_the_service_role(world, infrastructure, topic):
    pool = await asyncpg.create_pool(world["dsn"], min_size=1, max_size=1)
    producer = transactional_producer(infrastructure.bootstrap, world["mine"], **login())
    await producer.start()
    try:
        store = EventStore(pool, world["mine"], producer="test")
        async with store.transaction() as uow:
            await uow.enqueue(topic, "k", b"receipt")
        assert await publish_pending(world["conn"], world["mine"], producer) == 1
        assert await world["conn"].fetchval("SELECT count(*) FROM outbox") == 0
        assert [r.value for r in await read_topic(infrastructure.bootstrap, topic, 1)] == [b"receipt"]
    finally:
        await producer.stop()
        await pool.close()


async def test_a_service_role_updates_its_projections(world):
    conn = world["conn"]
    await conn.execute("INSERT INTO incomes VALUES ('h1', 'chili', 100)")
    await conn.execute(
        "INSERT INTO incomes VALUES ('h1', 'chili', 50) ON CONFLICT (household_id, product) "
        "DO UPDATE SET paid_fen = incomes.paid_fen + EXCLUDED.paid_fen"
    )
    await conn.execute("UPDATE incomes SET paid_fen = paid_fen + 1 WHERE household_id = 'h1'")
    assert await conn.fetchval("SELECT paid_fen FROM incomes") == 151


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE events SET payload = '{}'",
        "DELETE FROM events",
        "TRUNCATE events",
        "UPDATE inbox SET consumer = 'x'",
        "DELETE FROM inbox",
        "TRUNCATE inbox",
        "UPDATE outbox SET topic = 'elsewhere'",
        "TRUNCATE outbox",
        "DELETE FROM incomes",
        "TRUNCATE incomes",
        "SELECT * FROM schema_migrations",
        "DELETE FROM schema_migrations",
    ],
)
async def test_a_service_role_may_not_rewrite_or_erase_history(world, statement):
    with pytest.raises(DENIED):
        await world["conn"].execute(statement)


async def test_a_service_role_cannot_read_or_write_another_services_schema(world):
    theirs = world["theirs"]
    with pytest.raises(DENIED, match="schema"):
        await world["conn"].fetch(f'SELECT * FROM "{theirs}".events')
    with pytest.raises(DENIED, match="schema"):
        await world["conn"].execute(f"INSERT INTO \"{theirs}\".inbox (consumer, message_id) VALUES ('x', 'y')")
    with pytest.raises(DENIED, match="schema"):
        await world["conn"].execute(f'DELETE FROM "{theirs}".outbox')


@pytest.mark.parametrize(
    "statement",
    [
        "DROP TABLE events",
        "ALTER TABLE events ADD COLUMN note text",
        "ALTER TABLE events DISABLE TRIGGER ALL",
        "CREATE TABLE mine (x int)",
        "CREATE TABLE public.mine (x int)",
        "CREATE TEMP TABLE mine (x int)",
        "CREATE SCHEMA mine",
        "CREATE FUNCTION f() RETURNS int LANGUAGE sql AS 'SELECT 1'",
        "CREATE INDEX events_by_producer ON events (producer)",
    ],
)
async def test_a_service_role_cannot_drop_alter_or_create_objects(world, statement):
    with pytest.raises(DENIED):
        await world["conn"].execute(statement)


async def test_a_service_role_cannot_pass_its_privileges_on(world):
    await world["conn"].execute("GRANT SELECT, INSERT ON events TO PUBLIC")  # PostgreSQL only warns: nothing granted
    grantees = await world["conn"].fetch(
        "SELECT DISTINCT (aclexplode(relacl)).grantee FROM pg_class WHERE oid = 'events'::regclass"
    )
    assert 0 not in {r["grantee"] for r in grantees}, "PUBLIC (grantee 0) must have no privilege on events"


async def test_the_owner_migrates_and_a_later_migrations_tables_are_granted_by_their_kind(world, owner, tmp_path):
    (tmp_path / "001_ledger.sql").write_text((SETTLEMENT_SQL / "001_ledger.sql").read_text())
    (tmp_path / "002_later.sql").write_text(
        "ALTER TABLE incomes ADD COLUMN note text;\nCREATE TABLE receipts (receipt_id text PRIMARY KEY, n bigserial);"
    )
    applied = await migrate(owner, world["mine"], [("services/settlement", tmp_path)], service_role=world["role"])
    assert applied == ["services/settlement/002_later.sql"]
    conn = world["conn"]
    await conn.execute("INSERT INTO receipts (receipt_id) VALUES ('r1')")  # the bigserial's sequence too
    await conn.execute("UPDATE receipts SET receipt_id = 'r2'")
    await conn.execute("INSERT INTO incomes (household_id, product, paid_fen, note) VALUES ('h', 'p', 1, 'n')")
    with pytest.raises(DENIED):
        await conn.execute("DELETE FROM receipts")
    with pytest.raises(DENIED):
        await conn.execute("UPDATE events SET producer = 'x'")


async def test_a_reader_reads_every_schema_and_writes_nothing(world):
    reader = world["reader"]
    for schema in (world["mine"], world["theirs"]):
        assert await reader.fetchval(f'SELECT count(*) FROM "{schema}".events') == 0
        for statement in (
            f"INSERT INTO \"{schema}\".inbox (consumer, message_id) VALUES ('x', 'y')",
            f'DELETE FROM "{schema}".outbox',
            f'TRUNCATE "{schema}".events',
        ):
            with pytest.raises(DENIED):
                await reader.execute(statement)


@pytest.mark.parametrize("name", [*SERVICES, AUDITOR])
async def test_each_service_and_the_auditor_log_in_as_a_role_of_their_own_with_no_special_powers(infrastructure, name):
    if infrastructure.service_dsn(name) == infrastructure.dsn:
        pytest.skip(f"external database without {role_env(name)}: {name} works as the owner")
    conn = await asyncpg.connect(infrastructure.service_dsn(name))
    try:
        row = await conn.fetchrow(
            "SELECT current_user AS role, rolsuper, rolcreaterole, rolcreatedb, rolbypassrls, "
            "has_database_privilege(current_database(), 'CREATE, TEMP') AS creates "
            "FROM pg_roles WHERE rolname = current_user"
        )
    finally:
        await conn.close()
    if not infrastructure.uses_external_database:
        assert row["role"] == role_name(name)
    assert row["role"] != APP_ROLE
    assert not any((row["rolsuper"], row["rolcreaterole"], row["rolcreatedb"], row["rolbypassrls"], row["creates"]))


async def test_a_running_service_works_as_its_role_and_its_schema_belongs_to_the_owner(infrastructure, owner):
    from services.market import app as market

    runtime = market.runtime
    runtime.schema = f"test_market_{uuid.uuid4().hex[:8]}"
    try:
        await runtime.open(with_relay=False)
        role = await runtime.pool.fetchval("SELECT current_user")
        schema_owner = await owner.fetchval(
            "SELECT pg_get_userbyid(nspowner) FROM pg_namespace WHERE nspname = $1", runtime.schema
        )
        assert schema_owner == await owner.fetchval("SELECT current_user")
        if not (infrastructure.uses_external_database and role == schema_owner):
            assert role != schema_owner
            with pytest.raises(DENIED):
                await runtime.pool.execute(f'DELETE FROM "{runtime.schema}".events')
    finally:
        await owner.execute(f'DROP SCHEMA IF EXISTS "{runtime.schema}" CASCADE')
        await runtime.close()
        runtime.schema = runtime.name
        runtime.pool = runtime.store = None
