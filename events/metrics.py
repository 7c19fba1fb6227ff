"""A service's own /metrics in Prometheus text format (prometheus_client), one registry per service process.

- `faststream_*`: FastStream's Prometheus middleware on the service's broker (app_name `farmlink-<service>`):
  batches and records each subscriber received, how long its handler took, how each batch ended (the `handler`
  label is the batch's first topic).
- `farmlink_inputs_total{consumer,type,outcome}`: messages a consumer of this service decided, by type (the input
  type, or the event type for consumers of events) and outcome, `accepted` or `rejected` (dead-lettered). Counted
  after the batch's transaction committed, so a batch retried or rolled back counts once, and a redelivered
  message the inbox already holds not at all. A record too broken to name a known input type counts as `unknown`.
- `farmlink_dead_letters_total{consumer}`: messages the consumer dead-lettered.
- `farmlink_events_total{type}`: events the service appended (committed).
- `farmlink_fills_total{price_basis}`, `farmlink_fill_fen_total{price_basis}`: fills and their revenue in fen (the
  matching service's FillMade events).
- `farmlink_outbox_depth{service}`, `farmlink_outbox_oldest_age_seconds{service}`: the service's outbox, looked
  up at scrape time (age from the recorded time of the oldest row's event, as the gateway reports it), within
  OUTBOX_TIMEOUT_S; `farmlink_outbox_probe_success{service}` is 0 (and the two gauges absent) when it did not answer.
- `farmlink_relay_published_rows_total{service}`, `farmlink_relay_last_failure_timestamp_seconds{service}` and
  `farmlink_relay_last_failure_info{service,error}` (present only while the relay's last failure stands).
- `process_*`, `python_gc_*`: the process.

Counters start at zero with the process (the gateway's /metrics keeps the system's totals from its projection).
Nothing here may stop a consumer: the counting hook runs after a commit and swallows its own errors, and a scrape
that cannot reach the database (or the event loop) answers with everything else.
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
from collections import Counter as Tally
from collections.abc import Callable, Coroutine, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from prometheus_client import CollectorRegistry, Counter, GCCollector, ProcessCollector, start_http_server
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector

from contracts.inputs import INPUT_TYPES
from events.codec import MAX_INPUT_BYTES

log = logging.getLogger(__name__)

OUTBOX_TIMEOUT_S = 1.0
"""How long a scrape waits for the outbox query (a pool connection and the query itself)."""

Probe = Callable[[], Coroutine[Any, Any, tuple[int, float]]]
"""Reads (depth, oldest row's age in seconds) of a service's outbox, on the service's event loop."""

ACCEPTED, REJECTED = "accepted", "rejected"
UNKNOWN = "unknown"
SEQUENCE_MARKER = "sequence_marker"


def kind_of(delivery: Any, decoded: Any) -> str:
    """The type label of a message a consumer decided: its input type (`InputMessage.type`), its event type
    (`Envelope.event_type`), `sequence_marker` for the matcher's markers, or, for a record that could not be
    decoded, the `type` its JSON names when that is a known input type; `unknown` otherwise (labels stay few)."""
    item = getattr(decoded, "item", None)
    if isinstance(item, tuple) and item:
        head = item[0]
        if head is None:
            return SEQUENCE_MARKER
        kind = getattr(head, "type", None) or getattr(head, "event_type", None)
        if isinstance(kind, str):
            return kind
    if decoded is None:
        value = getattr(delivery, "value", b"")
        if isinstance(value, bytes) and 0 < len(value) <= MAX_INPUT_BYTES:
            try:
                named = json.loads(value).get("type")
            except Exception:  # not JSON, not an object, too deep: nothing to name
                return UNKNOWN
            if isinstance(named, str) and named in INPUT_TYPES:
                return named
    return UNKNOWN


class ServiceMetrics:
    """The counters of one service process, in a registry of its own (FastStream's middleware adds its series to it)."""

    def __init__(self, service: str):
        self.service = service
        self.registry = CollectorRegistry()
        self.inputs = Counter(
            "farmlink_inputs",
            "Messages a consumer of this service decided, by type and outcome "
            "(accepted, rejected: dead-lettered), counted once their batch committed",
            ("consumer", "type", "outcome"),
            registry=self.registry,
        )
        self.dead_letters = Counter(
            "farmlink_dead_letters", "Messages this service dead-lettered, by consumer", ("consumer",), registry=self.registry
        )
        self.events = Counter("farmlink_events", "Events this service appended, by type", ("type",), registry=self.registry)
        self.fills = Counter("farmlink_fills", "Fills the matcher made, by price basis", ("price_basis",), registry=self.registry)
        self.fill_fen = Counter(
            "farmlink_fill_fen", "Revenue of the fills in fen, by price basis", ("price_basis",), registry=self.registry
        )
        self.state = StateCollector(service)
        self.registry.register(self.state)
        ProcessCollector(registry=self.registry)
        GCCollector(registry=self.registry)

    def committed(self, uow: Any) -> None:
        """Count what a committed batch did: its consumers' outcomes (`uow.outcomes`) and its events."""
        outcomes: Mapping[tuple[str, str, str], int] = getattr(uow, "outcomes", None) or {}
        for (consumer, kind, outcome), n in outcomes.items():
            self.inputs.labels(consumer, kind, outcome).inc(n)
            if outcome == REJECTED:
                self.dead_letters.labels(consumer).inc(n)
        kinds: Tally[str] = Tally()
        fills: Tally[str] = Tally()
        fen: Tally[str] = Tally()
        for envelope in getattr(uow, "envelopes", ()):
            kinds[envelope.event_type] += 1
            if envelope.event_type == "FillMade":
                basis = str(envelope.payload.get("price_basis"))
                fills[basis] += 1
                fen[basis] += int(envelope.payload.get("revenue_fen") or 0)
        for kind, n in kinds.items():
            self.events.labels(kind).inc(n)
        for basis, n in fills.items():
            self.fills.labels(basis).inc(n)
            self.fill_fen.labels(basis).inc(fen[basis])


_BY_SCHEMA: dict[str, ServiceMetrics] = {}
"""The metrics of each service running in this process, by its schema (the unit of work's hook finds them so)."""


def attach(schema: str, metrics: ServiceMetrics) -> None:
    _BY_SCHEMA[schema] = metrics


def detach(schema: str, metrics: ServiceMetrics) -> None:
    if _BY_SCHEMA.get(schema) is metrics:
        del _BY_SCHEMA[schema]


def committed(schema: str, uow: Any) -> None:
    """The unit of work's hook, after a batch committed: count it for the service of `schema` (if any runs here).
    Never raises: a metric must not make a committed batch come again."""
    metrics = _BY_SCHEMA.get(schema)
    if metrics is None:
        return
    try:
        metrics.committed(uow)
    except Exception:
        log.debug("metrics: could not count a committed batch of %s", schema, exc_info=True)


# -- looked up at scrape time ----------------------------------------------------------------------------------

OUTBOX_SQL = """SELECT count(*) AS depth,
                       COALESCE(EXTRACT(EPOCH FROM now() - min(e.recorded_at)), 0)::float8 AS age
                FROM "{schema}".outbox o LEFT JOIN "{schema}".events e ON e.event_id = o.event_id"""


def outbox_probe(pool: Any, schema: str, timeout: float = OUTBOX_TIMEOUT_S) -> Probe:
    """A coroutine function giving (depth, oldest row's age in seconds) of the schema's outbox through the pool."""

    async def probe() -> tuple[int, float]:
        async with pool.acquire(timeout=timeout) as conn:
            row = await conn.fetchrow(OUTBOX_SQL.format(schema=schema), timeout=timeout)
        depth = int(row["depth"])
        return depth, float(row["age"]) if depth else 0.0

    return probe


class StateCollector(Collector):
    """The outbox and the relay, read when scraped. The scrape runs in the HTTP server's thread; the outbox query
    runs on the service's event loop (`watch`) and is waited for at most `timeout` s: a busy or stopped loop, a
    full pool or a missing schema leave the outbox gauges out (`farmlink_outbox_probe_success` 0), nothing else."""

    def __init__(self, service: str, timeout: float = OUTBOX_TIMEOUT_S):
        self.service = service
        self.timeout = timeout
        self.loop: asyncio.AbstractEventLoop | None = None
        self.probe: Probe | None = None
        self.relay: Any = None

    def watch(self, loop: asyncio.AbstractEventLoop | None, probe: Probe | None, relay: Any = None) -> None:
        self.loop, self.probe, self.relay = loop, probe, relay

    def describe(self) -> Iterable[Metric]:
        return []  # looked up at scrape time only, never when registered

    def collect(self) -> Iterator[Metric]:
        labels = (self.service,)
        ok = GaugeMetricFamily(
            "farmlink_outbox_probe_success", "1 when this scrape could read the service's outbox", labels=("service",)
        )
        depth = GaugeMetricFamily("farmlink_outbox_depth", "Rows waiting in the service's outbox", labels=("service",))
        age = GaugeMetricFamily(
            "farmlink_outbox_oldest_age_seconds",
            "Age of the oldest row in the service's outbox (from its event's recorded time)",
            labels=("service",),
        )
        found = self._outbox()
        ok.add_metric(labels, 1 if found is not None else 0)
        if found is not None:
            depth.add_metric(labels, found[0])
            age.add_metric(labels, found[1])
        yield from (ok, depth, age)
        yield from self._relay(labels)

    def _outbox(self) -> tuple[int, float] | None:
        loop, probe = self.loop, self.probe
        if loop is None or probe is None or loop.is_closed() or not loop.is_running():
            return None
        if _on_loop(loop):  # scraped from the loop's own thread: waiting for it would deadlock
            return None
        coroutine = probe()
        try:
            future = asyncio.run_coroutine_threadsafe(coroutine, loop)
        except RuntimeError:  # the loop closed meanwhile
            coroutine.close()
            return None
        try:
            return future.result(self.timeout + 0.5)
        except Exception as error:
            future.cancel()
            log.debug("metrics: outbox of %s not read: %s", self.service, error)
            return None

    def _relay(self, labels: tuple[str]) -> Iterator[Metric]:
        relay = self.relay
        if relay is None:
            return
        published = CounterMetricFamily(
            "farmlink_relay_published_rows", "Outbox rows the relay published to Kafka", labels=("service",)
        )
        published.add_metric(labels, getattr(relay, "published", 0))
        yield published
        failure, failed_at = getattr(relay, "failure", None), getattr(relay, "failure_at", None)
        if failure and failed_at is not None:
            at = GaugeMetricFamily(
                "farmlink_relay_last_failure_timestamp_seconds",
                "When the relay last failed and started over (absent once it published again)",
                labels=("service",),
            )
            at.add_metric(labels, failed_at)
            info = GaugeMetricFamily(
                "farmlink_relay_last_failure_info",
                "The relay's last failure: its error's type and first line",
                labels=("service", "error"),
            )
            info.add_metric((*labels, str(failure)), 1)
            yield from (at, info)


def _on_loop(loop: asyncio.AbstractEventLoop) -> bool:
    try:
        return asyncio.get_running_loop() is loop
    except RuntimeError:
        return False


@dataclass
class MetricsServer:
    """prometheus_client's HTTP server for one registry, in a daemon thread, on 127.0.0.1."""

    port: int
    _server: Any
    _thread: threading.Thread

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/metrics"

    def stop(self) -> None:
        """Stop serving and free the port (blocks up to half a second: call it off the event loop)."""
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=2.0)


def serve(registry: CollectorRegistry, port: int) -> MetricsServer | None:
    """Serve the registry on 127.0.0.1:`port` (0: any free port); None, with a warning, when the port cannot be had:
    a service runs on without metrics rather than not at all."""
    try:
        server, thread = start_http_server(port, addr="127.0.0.1", registry=registry)
    except OSError as error:
        log.warning("metrics: cannot listen on 127.0.0.1:%s (%s); this process serves no /metrics", port, error)
        return None
    return MetricsServer(server.server_port, server, thread)
