"""How the chaos run inflicts each planned fault and measures its recovery: the service kills, the broker's
SIGTERM and SIGKILL, the PostgreSQL restart, the network faults on the run's own TCP links (farmlink/operations/chaos/faults.py,
the broker's fault listener) and the full WAL volume (farmlink.operations.infra's WAL volume); then the time until the
component is back and until the first new input outcome.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import time
from typing import Any

import asyncpg
from aiokafka import AIOKafkaConsumer
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaError

from events.access import AUDITOR, BY_NAME, service_principal
from events.settings import kafka_options
from farmlink.operations import infra, processes
from farmlink.operations.caughtup import _records_between as records_between
from farmlink.operations.chaos.plan import NETWORK_FAULTS, Fault
from farmlink.operations.chaos.report import Recovery
from farmlink.operations.chaos.faults import FaultyLink, VolumeFiller


KAFKA_FAULT_LISTENER_OFFSET = 4  # the broker's extra listener: FARMLINK_KAFKA_PORT + 4
KAFKA_LINK_OFFSET = 5  # the run's link to it, which the listener advertises: FARMLINK_KAFKA_PORT + 5
POSTGRES_LINK_OFFSET = 5  # the run's link to PostgreSQL: FARMLINK_POSTGRES_PORT + 5
WAL_VOLUME_MB = 256
RECOVERY_WINDOW_S = 180.0

HOLD, RECOVER = "hold", "recover"
"""What the sender's trickle is for while a fault is handled: a held fault (network, full WAL), or a recovery being measured."""


def ask_for_fault_listener(config: Any) -> tuple[int, int]:
    """Set the environment so that every start of the local broker from this process has the fault listener
    (farmlink.operations.infra.kafka_fault_listener) the run's Kafka link needs; (listener port, link port). Called before the
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


class InflictMixin:
    """The faults of `ChaosRun` (farmlink/operations/chaos/run.py): the links and the WAL volume set up before the services
    start and undone after the proofs, each fault at its point of the run, and its recovery measured. They use the
    run's state (`config`, `beyond`, `faults`, `report`, `say`, `probing`, ...) and its `_start_services`, `_db` and
    `_count_outcomes`."""

    # -- the links and the WAL volume, set up before the services start and undone after the proofs

    async def _prepare_beyond_kill(self) -> None:
        beyond, config = self.beyond, self.config
        if beyond.network:
            postgres_link_port = config.farmlink_postgres_port + POSTGRES_LINK_OFFSET
            self._environ_before = {
                name: os.environ.get(name) for name in (infra.KAFKA_FAULT_PORT_ENV, infra.KAFKA_FAULT_ADVERTISED_PORT_ENV)
            }
            # every start of the broker in this run (the bounces too) has the listener
            listener, kafka_link_port = ask_for_fault_listener(config)
            if not infra.kafka_fault_listener_running():
                taken = [port for port in (listener,) if not _port_free(port)]
                if taken:
                    raise infra.InfraError(
                        f"port 127.0.0.1:{taken[0]} (the broker's fault listener, FARMLINK_KAFKA_PORT + "
                        f"{KAFKA_FAULT_LISTENER_OFFSET}) is taken"
                    )
                self.say(
                    f"restarting Kafka with a fault listener on 127.0.0.1:{listener} (advertised as the run's link "
                    f"on {kafka_link_port})"
                )
                await asyncio.to_thread(infra.kill_kafka, signal.SIGTERM, lambda message: None)
                await self._bring_up("the fault listener")
            try:
                self.kafka_link = await FaultyLink("kafka", listener, kafka_link_port).start()
                self.postgres_link = await FaultyLink("postgres", config.farmlink_postgres_port, postgres_link_port).start()
            except OSError as error:
                raise infra.InfraError(
                    f"the run's fault links need 127.0.0.1:{kafka_link_port} and :{postgres_link_port} "
                    f"(FARMLINK_KAFKA_PORT + {KAFKA_LINK_OFFSET}, FARMLINK_POSTGRES_PORT + "
                    f"{POSTGRES_LINK_OFFSET}): {error}"
                ) from error
            self.say(
                f"{beyond.network_service} talks to Kafka through 127.0.0.1:{kafka_link_port} and to PostgreSQL "
                f"through 127.0.0.1:{postgres_link_port}"
            )
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
            if await conn.fetchval("SELECT to_regclass($1) IS NOT NULL", f"{service}.outbox") and await conn.fetchval(
                f'SELECT count(*) FROM "{service}".outbox'
            ):
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
        consumer = AIOKafkaConsumer(
            bootstrap_servers=self.config.bootstrap, enable_auto_commit=False, isolation_level="read_committed", **security
        )
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
        recovery = Recovery(
            fault.label,
            None,
            held_s=round(healed - started, 2),
            notes={
                "recorded_while_held": recorded_while_held,
                "link_connections": link.stats.connections,
                "link_cuts": link.stats.cut - cut_before,
            },
        )
        if fault.kind.endswith("latency"):
            recovery.notes["latency_ms_each_way"] = round(self.beyond.latency_s * 1000)
        recovery.back_s = await self._own_work_after(service, healed)
        recovery.first_outcome_s = await self._first_new_outcome(healed)
        self.say(
            f"  {fault.label}: held {recovery.held_s} s ({recorded_while_held} events recorded by {service} "
            f"meanwhile); after the heal {service} worked again in {recovery.back_s} s, first new outcome after "
            f"{recovery.first_outcome_s} s"
        )
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
        recovery.notes = {
            "filled_mb": round(filled / 2**20, 1),
            "server_stopped_after_s": stopped_after,
            "started_again": restarted,
            "enospc_log_lines": _enospc_lines(layout.postgres_log, log_start),
        }
        recovery.first_outcome_s = await self._first_new_outcome(healed)
        self.say(
            f"  {fault.label}: held {recovery.held_s} s (server stopped after {stopped_after} s, "
            f"{recovery.notes['enospc_log_lines']} ENOSPC lines in its log); after freeing, PostgreSQL back in "
            f"{recovery.back_s} s, first new outcome after {recovery.first_outcome_s} s"
        )
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


def _enospc_lines(log: Any, start: int) -> int:
    """Lines of the server's log, from byte `start` on, that say a write found no space left."""
    try:
        with open(log, "rb") as text:
            text.seek(start)
            return sum(1 for line in text if b"No space left on device" in line)
    except OSError:
        return 0
