"""The shared shape of a farmlink service: one FastStream app, its own consumer group,
its own PostgreSQL schema (migrated on start), its event store, its outbox relay and its
own /metrics (events/metrics.py; served when `farmlink serve` gives it a port).

Handlers stay thin: FastStream hands over the raw record, `consume` gives exactly-once
effects and the dead-letter path, the service's decide functions do the rest.
"""

import asyncio
import dataclasses
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import asyncpg
from faststream import FastStream
from faststream.kafka import KafkaBroker, KafkaMessage
from faststream.kafka.prometheus import KafkaPrometheusMiddleware
from faststream.kafka.subscriber.usecase import BatchSubscriber
from faststream.middlewares import AckPolicy

from events import metrics
from events.consumer import Delivery
from events.migrations import MigrationChanged, migrate
from events.access import service_principal
from events.relay import OutboxRelay
from events.settings import AUDITOR, Settings, kafka_options, kafka_security, role_env, role_name, settings
from events.store import EventStore, create_pool

log = logging.getLogger(__name__)


async def tolerant_parser(message: Any, original_parser: Callable[[Any], Awaitable[Any]]) -> Any:
    """FastStream's parser, given records without headers; our own decoding reads the raw records.

    FastStream decodes every header value as UTF-8 for its own header dict, so one record
    with a null or non-UTF-8 header value fails the parsing of its whole batch, before any
    handler runs, and the batch is skipped. farmlink reads headers only from the raw records
    (and copies them, untouched, onto dead letters), so FastStream gets copies without them
    and `raw_message` is set back to the original records (which nack also seeks by)."""
    records = message if isinstance(message, tuple | list) else (message,)
    bare = tuple(dataclasses.replace(record, headers=[]) for record in records)
    parsed = await original_parser(bare if isinstance(message, tuple | list) else bare[0])
    parsed.raw_message = message
    return parsed


async def raw_body(message: KafkaMessage) -> bytes:
    """FastStream decoder that leaves the bytes alone: decoding is ours, so bad bytes can be dead-lettered."""
    return message.body


def deliveries_of(message: KafkaMessage) -> list[Delivery]:
    """The raw records of a batch FastStream received, in offset order per partition."""
    records = message.raw_message if isinstance(message.raw_message, tuple | list) else (message.raw_message,)
    return [_delivery(record) for record in records]


def _delivery(record: Any) -> Delivery:
    return Delivery(
        topic=record.topic,
        partition=record.partition,
        offset=record.offset,
        key=record.key,
        value=record.value if record.value is not None else b"",
        headers=list(record.headers or ()),
    )


async def _batch_without_a_second_wait(self: BatchSubscriber, consumer: Any) -> tuple[Any, ...]:
    """FastStream 0.7.8's batch poll, less its sleep after an empty poll, plus an optional linger.

    FastStream waits `batch_timeout_ms` in aiokafka's `getmany` (which returns as soon as any record is there) and,
    when that wait ended empty, sleeps `batch_timeout_ms` AGAIN, during which an arriving record waits. So the timeout
    had to stay short (20 ms: 50 idle polls a second per subscriber, on two shared cores) and still added up to that
    much latency per hop. Without the second sleep a long wait costs nothing when records flow and almost nothing when
    they do not. Only a poll that came back empty early (no partitions assigned yet) waits out the rest of its time,
    so the loop never spins. A subscriber with a linger (`ServiceRuntime.BEHIND_THE_MARKET`) waits that long after
    its first records for more, to handle them in one bigger batch."""
    loop = asyncio.get_running_loop()
    started = loop.time()
    messages = await consumer.getmany(timeout_ms=self.batch_timeout_ms, max_records=self.max_records)
    if not messages:
        left = self.batch_timeout_ms / 1000 - (loop.time() - started)
        if left > self.batch_timeout_ms / 2000:
            await asyncio.sleep(left)
        return ()
    records = [record for batch in messages.values() for record in batch]
    linger_ms = getattr(self, LINGER_ATTRIBUTE, 0)
    room = (self.max_records or 0) - len(records)
    if linger_ms and room > 0:
        await asyncio.sleep(linger_ms / 1000)
        more = await consumer.getmany(timeout_ms=0, max_records=room)
        records += [record for batch in more.values() for record in batch]  # later offsets of the same partitions
    return tuple(records)


