"""/metrics in Prometheus text format (prometheus_client).

- `farmlink_gateway_inputs_total{type,outcome}`: inputs posted to the gateway: `published`, `refused` at the door (4xx), or
  `unpublished` (Kafka did not take it, 503) (this process).
- `farmlink_receipts_total{service,status}`: receipts on farmlink.receipts: what the services did with every input (accepted, rejected, journaled, ...), from the projection.
- `farmlink_dead_letters_total{consumer}`: dead letters on farmlink.deadletter by the consumer that wrote them, from the projection.
- `farmlink_fills_total{price_basis}`, `farmlink_fill_fen_total{price_basis}`: fills and their revenue in fen, from the projection.
- `farmlink_consumer_group_lag{group}`, `farmlink_consumer_group_members{group}`: every farmlink consumer group.
- `farmlink_outbox_depth{service}`, `farmlink_outbox_oldest_age_seconds{service}`: each service's outbox.
- `faststream_*`: FastStream's Prometheus middleware on the gateway's broker (app_name `farmlink-gateway`): batches the
  projection consumer received and handled (the `handler` label is the batch's first topic), inputs published.
Counts kept in the projection survive restarts; the door's and FastStream's counters start at zero with the process.
"""

import asyncpg
from prometheus_client import REGISTRY, CollectorRegistry, Counter, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from services.gateway.ops import Health

DOOR = Counter(
    "farmlink_gateway_inputs",
    "Inputs posted to the gateway, by input type and outcome at the door "
    "(published to the owning input topic, or refused with 4xx)",
    ("type", "outcome"),
)


class _Families(Collector):
    def __init__(self, families):
        self.families = families

    def collect(self):
        return iter(self.families)


async def projection_families(conn: asyncpg.Connection) -> list:
    receipts = CounterMetricFamily(
        "farmlink_receipts",
        "Receipts the services sent, by service and status (accepted, rejected, journaled, fill_recorded)",
        labels=("service", "status"),
    )
    for row in await conn.fetch("SELECT service, status, count(*) AS n FROM gateway.receipts GROUP BY 1, 2 ORDER BY 1, 2"):
        receipts.add_metric((row["service"], row["status"]), row["n"])
    dead = CounterMetricFamily(
        "farmlink_dead_letters", "Messages dead-lettered, by the consumer that refused them", labels=("consumer",)
    )
    for row in await conn.fetch("SELECT consumer, count FROM gateway.dead_letters ORDER BY 1"):
        dead.add_metric((row["consumer"],), row["count"])
    fills = CounterMetricFamily("farmlink_fills", "Fills the matcher made, by price basis", labels=("price_basis",))
    fen = CounterMetricFamily("farmlink_fill_fen", "Revenue of the fills in fen, by price basis", labels=("price_basis",))
    for row in await conn.fetch(
        "SELECT price_basis, count(*) AS n, COALESCE(sum(revenue_fen), 0) AS fen FROM gateway.fills GROUP BY 1 ORDER BY 1"
    ):
        fills.add_metric((row["price_basis"],), row["n"])
        fen.add_metric((row["price_basis"],), int(row["fen"]))
    return [receipts, dead, fills, fen]


def health_families(health: Health) -> list:
    lag = GaugeMetricFamily(
        "farmlink_consumer_group_lag", "Records not yet committed by the group, over its partitions", labels=("group",)
    )
    members = GaugeMetricFamily("farmlink_consumer_group_members", "Members of the consumer group", labels=("group",))
    for group in health.groups:
        members.add_metric((group.group,), group.members)
        if group.lag is not None:
            lag.add_metric((group.group,), group.lag)
    depth = GaugeMetricFamily("farmlink_outbox_depth", "Rows waiting in the service's outbox", labels=("service",))
    age = GaugeMetricFamily(
        "farmlink_outbox_oldest_age_seconds", "Age of the oldest row in the service's outbox", labels=("service",)
    )
    for outbox in health.outboxes:
        depth.add_metric((outbox.service,), outbox.depth)
        age.add_metric((outbox.service,), outbox.oldest_age_s)
    up = GaugeMetricFamily("farmlink_gateway_ready", "1 when Kafka, PostgreSQL and every consumer group answer")
    up.add_metric((), 1 if health.ready else 0)
    return [lag, members, depth, age, up]


def exposition(families: list) -> bytes:
    """The process's own metrics (door counters, Python runtime) and the families looked up now."""
    now = CollectorRegistry()
    now.register(_Families(families))
    return generate_latest(REGISTRY) + generate_latest(now)
