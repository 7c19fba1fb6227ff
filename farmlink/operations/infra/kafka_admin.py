"""Kafka admin operations on any broker, local or external: the admin client, readiness (`describe_cluster`,
waiting for the broker to answer), and the topics of contracts/topics.py (create, wait for, reset, check).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Iterable
from typing import Any

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaError, TopicAlreadyExistsError, UnknownTopicOrPartitionError, for_code
from tenacity import AsyncRetrying, retry_if_exception_type, stop_after_delay, wait_fixed

from contracts.topics import TOPICS, Topic, is_party_topic
from events import access
from events.settings import kafka_options, settings
from farmlink.operations.infra.commands import _tail
from farmlink.operations.infra.kafka import _kafka_alive
from farmlink.operations.infra.layout import InfraError, Layout


KAFKA_READY_TIMEOUT_S = 90.0
TOPICS_TIMEOUT_S = 60.0
SHORT_RETENTION_MS = 7 * 24 * 60 * 60 * 1000  # topics that do not keep forever (receipts): 7 days


class _NotYet(InfraError):
    """A wait condition is not met yet (retried until its deadline)."""


class _KafkaDied(Exception):
    """The local broker exited while we waited for it (not retried)."""


# ---------------------------------------------------------------------------------------------
# Kafka: admin operations (work on any broker, local or external)


@contextlib.asynccontextmanager
async def _admin(bootstrap: str, request_timeout_ms: int = 15000) -> AsyncIterator[AIOKafkaAdminClient]:
    admin = AIOKafkaAdminClient(
        bootstrap_servers=bootstrap,
        client_id="farmlink-infra",
        request_timeout_ms=request_timeout_ms,
        **kafka_options(settings(), access.ADMIN),
    )
    try:
        await admin.start()
        yield admin
    finally:
        await admin.close()


async def describe_cluster(bootstrap: str, timeout: float = 5.0) -> dict[str, Any]:
    """The cluster's metadata (cluster_id, brokers, ...); raises when no broker answers."""

    async def probe() -> dict[str, Any]:
        async with _admin(bootstrap, request_timeout_ms=int(timeout * 1000)) as admin:
            cluster = await admin.describe_cluster()
        if not cluster.get("brokers"):
            raise InfraError(f"Kafka at {bootstrap} answered without any broker")
        return cluster

    return await asyncio.wait_for(probe(), timeout)


async def _wait_for_kafka(bootstrap: str, layout: Layout | None, pid: int | None) -> dict[str, Any]:
    """Wait until the broker answers; fail fast when the local process dies."""
    where = (
        f" See {layout.kafka_log} and {layout.kafka_console_log}. A 'SaslAuthenticationFailed' there means "
        f"{layout.home}/secrets/kafka-admin no longer matches the credential storage was formatted with "
        f"(format again: farmlink/operations/infra/README.md)."
        if layout
        else ""
    )
    try:
        async for attempt in AsyncRetrying(
            stop=stop_after_delay(KAFKA_READY_TIMEOUT_S),
            wait=wait_fixed(0.5),
            reraise=True,
            retry=retry_if_exception_type((KafkaError, OSError, asyncio.TimeoutError, InfraError)),
        ):
            with attempt:
                if layout is not None and pid is not None and not _kafka_alive(layout, pid):
                    raise _KafkaDied(
                        f"Kafka (pid {pid}) exited during startup.{where}\n"
                        f"{_tail(layout.kafka_console_log) or _tail(layout.kafka_log)}"
                    )
                return await describe_cluster(bootstrap)
    except _KafkaDied as exc:
        raise InfraError(str(exc)) from None
    except (KafkaError, OSError, asyncio.TimeoutError, InfraError) as exc:
        raise InfraError(
            f"Kafka at {bootstrap} did not answer within {KAFKA_READY_TIMEOUT_S:.0f} s ({type(exc).__name__}: {exc}).{where}"
        ) from exc
    raise AssertionError("unreachable")


# ---------------------------------------------------------------------------------------------
# Topics


def topic_configs(topic: Topic) -> dict[str, str]:
    """Per-topic configuration: event and input topics keep everything; receipts keep 7 days;
    the relay's checkpoints keep the last one per key (compacted)."""
    configs = {"min.insync.replicas": "1"}
    if topic.compacted:  # the last record of each key stays; nothing expires by age or size
        configs |= {
            "cleanup.policy": "compact",
            "segment.ms": str(10 * 60 * 1000),
            "min.cleanable.dirty.ratio": "0.1",
            "retention.ms": "-1",
            "retention.bytes": "-1",
        }
    elif topic.keep_forever:
        configs |= {"retention.ms": "-1", "retention.bytes": "-1"}
    else:
        configs["retention.ms"] = str(SHORT_RETENTION_MS)
    return configs


