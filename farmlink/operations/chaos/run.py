"""The chaos run's driver: `ChaosRun` starts and supervises the services, sends the workload through every input
topic as its producer principal (resending what Kafka did not acknowledge, holding inputs back so each fault strikes
mid-stream, trickling while a fault is handled), pays the fills, then waits until every service has caught up and
runs the proofs; `run_chaos` is the whole run. The faults are `InflictMixin`'s, the proofs `ProofMixin`'s.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import asyncpg
from aiokafka.errors import KafkaError

from contracts.inputs import INPUT_OWNER
from events.access import INPUT_PRODUCER
from events.relay import idempotent_producer
from events.settings import kafka_options, settings
from farmlink.operations import processes
from farmlink.operations.caughtup import wait_until_caught_up
from farmlink.operations.chaos.inflict import HOLD, RECOVER, InflictMixin
from farmlink.operations.chaos.plan import NO_FAULTS_BEYOND_KILL, Fault, FaultOptions, plan_faults
from farmlink.operations.chaos.report import ChaosReport, ProofMixin
from farmlink.operations.chaos.wire import INPUT_SERVICES, encode
from farmlink.operations.workload import Workload, payment
from farmlink.operations.chaos.faults import FaultyLink
from farmlink.producers.keyring import local_keyring


Say = Callable[[str], None]

SEND_RECORD_TIMEOUT_MS = 120_000
"""How long the sender's producers keep a record while its partition has no leader (a broker restart takes 10-60 s
on this machine, longer under load): a record is resent only after a longer outage."""
SEND_TIMEOUT_S = (
    SEND_RECORD_TIMEOUT_MS / 1000 + 30
)  # a batch Kafka has not acknowledged by then is sent again through new producers

PAYMENT_SHARE = 4
"""At least 1/PAYMENT_SHARE of a run's inputs are payments: the rest of the run waits for fills to pay."""
PAYMENT_WAIT_S = 180.0
"""How long the payment reserve waits without a new fill reaching settlement before other inputs fill it."""

PROBE_IN_FLIGHT = 100
"""Inputs kept in flight while a fault heals, so its first new outcome can be seen."""


class ChaosRun(InflictMixin, ProofMixin):
    """One chaos run: the services, the sender, the payments and the supervision; the faults and the proofs come
    from the mixins."""

    def __init__(
        self,
        events: int,
        seed: int,
        kills_per_service: int,
        window: int,
        say: Say,
        progress: Callable[[int, int], None] | None = None,
        services: tuple[str, ...] = processes.SERVICES,
        beyond: FaultOptions = NO_FAULTS_BEYOND_KILL,
    ):
        self.config = settings()
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
                                service,
                                low,
                                high,
                            )
                    return total
                finally:
                    await conn.close()
            except (OSError, asyncpg.PostgresError, asyncio.TimeoutError):
                await asyncio.sleep(0.5)

    async def _producer(self, topic: str):
        principal = INPUT_PRODUCER[topic]
        if principal not in self.producers:
            producer = idempotent_producer(
                self.config.bootstrap,
                linger_ms=5,
                request_timeout_ms=SEND_RECORD_TIMEOUT_MS,
                **kafka_options(self.config, principal),
            )
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

    # -- supervision (the faults: InflictMixin, farmlink/operations/chaos/inflict.py)

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
        env = {
            **os.environ,
            "PYTHONUNBUFFERED": "1",
            "FARMLINK_KAFKA_PORT": str(self.kafka_link.port),
            "FARMLINK_POSTGRES_PORT": str(self.postgres_link.port),
        }
        with processes.log_file(name).open("ab") as log:
            process = subprocess.Popen(
                [sys.executable, "-m", "farmlink.cli", "serve", name],
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                env=env,
            )
        processes.pid_file(name).write_text(str(process.pid))

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
            rows = await conn.fetch(
                "SELECT lot_id, outlet_id, revenue_fen FROM settlement.fills WHERE lot_id LIKE $1 ORDER BY fill_id",
                f"{self.run_id}-%",
            )
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
            await self._stream(faults)
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

    async def _stream(self, faults: asyncio.Task) -> None:
        """Send the workload and the payments until every input has its outcome and every fault was inflicted."""
        payments = _Payments()
        while True:
            self.outcomes = await self._count_outcomes()
            self.progress(self.outcomes, self.events)
            if faults.done():
                faults.result()  # a fault that could not be inflicted ends the run here
            if self.sent >= self.events:
                if self.outcomes >= self.events and faults.done():
                    return
                await asyncio.sleep(0.2)
                continue
            await self._collect_payments(payments)
            room = self._room(faults.done())
            if room <= 0:
                await asyncio.sleep(0.05)
                continue
            batch = self._next_batch(room, payments)
            if not batch:
                await asyncio.sleep(0.1)
                continue
            await self._send(batch)

    async def _collect_payments(self, payments: _Payments) -> None:
        """The payments for fills that reached settlement since the last look (often once the reserve is reached)."""
        reserved = self.sent - payments.sent >= self.events - self.events // PAYMENT_SHARE
        if time.monotonic() - payments.last_check > (0.5 if reserved else 2.0):
            new_payments = await self._new_payments()
            if new_payments:
                payments.wait_until = None  # fills still reach settlement: the reserve keeps waiting for more
            payments.pending += new_payments
            payments.last_check = time.monotonic()

    def _room(self, faults_done: bool) -> int:
        """How many inputs may be sent now."""
        room = min(self.window - (self.sent - self.outcomes), self.events - self.sent, 500)
        cap = self.events if self._next_fault is None else int(self._next_fault.at * self.events) + self.window
        if not faults_done:  # the last inputs wait for the last fault, so even it has new outcomes to show
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
        return room

    def _next_batch(self, room: int, payments: _Payments) -> list[tuple[str, bytes, bytes]]:
        """Up to `room` encoded inputs: payments first, then the workload's, keeping the run's reserve for payments."""
        batch = []
        for _ in range(room):
            if payments.pending:
                kind, payload = payments.pending.pop(0)
                payments.sent += 1
            elif self.sent + len(batch) - payments.sent >= self.events - self.events // PAYMENT_SHARE:
                # The rest of the run is kept for payments, which follow the fills (a fast pipeline
                # would otherwise send every other input before the first fill reached settlement);
                # if no new fill reaches settlement for PAYMENT_WAIT_S (a broker bounce under
                # load takes minutes), other inputs fill it.
                payments.wait_until = payments.wait_until or time.monotonic() + PAYMENT_WAIT_S
                if time.monotonic() < payments.wait_until:
                    break
                kind, payload = self.workload.next_input()
            else:
                kind, payload = self.workload.next_input()
            batch.append(self._encode(kind, payload))
        return batch


@dataclass
class _Payments:
    """The payments of a run on their way: waiting to be sent, how many were sent, since when the reserve waits."""

    pending: list[tuple[str, dict]] = field(default_factory=list)
    sent: int = 0
    wait_until: float | None = None
    last_check: float = 0.0


async def run_chaos(
    events: int,
    seed: int = 2020,
    kills_per_service: int = 3,
    window: int = 2000,
    say: Say = print,
    progress: Callable[[int, int], None] | None = None,
    services: tuple[str, ...] = processes.SERVICES,
    beyond: FaultOptions = NO_FAULTS_BEYOND_KILL,
) -> ChaosReport:
    """The whole run on the running local infrastructure, with the services started by it."""
    return await ChaosRun(events, seed, kills_per_service, window, say, progress, services, beyond).run()
