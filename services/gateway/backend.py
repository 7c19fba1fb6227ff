"""The gateway's running parts: its PostgreSQL schema and role, its Kafka principal, the projection consumer,
the outbox relay (its dead letters), the publisher of posted inputs, the in-process fan-out to SSE
streams, and the probe. The HTTP routes (services/gateway/app.py) see it through `Backend`.
"""

import asyncio
import logging
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import asyncpg
import orjson
from prometheus_client import REGISTRY
from faststream.kafka import KafkaBroker, KafkaMessage
from faststream.kafka.prometheus import KafkaPrometheusMiddleware
from faststream.middlewares import AckPolicy

from contracts.topics import BUYER_EVENTS, COOPERATIVE_EVENTS, FILLS, OFFERS, SETTLEMENT_EVENTS
from events.access import BY_NAME, CONSUMER_GROUPS, GATEWAY
from events.consumer import Delivery
from events.migrations import MigrationChanged, migrate
from events.relay import OutboxRelay
from events.runtime import FETCH_WAIT_MS, POLL_WAIT_MS, deliveries_of, raw_body, tolerant_parser
from events.settings import AUDITOR, Settings, kafka_options, kafka_security, settings
from events.store import EventStore, create_pool
from events.handling import consume_batch
from services.gateway import office, projection
from services.gateway.ops import KafkaProbe, Probe

log = logging.getLogger(__name__)

SCHEMA = "gateway"
GROUP = BY_NAME[GATEWAY].groups[0]
SQL = Path(__file__).parent / "sql"
OFFICE_TOPICS = (COOPERATIVE_EVENTS, BUYER_EVENTS, SETTLEMENT_EVENTS)
"""Topics whose records change the office page's figures (households, plantings, commitments, plans, payments)."""


class Hub:
    """Fan-out to the open SSE streams after each committed batch: a wake-up for fill streams (they read
    their buyer's new fills from the projection, in commit order) and the offer changes themselves."""

    def __init__(self) -> None:
        self.listeners: set[asyncio.Queue] = set()

    def listen(self) -> asyncio.Queue:
        queue: asyncio.Queue = asyncio.Queue(maxsize=1000)
        self.listeners.add(queue)
        return queue

    def leave(self, queue: asyncio.Queue) -> None:
        self.listeners.discard(queue)

    def publish(self, item: tuple[str, Any]) -> None:
        for queue in list(self.listeners):
            try:
                queue.put_nowait(item)
            except asyncio.QueueFull:  # a stream that stopped reading: it ends once drained, the client reconnects
                self.listeners.discard(queue)

    def committed(self, deliveries: Iterable[Delivery]) -> None:
        """A batch is in the projection: wake fill streams, send offer changes, tell the office page its figures moved."""
        fills = office = False
        for delivery in deliveries:
            if delivery.topic == FILLS:
                fills = True
            elif delivery.topic in OFFICE_TOPICS:
                office = True
            elif delivery.topic == OFFERS:
                try:
                    change = projection.offer_change(projection.decode(delivery))
                except Exception:
                    continue
                if change is not None:
                    self.publish(("offer", change))
        if fills:
            self.publish(("fills", None))
        if fills or office:
            self.publish(("office", None))


