"""`farmlink chaos`: a bounded fault run on the local broker and server, and the proof that
nothing was lost or done twice.

A reproducible stream of input events (registrations, plantings, harvests, orders,
cancellations, commitments, prices, plans, and payments for the fills the run makes) goes
through every service while the run:

- SIGKILLs every service `kills_per_service` times at seeded random points, restarting each,
- stops the Kafka broker once with SIGTERM and once with SIGKILL, starting it again,
- restarts PostgreSQL once (pg_ctl restart -m fast),
- slows down and partitions the network between one service (`network_service`, matching by default)
  and the broker, and between it and PostgreSQL: that service's instance talks to both only through
  TCP links the run starts itself on loopback (farmlink/faults.py; the broker gets an extra listener
  whose advertised port is the link's, so every request of its Kafka clients goes through the link).
  `kafka-latency` and `postgres-latency` hold each chunk `latency` seconds each way for `hold`
  seconds; `kafka-partition` and `postgres-partition` pass nothing either way for `hold` seconds
  (open connections stall, new ones get no answer), then heal,
- fills PostgreSQL's WAL volume (`wal-full`): for the run, pg_wal lives on a small tmpfs of its own
  (root only; moved back onto disk at the end); the run fills it to the last byte and keeps it full
  for `hold` seconds (the server PANICs at its next WAL segment and stops), then frees it and starts
  the server again, as an operator would,

and meanwhile supervises the services the way a process manager would (a service that exits
by itself is started again and counted). Afterwards it checks, from the services' own
tables and the matcher's journal: every input has exactly one outcome in its service's inbox
(none lost), every recorded input reached the journal exactly once, no fill was made or
settled twice, no payment was split twice; and `farmlink audit` (PostgreSQL, reconciled
with Kafka) is clean with the same state hash as a fresh replay of the Kafka topics.

Recovery times, per fault (`Recovery`): for a kill, a broker stop and the PostgreSQL restart,
`back_s` is the time until the component runs again and `first_outcome_s` the time until the
first new input outcome, both from the fault. For a network fault and the full WAL volume,
`held_s` is how long the fault was held, and both times count from the heal (the freed volume):
`back_s` until the faulted component works again (the service under the network fault records
its first new event; PostgreSQL accepts connections), `first_outcome_s` until the first new input
outcome. `notes` says what the fault did meanwhile (events the service recorded while its link
was cut or slow, the link's connections and cuts; the server's ENOSPC log lines and whether it
stopped). docs/benchmarks.md has the figures of full runs.

Loopback only, local infrastructure only, and it stops by itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

import asyncpg
from aiokafka import AIOKafkaConsumer
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaError

from contracts.inputs import INPUT_OWNER, JOURNALED_EVENT_TYPES, SERVICE_INPUT_TOPIC
from contracts.parties import DEFAULT_DESK
from events.access import AUDITOR, BY_NAME, INPUT_PRODUCER, service_principal
from events.relay import idempotent_producer
from events.settings import kafka_options
from farmlink import infra, processes
from farmlink.caughtup import _records_between as records_between
from farmlink.caughtup import wait_until_caught_up
from farmlink.faults import FaultyLink, VolumeFiller
from farmlink.keyring import Keyring, local_keyring
from farmlink.publisher import input_message, key_of

Say = Callable[[str], None]

PRODUCTS = ("chili", "oil_tea_fruit", "sweet_potato", "black_fungus", "tea_leaf", "sorghum")
COUNTIES = {"Yanhe": ("Ketian", "Tangba", "Shaba"), "Yuping": ("Tianping",)}
BUYERS = ("tongren-mart", "zunyi-canteen", "guiyang-foods")
FLOOR_BUYER = "yuping-buyer"
MARKETS = ("Tongren", "Zunyi")
"""The markets whose price feeds report prices in a run."""
INPUT_SERVICES = ("cooperative", "buyer", "market", "settlement")
SOURCE_SCHEMAS = ("cooperative", "buyer", "market")
SEND_TIMEOUT_S = 30.0  # a batch Kafka has not acknowledged by then is sent again through new producers
NETWORK_FAULTS = ("kafka-latency", "kafka-partition", "postgres-latency", "postgres-partition")
KAFKA_FAULT_LISTENER_OFFSET = 4  # the broker's extra listener: FARMLINK_KAFKA_PORT + 4
KAFKA_LINK_OFFSET = 5  # the run's link to it, which the listener advertises: FARMLINK_KAFKA_PORT + 5
POSTGRES_LINK_OFFSET = 5  # the run's link to PostgreSQL: FARMLINK_POSTGRES_PORT + 5
WAL_VOLUME_MB = 256
RECOVERY_WINDOW_S = 180.0


# ---------------------------------------------------------------------------------------------
# The workload


class Workload:
    """A seeded stream of valid-looking inputs; a few are rejected by the rules, which is an outcome too."""

    def __init__(self, run_id: str, seed: int, cooperatives: int = 40):
        self.run_id = run_id
        self.rng = random.Random(seed)
        self.n = 0
        self.cooperatives: list[tuple[str, list[str]]] = []
        self.orders: list[tuple[str, str]] = []
        self.cooperative_count = cooperatives

    def _day(self, start: int = 0, span: int = 40) -> date:
        return date(2020, 9, 1) + timedelta(days=self.rng.randint(start, start + span))

    def _quantity(self, low: int, high: int) -> str:
        return f"{self.rng.randint(low, high)}.{self.rng.randint(0, 999):03d}"

    def message_id(self, n: int) -> str:
        return f"{self.run_id}-{n:07d}"

    def registrations(self) -> list[tuple[str, dict]]:
        """Every party of the run joins first (their keys are registered with them): the markets' price feeds,
        the settlement desk, the buyers and the cooperatives."""
        out: list[tuple[str, dict]] = [("price_feed.registered", {"market": market, "name": f"{market} market"}) for market in MARKETS]
        out.append(("settlement_desk.registered", {"desk_id": DEFAULT_DESK, "name": "county settlement desk"}))
        out += [("buyer.registered", {"buyer_id": buyer_id, "name": buyer_id}) for buyer_id in (*BUYERS, FLOOR_BUYER)]
        for c in range(self.cooperative_count):
            county = self.rng.choice(sorted(COUNTIES))
            households = [f"{self.run_id}-h{c}-{h}" for h in range(self.rng.randint(1, 5))]
            cooperative_id = f"{self.run_id}-coop{c}"
            self.cooperatives.append((cooperative_id, households))
            out.append(("cooperative.registered", {
                "cooperative_id": cooperative_id, "name": f"cooperative {c}", "county": county,
                "township": self.rng.choice(COUNTIES[county]), "village": f"village {c}",
                "households": [{"household_id": h, "registered_poor": self.rng.random() < 0.6} for h in households]}))
        return out

    def next_input(self) -> tuple[str, dict]:
        """One input of the stream (never a payment: those follow the fills, see `payment`)."""
        self.n += 1
        n, rng = self.n, self.rng
        kind = rng.choices(["lot", "order", "price", "planting", "commitment", "cancel", "plan"], [34, 34, 12, 8, 3, 6, 3])[0]
        product = rng.choice(PRODUCTS)
        if kind == "lot":
            cooperative_id, households = rng.choice(self.cooperatives)
            members = rng.sample(households, rng.randint(1, len(households)))
            parts = [self._quantity(1, 300) for _ in members]
            start = self._day()
            return "harvest.recorded", {
                "lot_id": f"{self.run_id}-lot{n}", "cooperative_id": cooperative_id, "product": product, "grade": rng.choice("ABC"),
                "quantity": str(sum(Decimal(p) for p in parts)), "available_from": start.isoformat(),
                "expires_on": (start + timedelta(days=rng.randint(5, 30))).isoformat(),
                "contributions": [{"household_id": m, "quantity": p} for m, p in zip(members, parts, strict=True)]}
        if kind == "order" or (kind == "cancel" and not self.orders):
            start = self._day()
            order_id, buyer_id = f"{self.run_id}-order{n}", rng.choice(BUYERS)
            self.orders.append((order_id, buyer_id))
            return "order.placed", {
                "order_id": order_id, "buyer_id": buyer_id, "product": product, "min_grade": rng.choice("ABC"),
                "quantity": self._quantity(1, 500), "limit_price_fen": rng.randint(300, 900), "deliver_from": start.isoformat(),
                "deliver_to": (start + timedelta(days=rng.randint(5, 30))).isoformat(),
                "regions": rng.choice([[], [], ["Yanhe"], ["Yanhe", "Yuping"]])}
        if kind == "cancel":
            order_id, buyer_id = self.orders.pop(rng.randrange(len(self.orders)))
            return "order.cancelled", {"order_id": order_id, "buyer_id": buyer_id}
        if kind == "price":
            return "market_price.observed", {
                "product": product, "grade": rng.choice("ABC"), "market": rng.choice(MARKETS),
                "price_fen": rng.randint(250, 900), "observed_on": self._day(-10).isoformat()}
        if kind == "planting":
            cooperative_id, households = rng.choice(self.cooperatives)
            start = self._day(-60)
            return "planting.recorded", {
                "planting_id": f"{self.run_id}-planting{n}", "cooperative_id": cooperative_id, "product": product,
                "area_mu": f"{rng.randint(1, 30)}.{rng.randint(0, 99):02d}", "expected_yield": self._quantity(10, 900),
                "expected_harvest_from": start.isoformat(), "expected_harvest_to": (start + timedelta(days=30)).isoformat(),
                "household_ids": [households[0]]}
        if kind == "commitment":
            start = self._day(0, 10)
            return "commitment.made", {
                "commitment_id": f"{self.run_id}-commitment{n}", "buyer_id": FLOOR_BUYER, "product": product,
                "min_grade": rng.choice("ABC"), "floor_price_fen": rng.randint(300, 700), "reference_market": "Tongren",
                "valid_from": start.isoformat(), "valid_to": (start + timedelta(days=rng.randint(10, 60))).isoformat(),
                "eligible_counties": rng.choice([[], ["Yanhe"]]), "eligible_cooperatives": [],
                "cap_quantity": rng.choice([None, self._quantity(100, 3000)]), "max_quantity_per_mu": None}
        county = rng.choice(sorted(COUNTIES))
        return "plan.recorded", {
            "plan_id": f"{self.run_id}-plan{n}", "county": county, "township": rng.choice(COUNTIES[county]), "product": product,
            "area_mu": f"{rng.randint(100, 3000)}", "target_household_income_fen": rng.randint(100_000, 2_000_000)}


def payment(lot_id: str, outlet_id: str, amount_fen: int) -> tuple[str, dict]:
    return "payment.made", {"lot_id": lot_id, "outlet_id": outlet_id, "amount_fen": amount_fen}


def encode(message_id: str, input_type: str, payload: dict, correlation_id: str, keyring: Keyring) -> tuple[str, bytes, bytes]:
    """(topic, key, value) of one input, as `farmlink publish` would send it: signed by its producer."""
    message = input_message(input_type, payload, correlation_id, keyring, message_id=message_id)
    return SERVICE_INPUT_TOPIC[INPUT_OWNER[input_type]], key_of(input_type, payload).encode(), message.model_dump_json().encode()


# ---------------------------------------------------------------------------------------------
# Faults


PAYMENT_SHARE = 4
"""At least 1/PAYMENT_SHARE of a run's inputs are payments: the rest of the run waits for fills to pay."""
PAYMENT_WAIT_S = 180.0
"""How long the payment reserve waits without a new fill reaching settlement before other inputs fill it."""