LINGER_ATTRIBUTE = "farmlink_linger_ms"
BatchSubscriber.get_msg = _batch_without_a_second_wait  # type: ignore[method-assign]

POLL_WAIT_MS = 500
"""How long a subscriber's poll (aiokafka `getmany`) waits for records when none are there: it returns as soon as a
record is in, so this is not latency; it is how often an idle subscriber wakes."""
FETCH_WAIT_MS = 20
"""How long the broker holds a fetch that found nothing. Unlike the poll this IS latency: measured here (`farmlink
bench e2e --smoke`, 100 inputs/s), a read_committed fetch of 500 ms was not answered when a relay's transaction
committed, and input -> fill went from p50 164-309 ms to 746-872 ms. So consumers on an input's way to its fill ask
every 20 ms; followers (`BEHIND_THE_MARKET`) every 500 ms."""


class ServiceRuntime:
    """Everything a farmlink service needs at run time, built from the settings."""

    def __init__(self, name: str, sql_dir: Path | None = None, config: Settings | None = None):
        self.name = name
        self.schema = name
        self.sql_dirs = [(f"services/{name}", sql_dir)] if sql_dir is not None else []
        self.config = config or settings()
        self.group_id = f"farmlink.{name}"
        self.principal = service_principal(name)
        # The process's own /metrics (events/metrics.py): FastStream's Prometheus middleware and farmlink's counters
        # in one registry, served on 127.0.0.1:metrics_port when `farmlink serve` sets it (None: not served).
        self.metrics = metrics.ServiceMetrics(name)
        self.metrics_port: int | None = None
        self.metrics_server: metrics.MetricsServer | None = None
        # Topics are created by `farmlink infra up` from contracts/topics.py, never by a subscriber.
        self.broker = KafkaBroker(
            self.config.bootstrap,
            client_id=f"farmlink-{name}",
            enable_idempotence=True,
            security=kafka_security(self.config, self.principal),
            allow_auto_create_topics=False,
            middlewares=(KafkaPrometheusMiddleware(registry=self.metrics.registry, app_name=f"farmlink-{name}"),),
        )
        self.app = FastStream(self.broker, lifespan=self.lifespan)
        self.pool: asyncpg.Pool | None = None
        self.store: EventStore | None = None
        self.relay: OutboxRelay | None = None
        self.on_start: list[Callable[[], Awaitable[None]]] = []
        self.on_stop: list[Callable[[], Awaitable[None]]] = []

    BEHIND_THE_MARKET: dict[str, Any] = {"linger_ms": 1000, "fetch_max_wait_ms": POLL_WAIT_MS}
    """Options for a consumer that follows the market's records but is on no input's way to its fill (the feeds
    service's copies, the pairing service's facts): after its first records it lingers a second for more, to take
    bigger batches, and its idle fetches wait 500 ms, so it costs the two cores it shares with the market fewer
    transactions: 1,124-1,140 inputs/s sustained against 1,031-1,033 with 250 ms (docs/benchmarks.md, issue 10). A
    party's copy of its fill or a supervision round's facts come up to a second later; no input's fill waits."""

    def subscriber(self, *topics: str, **options: Any) -> Any:
        """Subscribe in this service's consumer group: from the earliest offset, in batches of up to
        500 records handled in one transaction, offsets committed only after it committed,
        redelivered when it raised."""
        options.setdefault("batch", True)
        options.setdefault("max_records", 500)
        options.setdefault("batch_timeout_ms", POLL_WAIT_MS)
        options.setdefault("group_id", self.group_id)
        options.setdefault("auto_offset_reset", "earliest")
        options.setdefault("ack_policy", AckPolicy.NACK_ON_ERROR)
        options.setdefault("decoder", raw_body)
        options.setdefault("parser", tolerant_parser)
        options.setdefault("fetch_max_wait_ms", FETCH_WAIT_MS)
        options.setdefault("isolation_level", "read_committed")  # never an aborted relay transaction
        linger_ms = options.pop("linger_ms", 0)
        subscriber = self.broker.subscriber(*topics, **options)
        setattr(subscriber, LINGER_ATTRIBUTE, linger_ms)
        return subscriber

    async def open(self, with_relay: bool = True) -> EventStore:
        """Connect to PostgreSQL as the service's role, migrate the schema as its owner (which also
        grants the service's role its privileges), start the relay (tests may go without it)."""
        service_dsn = self.config.service_dsn(self.name)
        self.pool = await self._service_pool(service_dsn)
        role = await self.pool.fetchval("SELECT current_user")
        owner = await asyncpg.connect(self.config.dsn)
        try:
            await migrate(owner, self.schema, self.sql_dirs, service_role=role, readers=(self.config.role_of(AUDITOR),))
        finally:
            await owner.close()
        self.store = EventStore(self.pool, self.schema, producer=f"service:{self.name}")
        if with_relay:
            self.relay = OutboxRelay(
                service_dsn, self.schema, self.config.bootstrap, kafka=kafka_options(self.config, self.principal)
            )
            await self.relay.start()
            self.store.doorbell.local = self.relay.wake_if_leading
        self._start_metrics()
        for hook in self.on_start:
            await hook()
        return self.store

    def _start_metrics(self) -> None:
        """Count committed batches, read the outbox and the relay at scrape time, and serve /metrics when a port is set."""
        assert self.pool is not None
        metrics.attach(self.schema, self.metrics)
        self.metrics.state.watch(asyncio.get_running_loop(), metrics.outbox_probe(self.pool, self.schema), self.relay)
        if self.metrics_port is not None and self.metrics_server is None:
            self.metrics_server = metrics.serve(self.metrics.registry, self.metrics_port)
            if self.metrics_server is not None:
                log.info("%s service: metrics on %s", self.name, self.metrics_server.url)

    async def _stop_metrics(self) -> None:
        server, self.metrics_server = self.metrics_server, None
        if server is not None:
            await asyncio.to_thread(server.stop)
        self.metrics.state.watch(None, None)
        metrics.detach(self.schema, self.metrics)

    async def _service_pool(self, dsn: str) -> asyncpg.Pool:
        try:
            return await create_pool(dsn, min_size=1, max_size=8)
        except asyncpg.InvalidAuthorizationSpecificationError as exc:
            fix = (
                f"check {role_env(self.name)}"
                if self.config.uses_external_database
                else f"`farmlink infra up` creates role {role_name(self.name)!r}"
            )
            raise RuntimeError(
                f"{self.name} service: PostgreSQL refused its login ({exc}); {fix} (farmlink/operations/infra/README.md, 'PostgreSQL roles')"
            ) from exc

    async def close(self) -> None:
        await self._stop_metrics()
        for hook in self.on_stop:
            await hook()
        if self.relay is not None:
            await self.relay.stop()
        if self.pool is not None:
            await self.pool.close()

    @asynccontextmanager
    async def lifespan(self) -> AsyncIterator[None]:
        try:
            await self.open()
        except MigrationChanged as refused:  # the process ends with the reason as its last log line, no traceback
            if self.pool is not None:
                await self.pool.close()
            raise SystemExit(f"{self.name} service cannot start: {refused}") from None
        try:
            yield
        finally:
            await self.close()


def require_store(runtime: ServiceRuntime) -> EventStore:
    """The store, once the service has started."""
    if runtime.store is None:
        raise RuntimeError(f"{runtime.name} service has not started: no event store")
    return runtime.store
