"""A supervision round's cut-off (`farmlink publish`): once every line before the round has its outcome, what the
round must have seen, per partition of the event topics that carry the ledger's facts: the offset after the last
record then committed there. The pairing service waits until it has kept the facts up to every one of these
offsets, and sees none after them (services/pairing/rounds.py).

Transaction markers take offsets too, so the end offset of a partition is not the offset after its last record:
the cut-off reads each partition's last committed records to find it."""

import asyncio
import dataclasses

from aiokafka import AIOKafkaConsumer, TopicPartition

from contracts.topics import TOPICS
from events.access import PAIRING_OFFICE
from events.settings import kafka_options, settings
from farmlink.producers.scenario import ScenarioLine
from services.pairing.rounds import FACT_TOPICS

TAIL = 50
"""How many offsets before a partition's end the cut-off reads first (more when no record is there)."""

CUTOFF_TIMEOUT_S = 30.0


async def round_cutoff(bootstrap: str, topics: tuple[str, ...] = FACT_TOPICS) -> dict[str, int]:
    """Per `<topic>/<partition>` that holds any committed record, the offset after its last committed record."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap,
        enable_auto_commit=False,
        isolation_level="read_committed",
        **kafka_options(settings(), PAIRING_OFFICE),
    )
    await consumer.start()
    try:
        partitions = [TopicPartition(t.name, p) for t in TOPICS if t.name in topics for p in range(t.partitions)]
        consumer.assign(partitions)
        begins = await consumer.beginning_offsets(partitions)
        ends = await consumer.end_offsets(partitions)
        last = await asyncio.wait_for(_last_records(consumer, partitions, begins, ends), CUTOFF_TIMEOUT_S)
    finally:
        await consumer.stop()
    return {f"{tp.topic}/{tp.partition}": offset + 1 for tp, offset in sorted(last.items()) if offset is not None}


async def _last_records(
    consumer: AIOKafkaConsumer, partitions: list[TopicPartition], begins: dict, ends: dict
) -> dict[TopicPartition, int | None]:
    """The offset of each partition's last committed record (None: it has none), reading back from its end."""
    last: dict[TopicPartition, int | None] = {}
    tail = TAIL
    todo = [tp for tp in partitions if ends[tp] > begins[tp]]
    while todo:
        for tp in todo:
            consumer.seek(tp, max(begins[tp], ends[tp] - tail))
        pending = set(todo)
        while pending:
            batch = await consumer.getmany(*pending, timeout_ms=200)
            for tp, records in batch.items():
                for record in records:
                    if record.offset < ends[tp]:
                        last[tp] = max(last.get(tp) or -1, record.offset)
            for tp in list(pending):
                if await consumer.position(tp) >= ends[tp]:
                    pending.discard(tp)
        done = [tp for tp in todo if tp in last or ends[tp] - tail <= begins[tp]]
        todo = [tp for tp in todo if tp not in done]
        tail *= 4
    return {tp: last.get(tp) for tp in partitions}


async def with_cutoff(bootstrap: str, line: ScenarioLine) -> ScenarioLine:
    """A supervision round's line stamped with its cut-off, as of now (to be signed again)."""
    return dataclasses.replace(line, payload={**line.payload, "cutoff": await round_cutoff(bootstrap)})