class Backend:
    """What the routes need: reads of the projection, the registered keys, publishing, the hub, the probe."""

    def __init__(self, config: Settings | None = None):
        self.config = config or settings()
        self.hub = Hub()
        self.pool: asyncpg.Pool | None = None
        self.store: EventStore | None = None
        self.relay: OutboxRelay | None = None
        self.probe: Probe | None = None
        self.office_token: str | None = None
        # FastStream's Prometheus middleware: the projection consumer's batches and the posted inputs' publishes
        # (faststream_* series on /metrics, app_name farmlink-gateway).
        self.broker = KafkaBroker(
            self.config.bootstrap,
            client_id="farmlink-gateway",
            enable_idempotence=True,
            security=kafka_security(self.config, GATEWAY),
            allow_auto_create_topics=False,
            middlewares=(KafkaPrometheusMiddleware(registry=REGISTRY, app_name="farmlink-gateway"),),
        )
        subscriber = self.broker.subscriber(
            *projection.TOPICS,
            group_id=GROUP,
            batch=True,
            max_records=500,
            batch_timeout_ms=POLL_WAIT_MS,  # the wait ends when a record comes (events/runtime.py)
            fetch_max_wait_ms=FETCH_WAIT_MS,
            auto_offset_reset="earliest",
            ack_policy=AckPolicy.NACK_ON_ERROR,
            decoder=raw_body,
            parser=tolerant_parser,
            isolation_level="read_committed",
        )
        subscriber(self._on_records)

    async def _on_records(self, body: list[bytes], message: KafkaMessage) -> None:
        deliveries = deliveries_of(message)
        assert self.store is not None
        await consume_batch(self.store, projection.PROJECTION, deliveries)
        self.hub.committed(deliveries)

    async def open(self) -> None:
        """Connect as the gateway's role, migrate its schema as the owner, start the relay, the probe and the consumer."""
        dsn = self.config.service_dsn(SCHEMA)
        self.pool = await create_pool(dsn, min_size=1, max_size=8)
        role = await self.pool.fetchval("SELECT current_user")
        owner = await asyncpg.connect(self.config.dsn)
        try:
            await migrate(owner, SCHEMA, [("services/gateway", SQL)], service_role=role, readers=(self.config.role_of(AUDITOR),))
        except MigrationChanged as refused:  # an applied migration was edited: say so, no traceback
            await self.pool.close()
            raise SystemExit(f"the gateway cannot start: {refused}") from None
        finally:
            await owner.close()
        self.store = EventStore(self.pool, SCHEMA, producer="service:gateway")
        self.office_token = office.office_token(self.config)
        options = kafka_options(self.config, GATEWAY)
        self.relay = OutboxRelay(dsn, SCHEMA, self.config.bootstrap, kafka=options)
        await self.relay.start()
        kafka = KafkaProbe(self.config.bootstrap, options, (*CONSUMER_GROUPS, GROUP))
        await kafka.start()
        self.probe = Probe(kafka, self.pool, self.config.auditor_dsn)
        await self.broker.start()

    async def close(self) -> None:
        await self.broker.stop()
        if self.probe is not None:
            await self.probe.kafka.stop()
        if self.relay is not None:
            await self.relay.stop()
        if self.pool is not None:
            await self.pool.close()

    # -- writes ---------------------------------------------------------------------------------
    async def publish(self, topic: str, key: bytes, value: bytes) -> None:
        """Send the posted bytes unchanged to the owning input topic and wait until Kafka has them (acks=all)."""
        await self.broker.publish(value, topic, key=key)

    async def record_posted(self, message_id: str, producer: str, input_type: str) -> None:
        await self._db.execute(
            "INSERT INTO gateway.posted (message_id, producer, type) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
            message_id,
            producer,
            input_type,
        )

    # -- reads ----------------------------------------------------------------------------------
    @property
    def _db(self) -> asyncpg.Pool:
        if self.pool is None:
            raise RuntimeError("the gateway has not started")
        return self.pool

    async def key_of(self, party: str) -> str | None:
        return await self._db.fetchval("SELECT public_key FROM gateway.parties WHERE party = $1 AND revoked IS NULL", party)

    async def posted_by(self, message_id: str) -> str | None:
        return await self._db.fetchval("SELECT producer FROM gateway.posted WHERE message_id = $1", message_id)

    async def receipts(self, message_id: str) -> list[dict]:
        rows = await self._db.fetch(
            "SELECT receipt::text FROM gateway.receipts WHERE message_id = $1 ORDER BY service, status", message_id
        )
        return [orjson.loads(row[0]) for row in rows]

    async def offers(self) -> list[dict]:
        rows = await self._db.fetch(
            "SELECT lot_id, product, grade, cooperative_id, county, township, quantity_left, available_from, expires_on "
            "FROM gateway.offers WHERE open ORDER BY product, lot_id"
        )
        return [projection.fill_row_json(row) for row in rows]

    async def fills(self, buyer_id: str, after: int = 0, limit: int = 1000) -> list[dict]:
        rows = await self._db.fetch(
            "SELECT * FROM gateway.fills WHERE buyer_id = $1 AND seq > $2 ORDER BY seq LIMIT $3", buyer_id, after, limit
        )
        return [projection.fill_row_json(row) for row in rows]

    async def last_fill(self, buyer_id: str) -> int:
        return await self._db.fetchval("SELECT COALESCE(max(seq), 0) FROM gateway.fills WHERE buyer_id = $1", buyer_id)

    async def commitments(self, buyer_id: str) -> list[dict]:
        commitments = await self._db.fetch(
            "SELECT commitment_id, terms::text FROM gateway.commitments WHERE buyer_id = $1 ORDER BY commitment_id", buyer_id
        )
        activations = await self._db.fetch(
            "SELECT * FROM gateway.fills WHERE buyer_id = $1 AND outlet_kind = 'commitment' ORDER BY seq", buyer_id
        )
        by_commitment: dict[str, list[dict]] = {}
        for row in activations:
            fill = projection.fill_row_json(row)
            by_commitment.setdefault(row["outlet_id"], []).append(
                {
                    name: fill[name]
                    for name in (
                        "fill_id",
                        "lot_id",
                        "cooperative_id",
                        "quantity",
                        "price_as_of",
                        "market_price_fen",
                        "floor_price_fen",
                        "unit_price_fen",
                        "price_basis",
                        "revenue_fen",
                        "committed_at",
                    )
                }
            )
        return [{**orjson.loads(row["terms"]), "activations": by_commitment.get(row["commitment_id"], [])} for row in commitments]

    async def lots(self, cooperative_id: str) -> list[dict]:
        lots = await self._db.fetch(
            "SELECT lot_id, product, grade, quantity, available_from, expires_on, contributions::text "
            "FROM gateway.lots WHERE cooperative_id = $1 ORDER BY lot_id",
            cooperative_id,
        )
        fills = await self._db.fetch("SELECT * FROM gateway.fills WHERE cooperative_id = $1 ORDER BY seq", cooperative_id)
        by_lot: dict[str, list[dict]] = {}
        for row in fills:
            by_lot.setdefault(row["lot_id"], []).append(projection.fill_row_json(row))
        result = []
        for row in lots:
            lot_fills = by_lot.get(row["lot_id"], [])
            income: dict[str, int] = {}
            for fill in lot_fills:
                for household, fen in fill["household_income_fen"].items():
                    income[household] = income.get(household, 0) + fen
            lot = projection.fill_row_json({k: v for k, v in row.items() if k != "contributions"})
            result.append(
                {
                    **lot,
                    "contributions": orjson.loads(row["contributions"]),
                    "fills": lot_fills,
                    "household_income_fen": dict(sorted(income.items())),
                    "revenue_fen": sum(f["revenue_fen"] for f in lot_fills),
                }
            )
        return result

    async def office_view(self) -> dict:
        """The pairing office's page, as one document (services/gateway/office.py)."""
        return await office.view(self._db, await self.offers())

    async def all_fills(self, after: int = 0, limit: int = 1000) -> list[dict]:
        """Every buyer's fills after `after` (the office's stream)."""
        return await office.fills_after(self._db, after, limit)

    async def projection_counts(self):
        from services.gateway.metrics import projection_families

        async with self._db.acquire() as conn:
            return await projection_families(conn)
