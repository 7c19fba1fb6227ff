"""Reading the whole log for the audit: from PostgreSQL (every service schema) or from the
Kafka topics (offset 0 of every partition). Both give the same AuditLog; Kafka copies keep
where each message was, so reconciliation can name it."""

import asyncio
import json
import sys
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg
import orjson
from aiokafka import AIOKafkaConsumer, TopicPartition

from contracts.registry import EVENT_TOPIC
from contracts.topics import TOPICS
from events.access import AUDITOR
from events.settings import kafka_options, settings
from farmlink.audit.model import AuditLog, Record

SCHEMAS = ("cooperative", "buyer", "market", "matching", "settlement", "pairing")
EVENT_TOPICS = tuple(sorted(set(EVENT_TOPIC.values())))
BATCH = 20_000
STREAMED_BATCH = 2_000
"""Rows per round trip when nothing is kept (stream_rows): a few MB of payloads in hand at a time."""

Progress = Callable[[int], None]


def _no_progress(_: int) -> None:
    pass


def _share_texts(value: Any, texts: dict[str, str]) -> Any:
    """`value` (a parsed payload, changed in place) with each text equal to one seen before replaced by
    that one: a lot, household, village or date named by many events is then held once (about a third
    of the payloads' memory). orjson already holds each object key once."""
    kind = type(value)
    if kind is str:
        return texts.setdefault(value, value)
    if kind is dict:
        for name, item in value.items():
            value[name] = _share_texts(item, texts)
    elif kind is list:
        for index, item in enumerate(value):
            value[index] = _share_texts(item, texts)
    return value


COLUMNS = """global_position, event_id::text, event_type, schema_version, stream_id, stream_version,
               occurred_at, producer, correlation_id, causation_id, payload::text, prev_hash, hash"""


def record_reader(schema: str, texts: dict[str, str] | None = None) -> Callable[[Any], Record]:
    """Makes a Record of a row of COLUMNS: each type, stream, producer or correlation held once, not per
    event, and (with `texts`, for a log that is kept) each payload text equal to one seen before held once."""
    one, loads = sys.intern, orjson.loads

    def of(r: Any) -> Record:
        payload = loads(r[10]) if texts is None else _share_texts(loads(r[10]), texts)
        return Record(
            schema, r[0], r[1], one(r[2]), r[3], one(r[4]), r[5], r[6], one(r[7]), one(r[8]), r[9], payload, r[11], r[12]
        )

    return of


async def stream_rows(
    conn: asyncpg.Connection,
    schema: str,
    prefix: str = "",
    where: str = "",
    args: tuple = (),
    order: str = "global_position",
    size: int = STREAMED_BATCH,
) -> AsyncIterator[list[Record]]:
    """One schema's events (those matching `where`, a SQL condition on $1...), in `order`, a batch of `size` records
    per round trip, inside the caller's transaction (a cursor needs one). Nothing is kept: each batch is the caller's."""
    of = record_reader(schema)
    condition = f"WHERE {where}" if where else ""
    cursor = await conn.cursor(f'SELECT {COLUMNS} FROM "{prefix}{schema}".events {condition} ORDER BY {order}', *args)
    while rows := await cursor.fetch(size):
        yield [of(r) for r in rows]


async def read_schema(
    dsn: str, schema: str, prefix: str = "", progress: Progress = _no_progress, texts: dict[str, str] | None = None
) -> list[Record] | None:
    """One schema's events in global order, on a connection of its own, in batches of BATCH rows per
    round trip (None when the schema has no events table). `texts`: the payloads' texts seen so far,
    shared between schemas read at once (each equal text is then held once)."""
    conn = await asyncpg.connect(dsn)
    try:
        if not await conn.fetchval("SELECT to_regclass($1) IS NOT NULL", f"{prefix}{schema}.events"):
            return None
        records: list[Record] = []
        async with conn.transaction(isolation="repeatable_read", readonly=True):
            cursor = await conn.cursor(f'SELECT {COLUMNS} FROM "{prefix}{schema}".events ORDER BY global_position')
            of = record_reader(schema, {} if texts is None else texts)
            while rows := await cursor.fetch(BATCH):  # a batch per round trip: no per-row await
                records += [of(r) for r in rows]
                progress(len(rows))
        return records
    finally:
        await conn.close()


def start_reading(
    dsn: str, progress: Progress = _no_progress, prefix: str = "", first: str = "matching"
) -> dict[str, asyncio.Future]:
    """Every schema read with one streaming query each, on its own connection: `first` alone (its
    checks can start as soon as it is in), then the others at once (while this process parses one
    schema's batch, the server prepares the others'). A future per schema, to await in any order."""
    texts: dict[str, str] = {}  # dropped with the futures once every schema is read
    head = asyncio.ensure_future(read_schema(dsn, first, prefix, progress, texts))

    async def after_first(schema: str) -> list[Record] | None:
        await asyncio.wait([head])
        return await read_schema(dsn, schema, prefix, progress, texts)

    return {schema: head if schema == first else asyncio.ensure_future(after_first(schema)) for schema in SCHEMAS}