PROBE_IN_FLIGHT = 100
HOLD, RECOVER = "hold", "recover"
"""What the sender's trickle is for while a fault is handled: a held fault (network, full WAL), or a recovery being measured."""
"""Inputs kept in flight while a fault heals, so its first new outcome can be seen."""


@dataclass(frozen=True)
class Fault:
    """One planned fault, due when this fraction of the run's inputs has an outcome."""

    at: float
    kind: str  # kill-service | kafka-sigterm | kafka-sigkill | postgres-restart | NETWORK_FAULTS | wal-full
    target: str = ""

    @property
    def label(self) -> str:
        return f"{self.kind} {self.target}".strip()


def plan_faults(seed: int, kills_per_service: int, services: tuple[str, ...] = processes.SERVICES,
                network: tuple[str, ...] = (), network_service: str = "", wal_full: bool = False) -> list[Fault]:
    """Every fault at a seeded random point between 5% and 90% of the run, in order. The network faults
    (`network`, each of NETWORK_FAULTS at most once, on `network_service`) and the full WAL volume are drawn
    after the others, so a seed strikes its kills and bounces where it did before they existed."""
    if unknown := [kind for kind in network if kind not in NETWORK_FAULTS]:
        raise ValueError(f"unknown network fault {', '.join(unknown)}; known: {', '.join(NETWORK_FAULTS)}")
    if network and network_service not in processes.SERVICES:
        raise ValueError(f"network faults need a service to strike, one of {', '.join(processes.SERVICES)}; "
                         f"not {network_service!r}")
    rng = random.Random(seed * 7919 + 1)
    faults = [Fault(rng.uniform(0.05, 0.9), "kill-service", name) for name in services for _ in range(kills_per_service)]
    faults += [Fault(rng.uniform(0.05, 0.9), kind) for kind in ("kafka-sigterm", "kafka-sigkill", "postgres-restart")]
    faults += [Fault(rng.uniform(0.05, 0.9), kind, network_service) for kind in NETWORK_FAULTS if kind in network]
    if wal_full:
        faults.append(Fault(rng.uniform(0.05, 0.9), "wal-full"))
    return sorted(faults, key=lambda f: f.at)


