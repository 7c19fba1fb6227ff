"""`farmlink bench e2e`: all services on the real broker and database.

1. Sustained rate: N orders published as fast as the producer goes; the rate is N divided
   by the time until the matcher has journaled the last of them (its receipts).
2. Latency at a steady rate (default 1,000 inputs/s): each order fills at once against a
   large resting lot; latency = the fill's Kafka timestamp (set by the matching relay when
   it published the fill) minus the moment the order was sent. p50, p99, max.
Orders are signed before the clock starts (buyers sign on their own machines, not on farmlink's two cores).
The bench wipes farmlink data first (it needs a known market), so it asks unless --yes.
"""

import asyncio
import time
import uuid
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer, TopicPartition

from contracts.topics import BUYER_INPUT, COOPERATIVE_INPUT, FILLS, RECEIPTS, TOPICS
from events.access import AUDITOR, BUYER, COOPERATIVE
from events.relay import idempotent_producer
from events.settings import kafka_options, settings
from farmlink.operations.caughtup import wait_until_caught_up
from farmlink.producers.keyring import local_keyring
from farmlink.producers.publisher import input_message

PRODUCTS = ("chili", "sorghum", "tea_leaf", "black_fungus", "sweet_potato", "citrus")


_KEYRING = None


def _message(kind: str, payload: dict, correlation_id: str) -> bytes:
    """An input signed by its producer (bench-coop, bench-buyer), as `farmlink publish` sends it."""
    global _KEYRING
    _KEYRING = _KEYRING or local_keyring()
    return input_message(kind, payload, correlation_id, _KEYRING).model_dump_json().encode()


def _order(n: int, product: str) -> dict:
    return {
        "order_id": f"bench-order-{n}",
        "buyer_id": "bench-buyer",
        "product": product,
        "min_grade": "C",
        "quantity": "1",
        "limit_price_fen": 500,
        "deliver_from": "2020-01-01",
        "deliver_to": "2020-12-31",
        "regions": [],
    }


async def _seed_market(cooperative, buyer, say) -> None:
    """One cooperative, one buyer and one huge resting lot per product, so every order fills at once.
    Each input topic is written as its own producer principal (events/access.py)."""
    await cooperative.send_and_wait(
        COOPERATIVE_INPUT,
        _message(
            "cooperative.registered",
            {
                "cooperative_id": "bench-coop",
                "name": "bench cooperative",
                "county": "Yanhe",
                "township": "Ketian",
                "village": "Fengjia",
                "households": [
                    {"household_id": "bench-h1", "registered_poor": True},
                    {"household_id": "bench-h2", "registered_poor": False},
                ],
            },
            "bench-seed-coop",
        ),
        key=b"bench-coop",
    )
    await buyer.send_and_wait(
        BUYER_INPUT,
        _message("buyer.registered", {"buyer_id": "bench-buyer", "name": "bench buyer"}, "bench-seed-buyer"),
        key=b"bench-buyer",
    )
    await asyncio.sleep(1.0)
    for product in PRODUCTS:
        await cooperative.send_and_wait(
            COOPERATIVE_INPUT,
            _message(
                "harvest.recorded",
                {
                    "lot_id": f"bench-lot-{product}",
                    "cooperative_id": "bench-coop",
                    "product": product,
                    "grade": "A",
                    "quantity": "100000000",
                    "available_from": "2020-01-01",
                    "expires_on": "2020-12-31",
                    "contributions": [
                        {"household_id": "bench-h1", "quantity": "60000000"},
                        {"household_id": "bench-h2", "quantity": "40000000"},
                    ],
                },
                f"bench-seed-{product}",
            ),
            key=product.encode(),
        )
    say("seeded one cooperative, one buyer and a 100,000-tonne lot per product")


class Watch:
    """Follows receipts (journaled inputs) and fills from the end of each topic."""

    def __init__(self, bootstrap: str, run_id: str):
        self.run_id = run_id
        self.consumer = AIOKafkaConsumer(
            bootstrap_servers=bootstrap,
            enable_auto_commit=False,
            fetch_max_wait_ms=10,  # read_committed fetches are not answered early when a transaction commits
            isolation_level="read_committed",
            **kafka_options(settings(), AUDITOR),
        )  # the auditor reads receipts and all the fills (a buyer principal reads only its own party topic)
        self.journaled: dict[str, float] = {}
        self.filled: dict[str, float] = {}
        self.task: asyncio.Task | None = None

    async def start(self) -> None:
        await self.consumer.start()
        partitions = [TopicPartition(RECEIPTS, 0)] + [
            TopicPartition(FILLS, p) for p in range(next(t.partitions for t in TOPICS if t.name == FILLS))
        ]
        self.consumer.assign(partitions)
        await self.consumer.seek_to_end(*partitions)
        for tp in partitions:
            await self.consumer.position(tp)
        self.task = asyncio.create_task(self._read())

    async def _read(self) -> None:
        async for record in self.consumer:
            data = orjson.loads(record.value)
            correlation = data.get("correlation_id", "")
            if not correlation.startswith(self.run_id):
                continue
            if record.topic == RECEIPTS and data.get("status") == "journaled":
                self.journaled[correlation] = time.time()
            elif record.topic == FILLS:
                self.filled[correlation] = record.timestamp / 1000.0

    async def stop(self) -> None:
        if self.task:
            self.task.cancel()
        await self.consumer.stop()


