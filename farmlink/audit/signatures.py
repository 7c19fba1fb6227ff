"""Every event recorded from a party's input was signed by that party: verify each signature from
the log alone, with the key the party held at that place in the log, and check the recorded fact
says what the signed input said.

Each such event carries `signed_input` (contracts/signing.py: the input message as received and
its signature). The parties and their keys (contracts/parties.py) are read from the log in order:
a party's registration (signed with the key it registers) sets its key; a rotation, signed with the
current key, replaces it; a revocation, signed with the current key, ends it: an event recorded
from an input of that party after its revocation is a finding, as is one signed with a key rotated
out (it does not verify with the current key). Each party's registration, key changes and inputs are in its owning service's schema, so that
schema's order is the log's order for it. Market prices and settlement events of schema version 1
were recorded before those parties signed (their v2 carries the evidence) and are not checked.
"""

from __future__ import annotations

from collections.abc import Container, Iterable
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from contracts.inputs import INPUT_KINDS, INPUT_TYPES, KEY_REVOCATION_TYPES, KEY_ROTATION_TYPES, REGISTRATION_TYPES, party_id_of
from contracts.signing import SIGNED_FIELDS, verification_problem
from farmlink.audit.model import AuditLog, Finding, Record, finding_at
from farmlink.audit.quick import same_json, signature_holds

SIGNATURE = "signature"

SIGNED_EVENTS: dict[str, tuple[str, str, str]] = {kind.records: (kind.type, kind.party.name, kind.field) for kind in INPUT_KINDS}
"""Event type -> (the input type it is recorded from, the producer's party kind, the payload field naming the party)."""

REGISTRATIONS = frozenset(kind.records for kind in INPUT_KINDS if kind.type in REGISTRATION_TYPES)
ROTATIONS = frozenset(kind.records for kind in INPUT_KINDS if kind.type in KEY_ROTATION_TYPES)
REVOCATIONS = frozenset(kind.records for kind in INPUT_KINDS if kind.type in KEY_REVOCATION_TYPES)
KEY_CHANGES = REGISTRATIONS | ROTATIONS | REVOCATIONS
"""Events checked in the ordered pass at once: what they do to a party's key decides how later events are checked."""

SIGNED_SINCE_V2 = frozenset({"MarketPriceObserved", "PlanRecorded", "DeliveryConfirmed", "PaymentMade"})
"""Events whose version 1 was recorded from unsigned inputs (before price feeds and settlement desks signed)."""

SCHEMAS = ("cooperative", "buyer", "market", "settlement", "pairing")
"""The schemas of the services that record parties' inputs."""


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


def _recorded_as_signed(signed: dict[str, Any], recorded: dict[str, Any]) -> bool:
    """The usual case, quickly: every signed field recorded with an equal value of an equal type (where
    `_difference` would find nothing); False when in doubt (a nested object may add fields: `_difference` decides)."""
    if not isinstance(recorded, dict) or any(name not in recorded for name in signed):
        return False
    return same_json(signed, {name: recorded[name] for name in signed})


class _Keys:
    """Each party's current key as registered, rotated or revoked so far in the log, and where."""

    def __init__(self) -> None:
        self.key: dict[str, str] = {}
        self.place: dict[str, str] = {}
        self.revoked: dict[str, str] = {}

    def change(self, record: Record, producer: str) -> None:
        """What a verified registration, rotation or revocation does to its party's key."""
        if record.event_type in REGISTRATIONS:
            if producer not in self.key:
                self.key[producer], self.place[producer] = record.payload["public_key"], record.place
        elif record.event_type in ROTATIONS:
            self.key[producer], self.place[producer] = record.payload["public_key"], record.place
        else:
            self.revoked[producer] = record.place


@dataclass(frozen=True, slots=True)
class PendingSignature:
    """A signed input whose place in the log holds (type, producer, cause, a message id used once, a
    registered key): what is left is the costly part, independent of every other event, so it can
    run anywhere and in any order: verify the signature and compare the recorded fact with the payload."""

    order: int  # the event's place among the checked events, so findings keep the log's order
    record: Record
    key: str
    whose: str