@dataclass
class Recovery:
    """How long one fault took to heal: the component back, and the first new outcome after it (from the fault;
    for a fault held on purpose, `held_s`, from its heal); `notes`: what the fault did meanwhile."""

    fault: str
    back_s: float | None
    first_outcome_s: float | None = None
    held_s: float | None = None
    notes: dict[str, Any] = field(default_factory=dict)


@dataclass
class ChaosReport:
    events: int = 0
    sent_by_service: dict[str, int] = field(default_factory=dict)
    outcomes: int = 0
    lost: int = 0
    lost_examples: list[str] = field(default_factory=list)
    journal_missing: int = 0
    journal_duplicates: int = 0
    fills: int = 0
    duplicate_fills: int = 0
    settled_fills: int = 0
    fills_on_kafka: int = 0
    fill_redeliveries_on_kafka: int = 0
    payments: int = 0
    duplicate_payments: int = 0
    paid_fen: int = 0
    income_fen: int = 0
    send_retries: int = 0
    send_waits: int = 0  # records handed to a producer again while the broker had no leader (not sent: no resend)
    fault_count: dict[str, int] = field(default_factory=dict)
    unplanned_restarts: dict[str, int] = field(default_factory=dict)
    recoveries: list[Recovery] = field(default_factory=list)
    audit_clean: bool = False
    audit_findings: list[str] = field(default_factory=list)
    state_hash_postgres: str = ""
    state_hash_kafka: str = ""
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return (self.lost == 0 and self.journal_missing == 0 and self.journal_duplicates == 0 and self.duplicate_fills == 0
                and self.settled_fills == self.fills and self.duplicate_payments == 0 and self.paid_fen == self.income_fen
                and self.audit_clean and self.state_hash_postgres == self.state_hash_kafka)

    def as_dict(self) -> dict[str, Any]:
        data = {k: v for k, v in self.__dict__.items() if k != "recoveries"}
        data["recoveries"] = [r.__dict__ for r in self.recoveries]
        data["ok"] = self.ok
        return data


# ---------------------------------------------------------------------------------------------
# The run


@dataclass(frozen=True)
class FaultOptions:
    """The faults beyond kill: which network faults strike `network_service`, how slow and how long, the WAL volume."""

    network: tuple[str, ...] = NETWORK_FAULTS
    network_service: str = "matching"
    latency_s: float = 0.3
    hold_s: float = 30.0
    wal_full: bool = True


NO_FAULTS_BEYOND_KILL = FaultOptions(network=(), wal_full=False)


def ask_for_fault_listener(config: Any) -> tuple[int, int]:
    """Set the environment so that every start of the local broker from this process has the fault listener
    (farmlink.infra.kafka_fault_listener) the run's Kafka link needs; (listener port, link port). Called before the
    broker is first brought up, it saves the run a restart of the broker."""
    listener = config.farmlink_kafka_port + KAFKA_FAULT_LISTENER_OFFSET
    link = config.farmlink_kafka_port + KAFKA_LINK_OFFSET
    os.environ.update({infra.KAFKA_FAULT_PORT_ENV: str(listener), infra.KAFKA_FAULT_ADVERTISED_PORT_ENV: str(link)})
    return listener, link


def _port_free(port: int) -> bool:
    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


