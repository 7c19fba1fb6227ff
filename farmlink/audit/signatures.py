"""Every cooperative and buyer event was recorded from an input its producer signed: verify each
signature from the log alone, with the public key in the producer's registered event, and check
the recorded fact says what the signed input said.

Each such event carries `signed_input` (contracts/signing.py: the input message as received and
its signature). The key of `cooperative:<id>` is the `public_key` of the CooperativeRegistered
event earlier in the cooperative schema's log (of `buyer:<id>`: BuyerRegistered); a
registration is signed with the key it registers.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from contracts.inputs import INPUT_TYPES
from contracts.signing import SIGNED_FIELDS, verification_problem
from farmlink.audit.model import AuditLog, Finding, Record, finding_at

SIGNATURE = "signature"

SIGNED_EVENTS: dict[str, tuple[str, str, str]] = {
    "CooperativeRegistered": ("cooperative.registered", "cooperative", "cooperative_id"),
    "PlantingRecorded": ("planting.recorded", "cooperative", "cooperative_id"),
    "HarvestRecorded": ("harvest.recorded", "cooperative", "cooperative_id"),
    "BuyerRegistered": ("buyer.registered", "buyer", "buyer_id"),
    "OrderPlaced": ("order.placed", "buyer", "buyer_id"),
    "OrderCancelled": ("order.cancelled", "buyer", "buyer_id"),
    "CommitmentMade": ("commitment.made", "buyer", "buyer_id"),
}
"""Event type -> (the input type it is recorded from, the producer kind, the payload field naming the producer)."""

REGISTRATIONS = frozenset({"CooperativeRegistered", "BuyerRegistered"})


def _difference(signed: Any, recorded: Any, path: str) -> str | None:
    """Where the recorded value departs from the signed one (the recorded side may add fields), or None."""
    if isinstance(signed, dict):
        if not isinstance(recorded, dict):
            return f"{path}: recorded {recorded!r}, signed an object"
        for name, value in signed.items():
            if name not in recorded:
                return f"{path}.{name}: signed {value!r}, not recorded"
            found = _difference(value, recorded[name], f"{path}.{name}")
            if found:
                return found
        return None
    if isinstance(signed, list):
        if not isinstance(recorded, list) or len(recorded) != len(signed):
            return f"{path}: recorded {recorded!r}, signed {signed!r}"
        for index, (a, b) in enumerate(zip(signed, recorded)):
            found = _difference(a, b, f"{path}.{index}")
            if found:
                return found
        return None
    if signed != recorded or type(signed) is not type(recorded):
        return f"{path}: recorded {recorded!r}, signed {signed!r}"
    return None


class _Keys:
    """Public keys by producer, as registered so far in the log, and where."""

    def __init__(self) -> None:
        self.key: dict[str, str] = {}
        self.place: dict[str, str] = {}


@dataclass(frozen=True, slots=True)
class PendingSignature:
    """A signed input whose place in the log holds (type, producer, cause, a message id used once, a
    registered key): what is left is the costly part, independent of every other event, so it can
    run anywhere and in any order: verify the signature and compare the recorded fact with the payload."""

    order: int  # the event's place among the checked events, so findings keep the log's order
    record: Record
    key: str
    whose: str


def _place_problem(record: Record, keys: _Keys, seen_messages: dict[str, Record]) -> str | tuple[str, str]:
    """Why this event's signed input is out of place, or (the key to verify it with, whose key it is)."""
    input_type, kind, id_field = SIGNED_EVENTS[record.event_type]
    evidence = record.payload.get("signed_input")
    if evidence is None:
        return f"carries no signed input: a {record.event_type} is recorded only from a {input_type} its producer signed"
    if not isinstance(evidence, dict) or any(name not in evidence for name in (*SIGNED_FIELDS, "signature")):
        return "signed_input: malformed evidence"
    if evidence["type"] != input_type:
        return f"signed_input.type: {evidence['type']!r} cannot record a {record.event_type} (expected {input_type})"
    producer = f"{kind}:{record.payload.get(id_field)}"
    if evidence["producer"] != producer:
        return f"signed_input.producer: {evidence['producer']!r} signed for {producer}"
    if record.causation_id is not None and evidence["message_id"] != record.causation_id:
        return f"signed_input.message_id: {evidence['message_id']!r} is not the input this event was caused by ({record.causation_id})"
    earlier = seen_messages.setdefault(str(evidence["message_id"]), record)
    if earlier is not record:
        return f"signed_input.message_id: input {evidence['message_id']} already evidences {earlier.place}"
    if record.event_type in REGISTRATIONS:
        key = record.payload.get("public_key")
        if not isinstance(key, str):
            return "public_key: a registration without a public key"
        return key, "the public key it registers"
    key = keys.key.get(producer)
    if key is None:
        return f"signed_input.producer: {producer} has no registered public key earlier in the log"
    return key, f"the key {producer} registered at {keys.place[producer]}"


