"""How the system is doing, for /readyz and /metrics: consumer groups, lag, outboxes, and the projection's counts.

Kafka: as the gateway's own principal, which may describe the farmlink.* consumer groups and
the offsets of every topic they consume (events/access.py, `describe`), never read them. Lag per
group is end offset minus committed offset over its partitions (a relay transaction's commit
marker takes an offset, so an idle group may show a lag of about one per partition written).

Outboxes live in each service's schema, which the gateway's role may not read; the probe reads
them as the read-only auditor role (`farmlink_auditor`, DATABASE_URL_AUDITOR), counting rows and
nothing else: depth, and the age of the oldest row, from the recorded time of the event it
carries (a receipt or dead letter alone has no time: its age shows as that of the oldest event).
"""

import asyncio
import logging
import time
from dataclasses import dataclass, field

import asyncpg
from aiokafka import AIOKafkaConsumer
from aiokafka.admin import AIOKafkaAdminClient
from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient

log = logging.getLogger(__name__)

SERVICE_SCHEMAS = ("cooperative", "buyer", "market", "matching", "settlement", "pairing", "feeds")
"""The services' schemas (the gateway imports no service; these names are their schemas)."""


@dataclass
class GroupState:
    group: str
    members: int
    state: str
    lag: int | None


@dataclass
class OutboxState:
    service: str
    depth: int
    oldest_age_s: float


@dataclass
class Health:
    kafka: str = "unknown"
    postgres: str = "unknown"
    groups: list[GroupState] = field(default_factory=list)
    outboxes: list[OutboxState] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    @property
    def ready(self) -> bool:
        return not self.problems


def _librdkafka_config(bootstrap: str, options: dict) -> dict:
    """aiokafka's login options (events.settings.kafka_options) as librdkafka's configuration."""
    config = {"bootstrap.servers": bootstrap, "security.protocol": options.get("security_protocol", "PLAINTEXT")}
    if options.get("sasl_mechanism"):
        config |= {
            "sasl.mechanism": options["sasl_mechanism"],
            "sasl.username": options.get("sasl_plain_username", ""),
            "sasl.password": options.get("sasl_plain_password", ""),
        }
    return config


class KafkaProbe:
    """Consumer groups' members and lag, with the gateway's own login."""

    def __init__(self, bootstrap: str, options: dict, groups: tuple[str, ...]):
        self.groups = groups
        # aiokafka 0.14's DescribeGroups is refused by Kafka 4 (the broker closes the connection), so
        # members come from confluent-kafka's admin client (librdkafka), with the same login.
        self.describer = AdminClient(_librdkafka_config(bootstrap, options))
        self.admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=5000, **options)
        self.consumer = AIOKafkaConsumer(
            bootstrap_servers=bootstrap, enable_auto_commit=False, request_timeout_ms=5000, **options
        )

    async def start(self) -> None:
        await self.admin.start()
        await self.consumer.start()

    async def stop(self) -> None:
        await self.consumer.stop()
        await self.admin.close()

    async def groups_state(self) -> list[GroupState]:
        members = await asyncio.to_thread(self._members)
        states = []
        for group in self.groups:
            count, state = members.get(group, (0, "UNKNOWN"))
            states.append(GroupState(group, count, state, await self._lag(group)))
        return states

    def _members(self) -> dict[str, tuple[int, str]]:
        found = {}
        for group, future in self.describer.describe_consumer_groups(list(self.groups), request_timeout=5).items():
            try:
                described = future.result()
            except KafkaException:
                continue
            found[group] = (len(described.members), described.state.name)
        return found

    async def _lag(self, group: str) -> int | None:
        committed = await self.admin.list_consumer_group_offsets(group)
        if not committed:
            return None
        ends = await self.consumer.end_offsets(list(committed))
        return sum(max(ends[tp] - meta.offset, 0) for tp, meta in committed.items() if meta.offset >= 0)


async def outboxes(conn: asyncpg.Connection) -> list[OutboxState]:
    """Depth and oldest row's age of each service's outbox (schemas not created yet are left out)."""
    states = []
    for schema in SERVICE_SCHEMAS:
        if not await conn.fetchval("SELECT to_regclass($1) IS NOT NULL", f"{schema}.outbox"):
            continue
        row = await conn.fetchrow(
            f'''SELECT count(*) AS depth,
                       COALESCE(EXTRACT(EPOCH FROM now() - min(e.recorded_at)), 0)::float8 AS age
                FROM "{schema}".outbox o LEFT JOIN "{schema}".events e ON e.event_id = o.event_id'''
        )
        states.append(OutboxState(schema, row["depth"], row["age"] if row["depth"] else 0.0))
    return states


class Probe:
    """Everything /readyz and /metrics report, looked at most once a second however often they are asked."""

    def __init__(self, kafka: KafkaProbe, pool: asyncpg.Pool, ops_dsn: str):
        self.kafka = kafka
        self.pool = pool
        self.ops_dsn = ops_dsn
        self._last: tuple[float, Health] | None = None
        self._lock = asyncio.Lock()

    async def health(self) -> Health:
        async with self._lock:
            if self._last is not None and time.monotonic() - self._last[0] < 1.0:
                return self._last[1]
            health = await self._look()
            self._last = (time.monotonic(), health)
            return health

    async def _look(self) -> Health:
        health = Health()
        try:
            await asyncio.wait_for(self.pool.fetchval("SELECT 1"), 5)
            health.postgres = "ok"
        except Exception as error:
            health.postgres = f"unreachable: {type(error).__name__}: {error}"
            health.problems.append(f"postgres: {health.postgres}")
        try:
            health.groups = await asyncio.wait_for(self.kafka.groups_state(), 10)
            health.kafka = "ok"
        except Exception as error:
            health.kafka = f"unreachable: {type(error).__name__}: {error}"
            health.problems.append(f"kafka: {health.kafka}")
        for group in health.groups:
            if group.members == 0:
                health.problems.append(f"consumer group {group.group}: no member consuming")
        try:
            conn = await asyncpg.connect(self.ops_dsn, timeout=5)
            try:
                health.outboxes = await outboxes(conn)
            finally:
                await conn.close()
        except Exception as error:
            health.problems.append(f"outboxes: {type(error).__name__}: {error}")
        return health
