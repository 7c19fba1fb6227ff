"""A party talking to one service's own handlers on an in-memory unit of work (as `farmlink simulate` runs
them): each input signed with whichever key the test chooses; what the service recorded read back as
the auditor reads the log."""

import json
import uuid

import orjson

from contracts.signing import sign
from events.consumer import Delivery
from events.store import envelope_bytes
from events.unit import MemoryUnitOfWork
from events.handling import decide_one
from farmlink.audit.log import record_from_envelope
from farmlink.audit.model import AuditLog


class Party:
    """One party's inputs, signed with whichever of its keys the test chooses, sent to one service in memory."""

    def __init__(self, service, producer: str, consumer=None):
        self.service = service
        self.consumer = consumer or service.CONSUMER
        self.producer = producer
        self.uow = MemoryUnitOfWork(service.SERVICE, f"service:{service.SERVICE}", lambda envelope: None)
        self.position = 0

    def send(self, input_type: str, payload: dict, key) -> tuple[bool, str]:
        """(accepted, the reason when refused)."""
        fields = {
            "message_id": uuid.uuid4().hex,
            "type": input_type,
            "producer": self.producer,
            "correlation_id": "c",
            "payload": payload,
        }
        body = json.dumps({**fields, "signature": sign(key, fields)}).encode()
        self.position += 1
        events, accepted = decide_one(self.uow, self.consumer, Delivery("t", 0, self.position, None, body, []))
        reason = ""
        if not accepted:
            [dead] = [headers for topic, _, _, headers in self.uow.messages if topic == "farmlink.deadletter"][-1:]
            reason = dict(dead)["dlq.reason"].decode()
        return accepted, reason

    def audit_log(self) -> AuditLog:
        """What the service recorded, read back as the auditor reads the log."""
        records = []
        for position, envelope in enumerate(self.uow.envelopes, start=1):
            data = orjson.loads(envelope_bytes(envelope))
            records.append(record_from_envelope({**data, "global_position": position}))
        return AuditLog("memory", {self.service.SERVICE: records})
