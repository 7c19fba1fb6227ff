"""The peer the store benches measure farmlink's event store against (the eventsourcing library's PostgreSQL
recorder), the synthetic market prices both sides write, and the server settings both report."""

from collections.abc import Callable
from datetime import date, datetime, timedelta, timezone
from typing import Any

import asyncpg

from contracts.catalogue import PRODUCTS
from contracts.market import MarketPriceObserved
from events.hashchain import canonical_json

PEER_VERSION = "9.5.6"
PEER = f"eventsourcing {PEER_VERSION} PostgresApplicationRecorder"
PEER_TOPIC = "contracts.market:MarketPriceObserved"
STREAM_LENGTH = 100
"""Events per stream before a writer starts a new one (a batch of 100 fills one stream)."""
MARKETS = ("Tongren", "Yanhe", "Dejiang", "Sinan")


# ---------------------------------------------------------------- payloads


def price_model(i: int) -> MarketPriceObserved:
    """The i-th synthetic market price: varied product, grade, market, price and day."""
    return MarketPriceObserved(
        product=PRODUCTS[i % len(PRODUCTS)],
        grade="ABC"[i % 3],
        market=MARKETS[i % len(MARKETS)],
        price_fen=500 + i % 997,
        observed_on=date(2020, 1, 1) + timedelta(days=i % 366),
    )


def peer_state(model: MarketPriceObserved, at: datetime) -> bytes:
    """The peer's stored state for a price: the event's attributes and its timestamp as JSON
    (what the library's own transcoder stores for a domain event), about the size of our payload."""
    return canonical_json(model.model_dump(mode="json") | {"timestamp": at.isoformat()}).encode("utf-8")


def payload_sets(count: int) -> tuple[list[MarketPriceObserved], list[bytes]]:
    models = [price_model(i) for i in range(count)]
    now = datetime.now(timezone.utc)
    return models, [peer_state(m, now) for m in models]


# ---------------------------------------------------------------- the peer


def _peer_classes() -> Any:
    try:
        from eventsourcing import postgres, persistence
    except ImportError as error:  # pragma: no cover - depends on the bench extra
        raise RuntimeError(f'the peer is not installed: pip install "eventsourcing[postgres]=={PEER_VERSION}"') from error
    return postgres, persistence


class Peer:
    """The eventsourcing PostgreSQL application recorder in a schema of its own (synchronous)."""

    def __init__(self, dsn: str, schema: str, pool_size: int):
        import psycopg.conninfo

        postgres, persistence = _peer_classes()
        self.StoredEvent = persistence.StoredEvent
        info = psycopg.conninfo.conninfo_to_dict(dsn)
        self.schema = schema
        self.datastore = postgres.PostgresDatastore(
            dbname=str(info.get("dbname") or info.get("user")),
            host=str(info.get("host") or "localhost"),
            port=str(info.get("port") or 5432),
            user=str(info.get("user")),
            password=str(info.get("password") or ""),
            schema=schema,
            pool_size=pool_size,
        )
        self.recorder = postgres.PostgresApplicationRecorder(self.datastore, events_table_name="stored_events")

    def create(self) -> None:
        self.recorder.create_table()

    def setting(self, name: str) -> str:
        with self.datastore.cursor() as curs:
            curs.execute(f"SHOW {name}")
            return str(next(iter(curs.fetchone().values())))

    def close(self) -> None:
        self.datastore.close()


def psycopg_driver() -> str:
    try:
        import psycopg

        return f"psycopg {psycopg.__version__} ({psycopg.pq.__impl__} libpq wrapper)"
    except ImportError:  # pragma: no cover
        return "psycopg not installed"


async def server_settings(admin: asyncpg.Pool) -> dict[str, str]:
    names = (
        "server_version",
        "fsync",
        "synchronous_commit",
        "wal_sync_method",
        "commit_delay",
        "full_page_writes",
        "shared_buffers",
    )
    rows = await admin.fetch("SELECT name, setting FROM pg_settings WHERE name = ANY($1::text[])", list(names))
    return {row["name"]: row["setting"] for row in rows}


def warn_unless_durable(settings: dict[str, str], say: Callable[..., Any]) -> None:
    if settings.get("fsync") != "on" or settings.get("synchronous_commit") != "on":
        say(
            f"WARNING: the server runs with fsync={settings.get('fsync')}, synchronous_commit="
            f"{settings.get('synchronous_commit')}: figures are not durable-commit figures"
        )


def verdict(flag: bool) -> str:
    return "met" if flag else "NOT met"