def _place_problem(
    record: Record, keys: _Keys, seen_messages: dict[str, Record], repeated: Container[str] | None = None
) -> str | tuple[str, str]:
    """Why this event's signed input is out of place, or (the key to verify it with, whose key it is)."""
    input_type, kind, id_field = SIGNED_EVENTS[record.event_type]
    evidence = record.payload.get("signed_input")
    if evidence is None:
        return f"carries no signed input: a {record.event_type} is recorded only from a {input_type} its producer signed"
    if not isinstance(evidence, dict) or any(name not in evidence for name in (*SIGNED_FIELDS, "signature")):
        return "signed_input: malformed evidence"
    if evidence["type"] != input_type:
        return f"signed_input.type: {evidence['type']!r} cannot record a {record.event_type} (expected {input_type})"
    producer = f"{kind}:{party_id_of(input_type, record.payload)}"
    if evidence["producer"] != producer:
        return f"signed_input.producer: {evidence['producer']!r} signed for {producer}"
    if record.causation_id is not None and evidence["message_id"] != record.causation_id:
        return f"signed_input.message_id: {evidence['message_id']!r} is not the input this event was caused by ({record.causation_id})"
    message_id = str(evidence["message_id"])
    earlier = seen_messages.setdefault(message_id, record) if repeated is None or message_id in repeated else record
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
    if producer in keys.revoked:
        return (
            f"signed_input.producer: {producer} revoked its key at {keys.revoked[producer]}; nothing it signs after that counts"
        )
    return key, f"the key {producer} registered at {keys.place[producer]}"


def _content_problem(record: Record, key: str, whose: str) -> str | None:
    """Why the signature does not verify with `key`, or the recorded fact differs from the signed payload, or None."""
    input_type = SIGNED_EVENTS[record.event_type][0]
    evidence = record.payload["signed_input"]
    if not signature_holds(key, evidence):  # quick.py: in doubt, the exact check decides and says why
        problem = verification_problem(key, evidence)
        if problem is not None:
            return f"signature: {problem} with {whose}"
    try:
        signed = INPUT_TYPES[input_type].model_validate(evidence["payload"]).model_dump(mode="json")
    except (ValidationError, TypeError, ValueError) as error:
        return f"signed_input.payload: not a valid {input_type}: {error}"
    if _recorded_as_signed(signed, record.payload):
        return None
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


class SignaturePlanner:
    """The ordered pass, fed the signed schemas' records in SCHEMAS order, a batch at a time: each event recorded
    from a party's input checked for its place (keys known so far, message ids used once). Registrations,
    rotations and revocations are verified at once, since only one that holds changes its party's key; every
    other signature is handed back pending. `repeated`: when the caller knows which message ids occur more than
    once in the log (the streamed audit asks the store), only those are remembered; None remembers every one."""

    def __init__(self, repeated: Container[str] | None = None) -> None:
        self.findings: list[tuple[int, Finding]] = []
        self.keys = _Keys()
        self.seen_messages: dict[str, Record] = {}
        self.repeated = repeated
        self.order = 0

    def feed(self, records: Iterable[Record]) -> list[PendingSignature]:
        pending: list[PendingSignature] = []
        for record in records:
            if record.event_type not in SIGNED_EVENTS:
                continue
            if record.event_type in SIGNED_SINCE_V2 and record.schema_version < 2:
                continue
            self.order += 1
            try:
                placed = _place_problem(record, self.keys, self.seen_messages, self.repeated)
                if isinstance(placed, str):
                    problem: str | None = placed
                elif record.event_type in KEY_CHANGES:
                    problem = _content_problem(record, *placed)
                    if problem is None:
                        self.keys.change(record, record.payload["signed_input"]["producer"])
                else:
                    pending.append(PendingSignature(self.order, record, *placed))
                    continue
            except (AttributeError, KeyError, TypeError, ValueError) as error:  # forged or damaged: a finding, never a crash
                problem = _unreadable(error)
            if problem is not None:
                self.findings.append((self.order, finding_at(SIGNATURE, record, problem)))
        return pending


def plan_signatures(log: AuditLog) -> SignaturePlan:
    """The ordered pass over a whole log (SignaturePlanner): its findings and the signatures left to verify."""
    planner = SignaturePlanner()
    pending = [p for schema in SCHEMAS for p in planner.feed(log.by_schema.get(schema, []))]
    return SignaturePlan(planner.findings, pending)


def check_signatures(log: AuditLog) -> list[Finding]:
    """One finding per event recorded from a party's input whose signed input is missing, does not verify
    with the key the party held there, comes after its revocation, or disagrees with what was recorded."""
    plan = plan_signatures(log)
    verified = ((pending.order, verify_pending(pending)) for pending in plan.pending)
    return plan.finish((order, finding) for order, finding in verified if finding is not None)
