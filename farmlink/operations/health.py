"""Is each running service working, not only running? (`farmlink status`, `farmlink up`)

A process can be alive and still do nothing: its relay failing on every try (its schema wiped
under it), its consumer out of its group, its lag standing still. Each check looks from the
outside, as an operator would, and names what it saw:

- heartbeat: every running instance rewrites `run/<instance>.health` every 2 s with its relay's
  last failure (farmlink/operations/processes.py `serve`); a stale file means the process hangs;
- relay: a failure within the last RELAY_FAILING_S s (the relay retries every second, so a
  failing relay keeps it fresh);
- schema: the service's outbox table exists;
- consumer: each of the service's consumer groups has members;
- progress: over SAMPLE_S seconds, a group with records to read commits nothing new, or the
  outbox keeps rows and drains none.
"""

import asyncio
import json
import time
from dataclasses import dataclass, field

import asyncpg
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from events.access import AUDITOR, BY_NAME, service_principal
from events.settings import kafka_options, settings
from farmlink.operations import processes
from farmlink.operations.caughtup import _records_between
from farmlink.operations.infra import _confluent_config

SAMPLE_S = 1.5
RELAY_FAILING_S = 5.0
STALE_HEARTBEAT_S = 3 * processes.HEARTBEAT_S + 2.0


@dataclass
class ServiceHealth:
    """One service's verdict: healthy, or the reasons it is not."""

    service: str
    running: int
    problems: list[str] = field(default_factory=list)

    @property
    def healthy(self) -> bool:
        return not self.problems

    @property
    def summary(self) -> str:
        if not self.running:
            return "-"
        return "ok" if self.healthy else "; ".join(self.problems)


def groups_of(service: str) -> tuple[str, ...]:
    """The consumer groups a service consumes in (events/access.py)."""
    principal = BY_NAME[service_principal(service)]
    return principal.groups


def heartbeat_problems(service: str, now: float | None = None) -> list[str]:
    """What the running instances' health files say."""
    now = time.time() if now is None else now
    problems = []
    for instance in processes.instances(service):
        if instance.pid is None or not instance.ready:
            continue
        path = processes.health_file(instance.name)
        try:
            state = json.loads(path.read_text())
        except (OSError, ValueError):
            problems.append(f"{instance.name}: no heartbeat yet")
            continue
        age = now - float(state.get("at", 0))
        if age > STALE_HEARTBEAT_S:
            problems.append(f"{instance.name}: no heartbeat for {age:.0f} s (hung?)")
        failed_at = state.get("relay_failure_at")
        if state.get("relay_failure") and failed_at is not None and now - float(failed_at) < RELAY_FAILING_S:
            problems.append(f"{instance.name}: relay failing: {state['relay_failure']}")
    return problems


async def _outbox(conn: asyncpg.Connection, schema: str) -> tuple[int, int | None] | None:
    """(rows, lowest id) of a schema's outbox; None when the table is gone."""
    if not await conn.fetchval("SELECT to_regclass($1) IS NOT NULL", f'"{schema}".outbox'):
        return None
    row = await conn.fetchrow(f'SELECT count(*) AS n, min(outbox_id) AS low FROM "{schema}".outbox')
    return row["n"], row["low"]


async def _committed(admin: AIOKafkaAdminClient, groups: tuple[str, ...]) -> dict[tuple[str, TopicPartition], int]:
    offsets = {}
    for group in groups:
        for tp, meta in (await admin.list_consumer_group_offsets(group)).items():
            offsets[(group, tp)] = meta.offset
    return offsets


async def members_of(config, groups: tuple[str, ...]) -> dict[str, int]:
    """Members of each group (confluent-kafka's admin: aiokafka 0.14 cannot read Kafka 4's DescribeGroups answer)."""
    from confluent_kafka.admin import AdminClient

    def describe() -> dict[str, int]:
        admin = AdminClient(_confluent_config(config.bootstrap, kafka_options(config, AUDITOR)) | {"log_level": 3})
        futures = admin.describe_consumer_groups(list(groups), request_timeout=10)
        return {group: len(future.result(timeout=15).members) for group, future in futures.items()}

    return await asyncio.to_thread(describe)


async def check(services: tuple[str, ...] | None = None, sample_s: float = SAMPLE_S) -> list[ServiceHealth]:
    """The health of every service (or of `services`); stopped services have no problems, only `running == 0`."""
    config = settings()
    verdicts = [ServiceHealth(s, processes.running_count(s)) for s in (services or processes.SERVICES)]
    running = [v for v in verdicts if v.running]
    if not running:
        return verdicts
    for verdict in running:
        verdict.problems += heartbeat_problems(verdict.service)
    security = kafka_options(config, AUDITOR)
    admin = AIOKafkaAdminClient(bootstrap_servers=config.bootstrap, request_timeout_ms=10_000, **security)
    reader = AIOKafkaConsumer(
        bootstrap_servers=config.bootstrap, enable_auto_commit=False, isolation_level="read_committed", **security
    )
    conn = await asyncpg.connect(config.dsn, timeout=10)
    await admin.start()
    await reader.start()
    try:
        groups = tuple(g for v in running for g in groups_of(v.service))
        members = await members_of(config, groups)
        before = await _committed(admin, groups)
        outboxes = {v.service: await _outbox(conn, v.service) for v in running}
        await asyncio.sleep(sample_s)
        after = await _committed(admin, groups)
        ends = await reader.end_offsets(sorted({tp for _, tp in after}, key=lambda tp: (tp.topic, tp.partition))) if after else {}
        for verdict in running:
            await _judge(
                verdict, members, before, after, ends, outboxes[verdict.service], await _outbox(conn, verdict.service), reader
            )
    finally:
        await conn.close()
        await reader.stop()
        await admin.close()
    return verdicts


async def _judge(
    verdict: ServiceHealth,
    members: dict[str, int],
    before: dict,
    after: dict,
    ends: dict,
    outbox_before: tuple[int, int | None] | None,
    outbox_after: tuple[int, int | None] | None,
    reader: AIOKafkaConsumer,
) -> None:
    service = verdict.service
    if outbox_after is None:
        verdict.problems.append(
            f"its schema {service!r} is missing (wiped under the running service? `farmlink down`, then `farmlink up`)"
        )
    elif outbox_before is not None and outbox_after[0] > 0 and outbox_after[1] == outbox_before[1]:
        verdict.problems.append(f"outbox not draining: {outbox_after[0]} rows waiting")
    for group in groups_of(service):
        if not members.get(group):
            verdict.problems.append(f"consumer not assigned: group {group} has no members")
            continue
        stuck = 0
        for (name, tp), offset in after.items():
            if name != group or offset < 0 or ends.get(tp, 0) <= offset or before.get((name, tp)) != offset:
                continue
            stuck += await _records_between(reader, tp, offset, ends[tp])
        if stuck:
            verdict.problems.append(
                f"consumer lag not moving: {stuck} records in group {group} and nothing committed for {SAMPLE_S:.1f} s"
            )


async def settled(services: tuple[str, ...] | None = None, within_s: float = 15.0) -> list[ServiceHealth]:
    """`check` until every running service is healthy or `within_s` passes (a service that just started may
    still be joining its group): the last verdicts."""
    deadline = time.monotonic() + within_s
    while True:
        verdicts = await check(services)
        if all(v.healthy for v in verdicts) or time.monotonic() >= deadline:
            return verdicts
        await asyncio.sleep(1.0)