class ChaosRun:
    def __init__(self, events: int, seed: int, kills_per_service: int, window: int, say: Say,
                 progress: Callable[[int, int], None] | None = None, services: tuple[str, ...] = processes.SERVICES,
                 beyond: FaultOptions = NO_FAULTS_BEYOND_KILL):
        self.config = infra.settings()
        self.events = events
        self.seed = seed
        self.run_id = f"chaos{seed}-{os.getpid() % 10000:04d}"
        self.workload = Workload(self.run_id, seed)
        self.beyond = beyond
        self.faults = plan_faults(seed, kills_per_service, services, beyond.network, beyond.network_service, beyond.wal_full)
        self.kafka_link: FaultyLink | None = None
        self.postgres_link: FaultyLink | None = None
        self._starting = asyncio.Lock()
        self._environ_before: dict[str, str | None] = {}
        self._wal_moved = False
        self._next_fault: Fault | None = None
        self.window = window
        self.say = say
        self.progress = progress or (lambda done, total: None)
        self.report = ChaosReport(events=events)
        self.sent = 0
        self.sent_by_service: dict[str, int] = dict.fromkeys(INPUT_SERVICES, 0)
        self.outcomes = 0
        self.probing: str | None = None  # HOLD or RECOVER while a fault is handled
        self.paying: set[tuple[str, str]] = set()
        self.restarting: set[str] = set()
        self.supervising = True
        self.producers: dict[str, Any] = {}  # one per input principal (events/access.py)
        self.keyring = local_keyring()

    # -- plumbing that survives the faults

    async def _db(self) -> asyncpg.Connection:
        while True:
            try:
                return await asyncpg.connect(self.config.dsn, timeout=5)
            except (OSError, asyncpg.PostgresError, asyncio.TimeoutError):
                await asyncio.sleep(0.5)

    async def _count_outcomes(self) -> int:
        """Inputs of this run that have an outcome: their message id in the owning service's inbox."""
        low, high = f"{self.run_id}-", f"{self.run_id}."  # '.' sorts right after '-'
        while True:
            try:
                conn = await asyncpg.connect(self.config.dsn, timeout=5)
                try:
                    total = 0
                    for service in INPUT_SERVICES:
                        if await conn.fetchval("SELECT to_regclass($1) IS NOT NULL", f"{service}.inbox"):
                            total += await conn.fetchval(
                                f'SELECT count(*) FROM "{service}".inbox WHERE consumer = $1 AND message_id > $2 AND message_id < $3',
                                service, low, high)
                    return total
                finally:
                    await conn.close()
            except (OSError, asyncpg.PostgresError, asyncio.TimeoutError):
                await asyncio.sleep(0.5)

    async def _producer(self, topic: str):
        principal = INPUT_PRODUCER[topic]
        if principal not in self.producers:
            producer = idempotent_producer(self.config.bootstrap, linger_ms=5, request_timeout_ms=10000,
                                           **kafka_options(self.config, principal))
            await producer.start()
            self.producers[principal] = producer
        return self.producers[principal]

    async def _stop_producers(self) -> None:
        producers, self.producers = list(self.producers.values()), {}
        for producer in producers:
            with contextlib.suppress(Exception):
                await producer.stop()

    async def _enqueue(self, topic: str, key: bytes, value: bytes) -> asyncio.Future:
        """Hand one record to its producer; while the broker has no leader for its partition (a bounce), wait
        and ask again: nothing was sent yet, so this is no resend."""
        while True:
            try:
                return await (await self._producer(topic)).send(topic, value, key=key)
            except KafkaError as error:
                if not getattr(error, "retriable", False):
                    raise
                self.report.send_waits += 1
                await asyncio.sleep(0.5)

    async def _send(self, batch: list[tuple[str, bytes, bytes]]) -> None:
        """Send, each input topic as its producer principal, until Kafka acknowledged every record
        (a resend after a fault is deduplicated by the inbox; `send_retries` counts them)."""
        while True:
            try:
                futures = [await self._enqueue(topic, key, value) for topic, key, value in batch]
                await asyncio.wait_for(asyncio.gather(*futures), SEND_TIMEOUT_S)
                return
            except (KafkaError, OSError, asyncio.TimeoutError) as error:
                self.report.send_retries += 1
                self.say(f"sender: {type(error).__name__} {error}; new producers, sending the batch again")
                await self._stop_producers()
                await asyncio.sleep(1.0)

    def _encode(self, input_type: str, payload: dict) -> tuple[str, bytes, bytes]:
        message_id = self.workload.message_id(self.sent)
        self.sent += 1
        self.sent_by_service[INPUT_OWNER[input_type]] += 1
        return encode(message_id, input_type, payload, f"{self.run_id}:{message_id}", self.keyring)

    # -- supervision and faults

    async def _start_services(self) -> None:
        async with self._starting:  # the supervisor and a fault must not launch the same instance twice
            await asyncio.to_thread(self._start_services_blocking)

    def _start_services_blocking(self) -> None:
        linked = []
        if self.kafka_link is not None and processes.running_pid(self.beyond.network_service) is None:
            self._launch_linked()
            linked.append(self.beyond.network_service)
        processes.start_all(lambda message: None)
        processes.wait_ready(linked)

    def _launch_linked(self) -> None:
        """Start the service under the network faults (its first instance) talking to Kafka and PostgreSQL only
        through the run's links: `processes.launch`, with the two ports pointing at the links."""
        name = self.beyond.network_service
        assert self.kafka_link is not None and self.postgres_link is not None
        processes.ready_file(name).unlink(missing_ok=True)
        env = {**os.environ, "PYTHONUNBUFFERED": "1", "FARMLINK_KAFKA_PORT": str(self.kafka_link.port),
               "FARMLINK_POSTGRES_PORT": str(self.postgres_link.port)}
        with processes.log_file(name).open("ab") as log:
            process = subprocess.Popen([sys.executable, "-m", "farmlink.cli", "serve", name], stdout=log,
                                       stderr=subprocess.STDOUT, start_new_session=True, env=env)
        processes.pid_file(name).write_text(str(process.pid))

    # -- the links and the WAL volume, set up before the services start and undone after the proofs

    async def _prepare_beyond_kill(self) -> None:
        beyond, config = self.beyond, self.config
        if beyond.network:
            postgres_link_port = config.farmlink_postgres_port + POSTGRES_LINK_OFFSET
            self._environ_before = {name: os.environ.get(name)
                                    for name in (infra.KAFKA_FAULT_PORT_ENV, infra.KAFKA_FAULT_ADVERTISED_PORT_ENV)}
            # every start of the broker in this run (the bounces too) has the listener
            listener, kafka_link_port = ask_for_fault_listener(config)
            if not infra.kafka_fault_listener_running():
                taken = [port for port in (listener,) if not _port_free(port)]
                if taken:
                    raise infra.InfraError(f"port 127.0.0.1:{taken[0]} (the broker's fault listener, FARMLINK_KAFKA_PORT + "
                                           f"{KAFKA_FAULT_LISTENER_OFFSET}) is taken")
                self.say(f"restarting Kafka with a fault listener on 127.0.0.1:{listener} (advertised as the run's link "
                         f"on {kafka_link_port})")
                await asyncio.to_thread(infra.kill_kafka, signal.SIGTERM, lambda message: None)
                await self._bring_up("the fault listener")
            try:
                self.kafka_link = await FaultyLink("kafka", listener, kafka_link_port).start()
                self.postgres_link = await FaultyLink("postgres", config.farmlink_postgres_port, postgres_link_port).start()
            except OSError as error:
                raise infra.InfraError(f"the run's fault links need 127.0.0.1:{kafka_link_port} and :{postgres_link_port} "
                                       f"(FARMLINK_KAFKA_PORT + {KAFKA_LINK_OFFSET}, FARMLINK_POSTGRES_PORT + "
                                       f"{POSTGRES_LINK_OFFSET}): {error}") from error
            self.say(f"{beyond.network_service} talks to Kafka through 127.0.0.1:{kafka_link_port} and to PostgreSQL "
                     f"through 127.0.0.1:{postgres_link_port}")
        if beyond.wal_full:
            self._wal_moved = True
            volume = await asyncio.to_thread(infra.move_wal_to_volume, WAL_VOLUME_MB, lambda message: None)
            self.say(f"pg_wal is on a {WAL_VOLUME_MB} MB tmpfs at {volume} for this run")

    async def _undo_beyond_kill(self) -> None:
        for link in (self.kafka_link, self.postgres_link):
            if link is not None:
                link.heal()
        try:
            if self._wal_moved:
                await asyncio.to_thread(infra.move_wal_back, lambda message: None)
                self.say("pg_wal is back on disk; the WAL volume is unmounted")
        finally:
            for name, value in self._environ_before.items():
                if value is None:
                    os.environ.pop(name, None)
                else:
                    os.environ[name] = value

    async def _close_links(self) -> None:
        for link in (self.kafka_link, self.postgres_link):
            if link is not None:
                await link.close()

    async def _supervise(self) -> None:
        """Start again any service that exited by itself (what systemd or a container runtime would do)."""
        while self.supervising:
            await asyncio.sleep(1.0)
            for name, pid in processes.service_status().items():
                if pid is None and name not in self.restarting:
                    self.report.unplanned_restarts[name] = self.report.unplanned_restarts.get(name, 0) + 1
                    self.say(f"supervisor: {name} exited by itself; starting it again")
                    self.restarting.add(name)
                    try:
                        await self._start_services()
                    except RuntimeError as error:
                        self.say(f"supervisor: {error}; will try again")
                    finally:
                        self.restarting.discard(name)

    async def _inflict(self, fault: Fault) -> Recovery:
        self.say(f"fault at {self.outcomes:,}/{self.events:,} outcomes: {fault.label}")
        self.report.fault_count[fault.kind] = self.report.fault_count.get(fault.kind, 0) + 1
        if fault.kind in NETWORK_FAULTS:
            return await self._inflict_network(fault)
        if fault.kind == "wal-full":
            return await self._inflict_wal_full(fault)
        started = time.monotonic()
        if fault.kind == "kill-service":
            self.restarting.add(fault.target)
            try:
                pid = processes.running_pid(fault.target)
                if pid is not None:
                    os.kill(pid, signal.SIGKILL)
                    with contextlib.suppress(ChildProcessError):
                        await asyncio.to_thread(os.waitpid, pid, 0)
                while True:
                    try:
                        await self._start_services()
                        break
                    except RuntimeError as error:
                        self.say(f"restart of {fault.target} failed ({error}); trying again")
                        await asyncio.sleep(1.0)
            finally:
                self.restarting.discard(fault.target)
        elif fault.kind in ("kafka-sigterm", "kafka-sigkill"):
            sig = signal.SIGTERM if fault.kind == "kafka-sigterm" else signal.SIGKILL
            await asyncio.to_thread(infra.kill_kafka, sig, lambda message: None)
            await self._bring_up(fault.label)
        elif fault.kind == "postgres-restart":
            await asyncio.to_thread(infra.restart_postgres, lambda message: None)
        recovery = Recovery(fault.label, round(time.monotonic() - started, 2))
        recovery.first_outcome_s = await self._first_new_outcome(started)
        self.say(f"  {fault.label}: back in {recovery.back_s} s; first new outcome after {recovery.first_outcome_s} s")
        return recovery

    async def _bring_up(self, what: str, attempts: int = 3) -> None:
        """infra.ensure_up until it succeeds: on a loaded machine a broker can take longer than its 90 s to answer,
        and a second call finds it running and waits again (an operator would do the same)."""
        for attempt in range(1, attempts + 1):
            try:
                await asyncio.to_thread(infra.ensure_up, lambda message: None)
                return
            except infra.InfraError as error:
                if attempt == attempts:
                    raise
                self.say(f"  {what}: bringing the infrastructure up failed ({str(error).splitlines()[0]}); trying again")

    async def _first_new_outcome(self, since: float) -> float | None:
        """Seconds from `since` until an input gets an outcome it did not have now (None: not within the window)."""
        before = await self._count_outcomes()
        deadline = time.monotonic() + RECOVERY_WINDOW_S
        self.probing = RECOVER  # inputs must flow for a new outcome to show, even past the next fault's point
        try:
            while time.monotonic() < deadline and before < self.events:
                if await self._count_outcomes() > before:
                    return round(time.monotonic() - since, 2)
                await asyncio.sleep(0.1)
        finally:
            self.probing = None
        return None

    async def _recorded(self, service: str) -> int:
        """The last global position of `service`'s own events (read directly, not through the links)."""
        while True:
            try:
                conn = await asyncpg.connect(self.config.dsn, timeout=5)
                try:
                    if not await conn.fetchval("SELECT to_regclass($1) IS NOT NULL", f"{service}.events"):
                        return 0
                    return await conn.fetchval(f'SELECT coalesce(max(global_position), 0) FROM "{service}".events')
                finally:
                    await conn.close()
            except (OSError, asyncpg.PostgresError, asyncio.TimeoutError):
                await asyncio.sleep(0.5)

    async def _caught_up(self, service: str, admin: AIOKafkaAdminClient, consumer: AIOKafkaConsumer) -> bool:
        """Whether `service` has nothing left to do: its outbox empty, no record waiting for its consumer groups."""
        conn = await self._db()
        try:
            if await conn.fetchval("SELECT to_regclass($1) IS NOT NULL", f"{service}.outbox") and \
                    await conn.fetchval(f'SELECT count(*) FROM "{service}".outbox'):
                return False
        finally:
            await conn.close()
        for group in BY_NAME[service_principal(service)].groups:
            committed = await admin.list_consumer_group_offsets(group)
            ends = await consumer.end_offsets(list(committed)) if committed else {}
            for tp, meta in committed.items():
                if meta.offset >= 0 and ends[tp] > meta.offset and await records_between(consumer, tp, meta.offset, ends[tp]):
                    return False
        return True

    async def _own_work_after(self, service: str, since: float) -> float | None:
        """Seconds from `since` until `service` works again: it records an event it had not recorded now, or it is
        seen with nothing left to do (caught up); None: neither within the window, a stall."""
        before = await self._recorded(service)
        deadline = time.monotonic() + RECOVERY_WINDOW_S
        security = kafka_options(self.config, AUDITOR)
        admin = AIOKafkaAdminClient(bootstrap_servers=self.config.bootstrap, **security)
        consumer = AIOKafkaConsumer(bootstrap_servers=self.config.bootstrap, enable_auto_commit=False,
                                    isolation_level="read_committed", **security)
        self.probing = RECOVER
        try:
            await admin.start()
            await consumer.start()
            last_lag_check = 0.0
            while time.monotonic() < deadline:
                if await self._recorded(service) > before:
                    return round(time.monotonic() - since, 2)
                if time.monotonic() - last_lag_check > 1.0:
                    last_lag_check = time.monotonic()
                    with contextlib.suppress(KafkaError, OSError, asyncio.TimeoutError):
                        if await self._caught_up(service, admin, consumer):
                            return round(time.monotonic() - since, 2)
                await asyncio.sleep(0.1)
        finally:
            self.probing = None
            with contextlib.suppress(Exception):
                await consumer.stop()
            with contextlib.suppress(Exception):
                await admin.close()
        return None

    async def _inflict_network(self, fault: Fault) -> Recovery:
        """Slow down or cut the service's link to the broker or to PostgreSQL for `hold_s`, then heal it; then
        wait for the service's own next event, and for the run's next outcome."""
        link = self.kafka_link if fault.kind.startswith("kafka") else self.postgres_link
        assert link is not None, "the links are set up before the first fault"
        service = fault.target
        recorded = await self._recorded(service)
        cut_before = link.stats.cut
        if fault.kind.endswith("latency"):
            link.delay(self.beyond.latency_s)
        else:
            link.partition("blackhole")
        started = time.monotonic()
        self.probing = HOLD  # inputs keep coming, so the service has work waiting when it heals
        try:
            await asyncio.sleep(self.beyond.hold_s)
        finally:
            self.probing = None
            recorded_while_held = await self._recorded(service) - recorded
            link.heal()
        healed = time.monotonic()
        recovery = Recovery(fault.label, None, held_s=round(healed - started, 2), notes={
            "recorded_while_held": recorded_while_held, "link_connections": link.stats.connections,
            "link_cuts": link.stats.cut - cut_before})
        if fault.kind.endswith("latency"):
            recovery.notes["latency_ms_each_way"] = round(self.beyond.latency_s * 1000)
        recovery.back_s = await self._own_work_after(service, healed)
        recovery.first_outcome_s = await self._first_new_outcome(healed)
        self.say(f"  {fault.label}: held {recovery.held_s} s ({recorded_while_held} events recorded by {service} "
                 f"meanwhile); after the heal {service} worked again in {recovery.back_s} s, first new outcome after "
                 f"{recovery.first_outcome_s} s")
        return recovery

    async def _inflict_wal_full(self, fault: Fault) -> Recovery:
        """Fill the WAL volume and keep it full for `hold_s` (the next WAL segment cannot be created: the server
        PANICs and stops), then free it and start the server again, as its operator would."""
        layout = infra.Layout.of()
        filler = VolumeFiller(infra.wal_volume(layout), infra.WAL_FILLER_PREFIX)
        log_start = layout.postgres_log.stat().st_size if layout.postgres_log.exists() else 0
        started = time.monotonic()
        filled = await asyncio.to_thread(filler.fill)
        stopped_after: float | None = None
        self.probing = HOLD
        try:
            while time.monotonic() - started < self.beyond.hold_s:
                if stopped_after is None:
                    with contextlib.suppress(Exception):  # WAL wants a new segment now, whether the services write or not
                        await asyncio.to_thread(infra.switch_wal)
                await asyncio.sleep(0.5)
                filled += await asyncio.to_thread(filler.fill)  # what the server freed is taken again
                if stopped_after is None and not await asyncio.to_thread(infra.postgres_running, layout):
                    stopped_after = round(time.monotonic() - started, 2)
        finally:
            self.probing = None
            await asyncio.to_thread(filler.free)
        healed = time.monotonic()
        restarted = False
        if not await asyncio.to_thread(infra.postgres_running, layout):
            restarted = True
            await self._bring_up(fault.label)
        conn = await self._db()
        await conn.close()
        recovery = Recovery(fault.label, round(time.monotonic() - healed, 2), held_s=round(healed - started, 2))
        recovery.notes = {"filled_mb": round(filled / 2**20, 1), "server_stopped_after_s": stopped_after,
                          "started_again": restarted, "enospc_log_lines": _enospc_lines(layout.postgres_log, log_start)}
        recovery.first_outcome_s = await self._first_new_outcome(healed)
        self.say(f"  {fault.label}: held {recovery.held_s} s (server stopped after {stopped_after} s, "
                 f"{recovery.notes['enospc_log_lines']} ENOSPC lines in its log); after freeing, PostgreSQL back in "
                 f"{recovery.back_s} s, first new outcome after {recovery.first_outcome_s} s")
        return recovery

    async def _inflict_all(self) -> None:
        """Each planned fault once its point of the run is reached, one after another, while the inputs keep flowing."""
        for index, fault in enumerate(self.faults):
            self._next_fault = fault
            while self.outcomes < fault.at * self.events:
                await asyncio.sleep(0.1)
            # From here the inputs flow on (up to the next fault's point) while this fault heals.
            self._next_fault = self.faults[index + 1] if index + 1 < len(self.faults) else None
            self.report.recoveries.append(await self._inflict(fault))

    # -- payments follow the fills

    async def _new_payments(self) -> list[tuple[str, dict]]:
        """Pay each fill of this run settlement knows and the run has not paid yet: two instalments when it can."""
        try:
            conn = await asyncpg.connect(self.config.dsn, timeout=5)
        except (OSError, asyncpg.PostgresError, asyncio.TimeoutError):
            return []
        try:
            if not await conn.fetchval("SELECT to_regclass('settlement.fills') IS NOT NULL"):
                return []
            rows = await conn.fetch("SELECT lot_id, outlet_id, revenue_fen FROM settlement.fills WHERE lot_id LIKE $1 "
                                    "ORDER BY fill_id", f"{self.run_id}-%")
        except (OSError, asyncpg.PostgresError):
            return []
        finally:
            with contextlib.suppress(Exception):
                await conn.close()
        out = []
        for row in rows:
            account = (row["lot_id"], row["outlet_id"])
            if account in self.paying or row["revenue_fen"] <= 0:
                continue
            self.paying.add(account)
            first = row["revenue_fen"] // 2
            if first:
                out.append(payment(*account, first))
            out.append(payment(*account, row["revenue_fen"] - first))
        return out

    # -- the whole run

    async def run(self) -> ChaosReport:
        began = time.monotonic()
        try:
            await self._prepare_beyond_kill()
            await self._run(began)
        finally:
            with contextlib.suppress(Exception):
                await asyncio.to_thread(processes.stop_all, lambda message: None)  # before the links and the WAL go
            await self._close_links()
            await self._undo_beyond_kill()
        return self.report

    async def _run(self, began: float) -> None:
        await self._start_services()
        supervisor = asyncio.create_task(self._supervise())
        faults = asyncio.create_task(self._inflict_all())  # waits for its first point of the run
        try:
            registrations = [self._encode(kind, payload) for kind, payload in self.workload.registrations()]
            await self._send(registrations)
            while await self._count_outcomes() < len(registrations):
                await asyncio.sleep(0.2)
            pending_payments: list[tuple[str, dict]] = []
            last_payment_check = 0.0
            paid_sent = 0
            payment_wait: float | None = None
            while True:
                self.outcomes = await self._count_outcomes()
                self.progress(self.outcomes, self.events)
                if faults.done():
                    faults.result()  # a fault that could not be inflicted ends the run here
                if self.sent >= self.events:
                    if self.outcomes >= self.events and faults.done():
                        break
                    await asyncio.sleep(0.2)
                    continue
                reserved = self.sent - paid_sent >= self.events - self.events // PAYMENT_SHARE
                if time.monotonic() - last_payment_check > (0.5 if reserved else 2.0):
                    new_payments = await self._new_payments()
                    if new_payments:
                        payment_wait = None  # fills still reach settlement: the reserve keeps waiting for more
                    pending_payments += new_payments
                    last_payment_check = time.monotonic()
                room = min(self.window - (self.sent - self.outcomes), self.events - self.sent, 500)
                cap = self.events if self._next_fault is None else int(self._next_fault.at * self.events) + self.window
                if not faults.done():  # the last inputs wait for the last fault, so even it has new outcomes to show
                    cap = min(cap, self.events - min(self.window, self.events // 20))
                room = min(room, cap - self.sent)  # the inputs wait for a fault that is due, so it strikes mid-stream
                in_flight = self.sent - self.outcomes
                if self.probing == HOLD:  # ... but while a fault is held a trickle goes on, so the service has work
                    # waiting when it heals; it passes the cap by PROBE_IN_FLIGHT at most, or in a short run the long
                    # faults would let every input through before the later faults' points (they struck after the last
                    # outcome, where no new outcome can show)
                    room = max(room, min(PROBE_IN_FLIGHT - in_flight, self.events - self.sent, cap + PROBE_IN_FLIGHT - self.sent))
                elif self.probing == RECOVER and in_flight == 0:  # after the heal: nothing in flight, so no new outcome
                    room = max(room, min(PROBE_IN_FLIGHT, self.events - self.sent))  # could show without a few more
                if room <= 0:
                    await asyncio.sleep(0.05)
                    continue
                batch = []
                for _ in range(room):
                    if pending_payments:
                        kind, payload = pending_payments.pop(0)
                        paid_sent += 1
                    elif self.sent + len(batch) - paid_sent >= self.events - self.events // PAYMENT_SHARE:
                        # The rest of the run is kept for payments, which follow the fills (a fast pipeline
                        # would otherwise send every other input before the first fill reached settlement);
                        # if no new fill reaches settlement for PAYMENT_WAIT_S (a broker bounce under
                        # load takes minutes), other inputs fill it.
                        payment_wait = payment_wait or time.monotonic() + PAYMENT_WAIT_S
                        if time.monotonic() < payment_wait:
                            break
                        kind, payload = self.workload.next_input()
                    else:
                        kind, payload = self.workload.next_input()
                    batch.append(self._encode(kind, payload))
                if not batch:
                    await asyncio.sleep(0.1)
                    continue
                await self._send(batch)
            self.progress(self.outcomes, self.events)
            self.say("every input has its outcome; waiting until every service has caught up ...")
            await wait_until_caught_up(self.config.bootstrap, self.config.dsn, timeout=900)
        finally:
            self.supervising = False
            for task in (supervisor, faults):
                task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await supervisor
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await faults
            await self._stop_producers()
        self.report.sent_by_service = dict(self.sent_by_service)
        await self._verify()
        self.report.seconds = round(time.monotonic() - began, 1)

    async def _verify(self) -> None:
        """Count, from the services' own tables, what was lost or done twice; then audit."""
        from farmlink.audit.run import audit

        report = self.report
        conn = await self._db()
        try:
            prefix = f"{self.run_id}-"
            seen: set[str] = set()
            for service in INPUT_SERVICES:
                rows = await conn.fetch(f'SELECT message_id FROM "{service}".inbox WHERE consumer = $1 AND message_id LIKE $2',
                                        service, prefix + "%")
                seen |= {r["message_id"] for r in rows}
            expected = {self.workload.message_id(n) for n in range(self.sent)}
            missing = sorted(expected - seen)
            report.outcomes, report.lost, report.lost_examples = len(expected & seen), len(missing), missing[:5]

            recorded: list[str] = []
            for schema in SOURCE_SCHEMAS:
                recorded += [str(r["event_id"]) for r in await conn.fetch(
                    f'SELECT event_id FROM "{schema}".events WHERE event_type = ANY($1::text[])', list(JOURNALED_EVENT_TYPES))]
            journaled = [r["source"] for r in await conn.fetch(
                "SELECT payload->>'source_event_id' AS source FROM matching.events WHERE event_type = 'InputJournaled'")]
            report.journal_missing = len(set(recorded) - set(journaled))
            report.journal_duplicates = len(journaled) - len(set(journaled))

            fills = await conn.fetch("SELECT payload->>'fill_id' AS fill_id FROM matching.events WHERE event_type = 'FillMade'")
            report.fills = len(fills)
            report.duplicate_fills = len(fills) - len({r["fill_id"] for r in fills})
            report.settled_fills = await conn.fetchval("SELECT count(*) FROM settlement.fills")

            payments = await conn.fetch("SELECT causation_id, (payload->>'amount_fen')::bigint AS fen FROM settlement.events "
                                        "WHERE event_type = 'PaymentMade'")
            report.payments = len(payments)
            report.duplicate_payments = len(payments) - len({r["causation_id"] for r in payments})
            report.paid_fen = sum(r["fen"] for r in payments)
            report.income_fen = int(await conn.fetchval("SELECT coalesce(sum(paid_fen), 0) FROM settlement.incomes"))
            paid_on_fills = int(await conn.fetchval("SELECT coalesce(sum(paid_fen), 0) FROM settlement.fills"))
            if paid_on_fills != report.paid_fen:
                report.audit_findings.append(f"settlement.fills says {paid_on_fills} fen paid, PaymentMade events {report.paid_fen}")
        finally:
            await conn.close()

        report.fills_on_kafka, report.fill_redeliveries_on_kafka = await self._fill_copies_on_kafka()
        from_postgres = await audit(self.config.bootstrap, self.config.dsn, "postgres", reconcile_kafka=True)
        from_kafka = await audit(self.config.bootstrap, self.config.dsn, "kafka", reconcile_kafka=False)
        report.audit_clean = from_postgres.clean and from_kafka.clean and not report.audit_findings
        report.audit_findings += [str(f) for f in (from_postgres.findings + from_kafka.findings)[:10]]
        report.state_hash_postgres, report.state_hash_kafka = from_postgres.state_hash, from_kafka.state_hash

    async def _fill_copies_on_kafka(self) -> tuple[int, int]:
        """FillMade records on the fills topic as read_committed readers see them, and how many repeat an
        event already there (none, when the relay's transactions and checkpoints do their work)."""
        from contracts.topics import FILLS
        from farmlink.audit.log import read_kafka_copies

        copies = await read_kafka_copies(self.config.bootstrap, topics=(FILLS,))
        ids = [c.record.event_id for c in copies if c.record is not None]
        return len(ids), len(ids) - len(set(ids))


def _enospc_lines(log: Any, start: int) -> int:
    """Lines of the server's log, from byte `start` on, that say a write found no space left."""
    try:
        with open(log, "rb") as text:
            text.seek(start)
            return sum(1 for line in text if b"No space left on device" in line)
    except OSError:
        return 0


async def run_chaos(events: int, seed: int = 2020, kills_per_service: int = 3, window: int = 2000, say: Say = print,
                    progress: Callable[[int, int], None] | None = None,
                    services: tuple[str, ...] = processes.SERVICES,
                    beyond: FaultOptions = NO_FAULTS_BEYOND_KILL) -> ChaosReport:
    """The whole run on the running local infrastructure, with the services started by it."""
    return await ChaosRun(events, seed, kills_per_service, window, say, progress, services, beyond).run()