async def load_from_postgres(dsn: str, progress: Progress = _no_progress, prefix: str = "") -> AuditLog:
    """Every service schema's events, in global order, read in batches (`prefix`: schemas named <prefix><service>)."""
    log = AuditLog(source="postgres")
    reading = start_reading(dsn, progress, prefix)
    try:
        for schema in SCHEMAS:
            records = await reading[schema]
            if records is not None:
                log.by_schema[schema] = records
    finally:
        for task in reading.values():
            task.cancel()
    return log


@dataclass(frozen=True, slots=True)
class KafkaCopy:
    """An event as found on a topic, and where."""

    topic: str
    partition: int
    offset: int
    record: Record | None  # None when the message is not a readable envelope
    problem: str | None = None

    @property
    def place(self) -> str:
        return f"{self.topic}[{self.partition}]@{self.offset}"


def _schema_of(producer: str) -> str:
    return producer.removeprefix("service:")


def record_from_envelope(data: dict) -> Record:
    """An envelope published by a relay, as an audit record."""
    return Record(
        schema=_schema_of(data["producer"]),
        global_position=int(data["global_position"]),
        event_id=data["event_id"],
        event_type=data["event_type"],
        schema_version=int(data["schema_version"]),
        stream_id=data["stream_id"],
        stream_version=int(data["stream_version"]),
        occurred_at=datetime.fromisoformat(data["occurred_at"].replace("Z", "+00:00")),
        producer=data["producer"],
        correlation_id=data["correlation_id"],
        causation_id=data.get("causation_id"),
        payload=data["payload"],
        prev_hash=data.get("prev_hash") or "",
        hash=data.get("hash") or "",
    )


async def count_on_kafka(bootstrap: str, topics: tuple[str, ...] = EVENT_TOPICS) -> int:
    """How many messages the event topics hold (for the progress bar)."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap,
        enable_auto_commit=False,
        isolation_level="read_committed",
        **kafka_options(settings(), AUDITOR),
    )
    await consumer.start()
    try:
        partitions = _partitions(topics)
        starts = await consumer.beginning_offsets(partitions)
        ends = await consumer.end_offsets(partitions)
        return sum(ends[tp] - starts[tp] for tp in partitions)
    finally:
        await consumer.stop()


def _partitions(topics: tuple[str, ...]) -> list[TopicPartition]:
    counts = {topic.name: topic.partitions for topic in TOPICS}
    return [TopicPartition(name, p) for name in topics for p in range(counts[name])]


async def read_kafka_copies(
    bootstrap: str, topics: tuple[str, ...] = EVENT_TOPICS, progress: Progress = _no_progress
) -> list[KafkaCopy]:
    """Every message on the event topics from offset 0 up to the end offsets seen at the start."""
    return [copy async for batch in kafka_copies(bootstrap, topics, progress) for copy in batch]


async def kafka_copies(
    bootstrap: str, topics: tuple[str, ...] = EVENT_TOPICS, progress: Progress = _no_progress
) -> AsyncIterator[list[KafkaCopy]]:
    """`read_kafka_copies` a batch at a time (each batch the caller's: nothing is kept)."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        max_partition_fetch_bytes=8 * 1024 * 1024,
        isolation_level="read_committed",  # aborted relay transactions are not the log
        **kafka_options(settings(), AUDITOR),
    )
    await consumer.start()
    try:
        partitions = _partitions(topics)
        consumer.assign(partitions)
        starts = await consumer.beginning_offsets(partitions)
        ends = await consumer.end_offsets(partitions)
        for tp in partitions:
            consumer.seek(tp, starts[tp])
        remaining = {tp for tp in partitions if ends[tp] > starts[tp]}
        while remaining:
            batch = await consumer.getmany(*remaining, timeout_ms=500, max_records=STREAMED_BATCH)
            for tp, messages in batch.items():
                yield [_copy(message) for message in messages if message.offset < ends[tp]]
                progress(len(messages))
            for tp in list(remaining):  # transaction markers take offsets too: compare positions, not records
                if await consumer.position(tp) >= ends[tp]:
                    remaining.discard(tp)
    finally:
        await consumer.stop()


def _copy(message) -> KafkaCopy:
    try:
        record = record_from_envelope(json.loads(message.value))
    except Exception as error:  # not an envelope: a finding, not a crash
        return KafkaCopy(
            message.topic, message.partition, message.offset, None, f"unreadable message: {type(error).__name__}: {error}"
        )
    return KafkaCopy(message.topic, message.partition, message.offset, record)


def log_from_copies(copies: list[KafkaCopy]) -> AuditLog:
    """The log as Kafka holds it: the first copy of each event, per schema in global order."""
    log = AuditLog(source="kafka")
    seen: set[str] = set()
    for copy in copies:
        if copy.record is None or copy.record.event_id in seen:
            continue
        seen.add(copy.record.event_id)
        log.by_schema.setdefault(copy.record.schema, []).append(copy.record)
    for records in log.by_schema.values():
        records.sort(key=lambda r: r.global_position)
    return log