def _content_problem(record: Record, key: str, whose: str) -> str | None:
    """Why the signature does not verify with `key`, or the recorded fact differs from the signed payload, or None."""
    input_type = SIGNED_EVENTS[record.event_type][0]
    evidence = record.payload["signed_input"]
    problem = verification_problem(key, evidence)
    if problem is not None:
        return f"signature: {problem} with {whose}"
    try:
        signed = INPUT_TYPES[input_type].model_validate(evidence["payload"]).model_dump(mode="json")
    except (ValidationError, TypeError, ValueError) as error:
        return f"signed_input.payload: not a valid {input_type}: {error}"
    difference = _difference(signed, record.payload, "payload")
    if difference is not None:
        return f"the recorded fact differs from the signed input at {difference}"
    return None


def _unreadable(error: Exception) -> str:
    return f"unreadable signed input: {type(error).__name__}: {error}"


def verify_pending(pending: PendingSignature) -> Finding | None:
    """The finding for one pending signature, or None when it verifies and the fact is what was signed."""
    try:
        problem = _content_problem(pending.record, pending.key, pending.whose)
    except (AttributeError, KeyError, TypeError, ValueError) as error:  # a forged or damaged payload: a finding, never a crash
        problem = _unreadable(error)
    return None if problem is None else finding_at(SIGNATURE, pending.record, problem)


@dataclass
class SignaturePlan:
    """The signature check split in two: the findings of the ordered pass over the log (with each one's
    place in it) and the signatures left to verify, which may run in parallel."""

    findings: list[tuple[int, Finding]]
    pending: list[PendingSignature]

    def finish(self, verified: Iterable[tuple[int, Finding]]) -> list[Finding]:
        """All findings in the log's order, given those of the verified signatures (with their order)."""
        return [finding for _, finding in sorted([*self.findings, *verified], key=lambda item: item[0])]


def plan_signatures(log: AuditLog) -> SignaturePlan:
    """The ordered pass: every cooperative and buyer event in log order, each checked for its place
    (keys known so far, message ids used once). A registration is verified at once, since only a
    registration that holds registers its key; every other signature is left pending."""
    plan = SignaturePlan([], [])
    keys = _Keys()
    seen_messages: dict[str, Record] = {}
    order = 0
    for schema in ("cooperative", "buyer"):
        for record in log.by_schema.get(schema, []):
            if record.event_type not in SIGNED_EVENTS:
                continue
            order += 1
            try:
                placed = _place_problem(record, keys, seen_messages)
                if isinstance(placed, str):
                    problem: str | None = placed
                elif record.event_type in REGISTRATIONS:
                    problem = _content_problem(record, *placed)
                    producer = record.payload["signed_input"]["producer"]
                    if problem is None and producer not in keys.key:
                        keys.key[producer], keys.place[producer] = placed[0], record.place
                else:
                    plan.pending.append(PendingSignature(order, record, *placed))
                    continue
            except (AttributeError, KeyError, TypeError, ValueError) as error:  # a forged or damaged payload: a finding, never a crash
                problem = _unreadable(error)
            if problem is not None:
                plan.findings.append((order, finding_at(SIGNATURE, record, problem)))
    return plan


def check_signatures(log: AuditLog) -> list[Finding]:
    """One finding per cooperative or buyer event whose signed input is missing, does not verify
    with the producer's registered key, or disagrees with what was recorded."""
    plan = plan_signatures(log)
    verified = ((pending.order, verify_pending(pending)) for pending in plan.pending)
    return plan.finish((order, finding) for order, finding in verified if finding is not None)
