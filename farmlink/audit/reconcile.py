"""Reconciling the store with Kafka: every stored event reached its topic exactly once, and
nothing on a topic is missing from the store or differs from it."""

from collections import defaultdict

from contracts.registry import EVENT_TOPIC
from events.hashchain import hashed_content, link_hash
from farmlink.audit.log import KafkaCopy
from farmlink.audit.model import AuditLog, Finding, Record, finding_at

CHECK = "reconciliation"


def _content(record: Record) -> dict:
    return hashed_content(
        event_id=record.event_id,
        event_type=record.event_type,
        schema_version=record.schema_version,
        stream_id=record.stream_id,
        stream_version=record.stream_version,
        occurred_at=record.occurred_at,
        producer=record.producer,
        correlation_id=record.correlation_id,
        causation_id=record.causation_id,
        payload=record.payload,
    )


def _at_copy(copy: KafkaCopy, message: str) -> Finding:
    record = copy.record
    return Finding(
        check=CHECK,
        where=copy.place + (f" ({record.place})" if record else ""),
        message=message,
        schema=record.schema if record else None,
        stream_id=record.stream_id if record else None,
        stream_version=record.stream_version if record else None,
        global_position=record.global_position if record else None,
        event_id=record.event_id if record else None,
    )


def place_order(copy: KafkaCopy) -> tuple[str, int, int]:
    """Copies are walked by topic, partition and offset: the same order however a read interleaved the partitions."""
    return copy.topic, copy.partition, copy.offset


def copy_findings(copy: KafkaCopy, original: Record, theirs: dict, hash_: str, self_ok: bool) -> list[Finding]:
    """What is wrong with one copy of a stored event: on the wrong topic; its content (`theirs`, its hashed
    fields) or `hash_` not the stored event's; else its hash not matching its content (`self_ok` False)."""
    found = []
    expected_topic = EVENT_TOPIC.get(original.event_type)
    if copy.topic != expected_topic:
        found.append(_at_copy(copy, f"published on {copy.topic}, its type belongs on {expected_topic}"))
    mine = _content(original)
    if theirs != mine or hash_ != original.hash:
        differing = sorted(k for k, v in theirs.items() if mine.get(k) != v)
        found.append(_at_copy(copy, f"differs from the stored event ({', '.join(differing) or 'hash'})"))
    elif not self_ok:
        found.append(_at_copy(copy, "its hash does not match its content"))
    return found


def delivery_finding(original: Record, places: list[str]) -> Finding | None:
    """A stored event that never reached its topic, or reached it more than once (`places`: where its copies are)."""
    topic = EVENT_TOPIC.get(original.event_type)
    if topic is None:
        return None
    if not places:
        return finding_at(CHECK, original, f"never reached {topic}")
    if len(places) > 1:
        return finding_at(CHECK, original, f"reached its topic {len(places)} times ({', '.join(places)})")
    return None


def reconcile(store: AuditLog, copies: list[KafkaCopy]) -> list[Finding]:
    """Findings where the store and the topics disagree."""
    findings: list[Finding] = []
    stored = {record.event_id: record for record in store.records()}
    found: dict[str, list[KafkaCopy]] = defaultdict(list)
    for copy in sorted(copies, key=place_order):  # a place's order, not the reading's (partitions interleave at random)
        if copy.record is None:
            findings.append(_at_copy(copy, copy.problem or "unreadable message"))
            continue
        found[copy.record.event_id].append(copy)
        original = stored.get(copy.record.event_id)
        if original is None:
            findings.append(_at_copy(copy, "on the topic but not in the store"))
            continue
        theirs = _content(copy.record)
        self_ok = link_hash(copy.record.prev_hash, theirs) == copy.record.hash
        findings += copy_findings(copy, original, theirs, copy.record.hash, self_ok)
    for event_id, record in stored.items():
        finding = delivery_finding(record, [c.place for c in found.get(event_id, [])])
        if finding is not None:
            findings.append(finding)
    return findings
