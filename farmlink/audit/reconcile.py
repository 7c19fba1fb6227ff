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


def reconcile(store: AuditLog, copies: list[KafkaCopy]) -> list[Finding]:
    """Findings where the store and the topics disagree."""
    findings: list[Finding] = []
    stored = {record.event_id: record for record in store.records()}
    found: dict[str, list[KafkaCopy]] = defaultdict(list)
    for copy in copies:
        if copy.record is None:
            findings.append(_at_copy(copy, copy.problem or "unreadable message"))
            continue
        found[copy.record.event_id].append(copy)
        original = stored.get(copy.record.event_id)
        if original is None:
            findings.append(_at_copy(copy, "on the topic but not in the store"))
            continue
        expected_topic = EVENT_TOPIC.get(original.event_type)
        if copy.topic != expected_topic:
            findings.append(_at_copy(copy, f"published on {copy.topic}, its type belongs on {expected_topic}"))
        if _content(copy.record) != _content(original) or copy.record.hash != original.hash:
            differing = sorted(k for k, v in _content(copy.record).items() if _content(original).get(k) != v)
            findings.append(_at_copy(copy, f"differs from the stored event ({', '.join(differing) or 'hash'})"))
        elif link_hash(copy.record.prev_hash, _content(copy.record)) != copy.record.hash:
            findings.append(_at_copy(copy, "its hash does not match its content"))
    for event_id, record in stored.items():
        if EVENT_TOPIC.get(record.event_type) is None:
            continue
        copies_of = found.get(event_id, [])
        if not copies_of:
            findings.append(finding_at(CHECK, record, f"never reached {EVENT_TOPIC[record.event_type]}"))
        elif len(copies_of) > 1:
            places = ", ".join(c.place for c in copies_of)
            findings.append(finding_at(CHECK, record, f"reached its topic {len(copies_of)} times ({places})"))
    return findings