def _check_topic_errors(errors: Iterable[tuple[Any, ...]], what: str, ignore: tuple[type, ...]) -> None:
    failures = []
    for topic, code, *message in errors:
        error = for_code(code)
        if code != 0 and not issubclass(error, ignore):
            failures.append(f"{topic}: {error.__name__} {message[0] if message and message[0] else ''}".rstrip())
    if failures:
        raise InfraError(f"{what} failed: " + "; ".join(failures))


async def create_topics(bootstrap: str, topics: Iterable[Topic] = TOPICS, *, replication_factor: int = 1) -> list[str]:
    """Create the topics that do not exist yet (existing ones are left alone); return the names created."""
    topics = list(topics)
    async with _admin(bootstrap) as admin:
        existing = set(await admin.list_topics())
        missing = [t for t in topics if t.name not in existing]
        if missing:
            response = await admin.create_topics(
                [NewTopic(t.name, t.partitions, replication_factor, topic_configs=topic_configs(t)) for t in missing]
            )
            _check_topic_errors(response.topic_errors, "Creating topics", ignore=(TopicAlreadyExistsError,))
    await wait_for_topics(bootstrap, topics)
    return [t.name for t in missing]


async def _topic_partitions(admin: AIOKafkaAdminClient, names: list[str]) -> dict[str, int]:
    """Partition counts of the named topics that exist with a leader on every partition."""
    described = await admin.describe_topics(names)
    return {
        t["topic"]: len(t["partitions"])
        for t in described
        if t["error_code"] == 0 and t["partitions"] and all(p["leader"] >= 0 for p in t["partitions"])
    }


async def wait_for_topics(bootstrap: str, topics: Iterable[Topic] = TOPICS, timeout: float = TOPICS_TIMEOUT_S) -> dict[str, int]:
    """Wait until every topic exists with leaders; return their partition counts."""
    names = [t.name for t in topics]
    async with _admin(bootstrap) as admin:
        async for attempt in AsyncRetrying(
            stop=stop_after_delay(timeout),
            wait=wait_fixed(0.25),
            reraise=True,
            retry=retry_if_exception_type((_NotYet, KafkaError)),
        ):
            with attempt:
                ready = await _topic_partitions(admin, names)
                if missing := [n for n in names if n not in ready]:
                    raise _NotYet(f"topics not ready after {timeout:.0f} s: {', '.join(missing)}")
                return ready
    raise AssertionError("unreachable")


async def _wait_until_deleted(admin: AIOKafkaAdminClient, names: set[str], timeout: float) -> None:
    async for attempt in AsyncRetrying(
        stop=stop_after_delay(timeout), wait=wait_fixed(0.25), reraise=True, retry=retry_if_exception_type(_NotYet)
    ):
        with attempt:
            if left := names & set(await admin.list_topics()):
                raise _NotYet(f"topics still present after deletion: {', '.join(sorted(left))}")


async def reset_topics(bootstrap: str, topics: Iterable[Topic] = TOPICS, *, timeout: float = TOPICS_TIMEOUT_S) -> None:
    """Delete the topics (all their messages), wait until they are gone, create them again."""
    topics = list(topics)
    names = {t.name for t in topics}
    async with _admin(bootstrap) as admin:
        existing = set(await admin.list_topics())
        if names >= {t.name for t in TOPICS}:  # a reset of everything takes the party topics (copies) along
            names |= {name for name in existing if is_party_topic(name)}
        present = sorted(names & existing)
        if present:
            response = await admin.delete_topics(present)
            _check_topic_errors(response.topic_error_codes, "Deleting topics", ignore=(UnknownTopicOrPartitionError,))
        await _wait_until_deleted(admin, names, timeout)
    await create_topics(bootstrap, topics)


async def _topic_problems(bootstrap: str) -> list[str]:
    """Existing topics whose partition count differs from contracts.topics (never changed automatically)."""
    actual = await wait_for_topics(bootstrap)
    return [
        f"{t.name} has {actual[t.name]} partitions, contracts/topics.py says {t.partitions}"
        for t in TOPICS
        if actual.get(t.name) != t.partitions
    ]