def _signed_orders(run_id: str, count: int) -> list[tuple[bytes, bytes, str]]:
    """(key, signed input bytes, correlation id) of `count` orders, one product after another."""
    orders = []
    for n in range(count):
        product = PRODUCTS[n % len(PRODUCTS)]
        correlation = f"{run_id}:{n}"
        value = _message("order.placed", _order(n, product) | {"order_id": f"{run_id}-{n}"}, correlation)
        orders.append((product.encode(), value, correlation))
    return orders


async def _sustained(bootstrap: str, producer, count: int, say) -> float:
    run_id = f"bench-sustained-{uuid.uuid4().hex[:6]}"
    watch = Watch(bootstrap, run_id)
    await watch.start()
    orders = _signed_orders(run_id, count)  # before the clock: buyers sign on their own machines, not on farmlink's
    started = time.time()
    for key, value, _ in orders:
        await producer.send(BUYER_INPUT, value, key=key)
    await producer.flush()
    sent = time.time()
    while len(watch.journaled) < count:
        await asyncio.sleep(0.05)
        if time.time() - sent > 600:
            break
    elapsed = max(watch.journaled.values()) - started
    await watch.stop()
    rate = len(watch.journaled) / elapsed
    say(f"sustained: {count} orders journaled in {elapsed:.1f} s: {rate:,.0f} inputs/s (publishing took {sent - started:.1f} s)")
    return rate


async def _latency(bootstrap: str, producer, rate: int, seconds: float, say) -> dict[str, float]:
    run_id = f"bench-latency-{uuid.uuid4().hex[:6]}"
    watch = Watch(bootstrap, run_id)
    await watch.start()
    sent_at: dict[str, float] = {}
    total = int(rate * seconds)
    orders = _signed_orders(run_id, total)  # signed before the schedule starts (see _sustained)
    start = time.perf_counter()
    for n, (key, value, correlation) in enumerate(orders):
        due = start + n / rate
        delay = due - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        sent_at[correlation] = time.time()
        await producer.send(BUYER_INPUT, value, key=key)
    deadline = time.time() + 120
    while len(watch.filled) < total and time.time() < deadline:
        await asyncio.sleep(0.1)
    await watch.stop()
    latencies = sorted((watch.filled[c] - sent_at[c]) * 1000 for c in watch.filled if c in sent_at)
    if not latencies:
        raise RuntimeError("no fill came back: are the services running?")

    def pct(p: float) -> float:
        return latencies[min(len(latencies) - 1, int(p * len(latencies)))]

    figures = {
        "rate": rate,
        "sent": total,
        "filled": len(latencies),
        "p50_ms": round(pct(0.50), 1),
        "p99_ms": round(pct(0.99), 1),
        "max_ms": round(latencies[-1], 1),
        "achieved_send_rate": round(total / (time.perf_counter() - start)),
    }
    say(
        f"latency at {rate}/s for {seconds:.0f} s: {len(latencies)}/{total} filled; p50 {figures['p50_ms']} ms, "
        f"p99 {figures['p99_ms']} ms, max {figures['max_ms']} ms"
    )
    return figures


async def run_e2e_bench(
    bootstrap: str,
    dsn: str,
    sustained_inputs: int = 20_000,
    rate: int = 1_000,
    seconds: float = 20.0,
    smoke: bool = False,
    say=print,
) -> dict[str, Any]:
    """Both measurements on the running services (the caller starts them on clean data)."""
    if smoke:
        sustained_inputs, rate, seconds = 300, 100, 2.0
    cooperative = idempotent_producer(bootstrap, linger_ms=5, **kafka_options(settings(), COOPERATIVE))
    producer = idempotent_producer(bootstrap, linger_ms=5, **kafka_options(settings(), BUYER))
    await cooperative.start()
    await producer.start()
    try:
        await _seed_market(cooperative, producer, say)
        await wait_until_caught_up(bootstrap, dsn, timeout=120)
        sustained = await _sustained(bootstrap, producer, sustained_inputs, say)
        await wait_until_caught_up(bootstrap, dsn, timeout=600)
        latency = await _latency(bootstrap, producer, rate, seconds, say)
    finally:
        await producer.stop()
        await cooperative.stop()
    goals = {
        "sustained_goal_met": sustained >= 1500,
        "p99_goal_met": latency["p99_ms"] <= 250 and rate >= 500,
        "compass_sustained_met": sustained >= 5000,
        "compass_p99_met": latency["p99_ms"] <= 100 and rate >= 1000,
    }
    say(
        f"goals (issue 10): at least 1,500 inputs/s sustained: {'met' if goals['sustained_goal_met'] else 'not met'}; "
        f"p99 at most 250 ms at a steady 500/s: {'met' if goals['p99_goal_met'] else 'not met'} "
        f"(compass: 5,000/s {'met' if goals['compass_sustained_met'] else 'not met'}, "
        f"100 ms at 1,000/s {'met' if goals['compass_p99_met'] else 'not met'})"
    )
    return {"sustained_inputs": sustained_inputs, "sustained_inputs_per_s": round(sustained), "latency": latency, **goals}
