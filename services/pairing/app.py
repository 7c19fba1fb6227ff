"""The pairing service app: consumes the pairing input topic; records the pairing office's pairings,
support deliveries, projects and milestones (services/pairing/domain.py has the rules), and supervision rounds
with what the ledger's rules opened and cured; keeps the facts those rules read from the services' event
topics (services/pairing/rounds.py).

Thin and batch-shaped (events/unit.py): `load` reads what a batch needs in a few queries, each
handler decides one input from that view, and the batch is written once.
"""

from collections.abc import Sequence
from pathlib import Path

import asyncpg
from faststream.kafka import KafkaMessage

from contracts.inputs import (
    MilestoneReport,
    PairingOfficeRegistration,
    PairingRegistration,
    ProblemClosure,
    ProblemReport,
    ProjectRegistration,
    RectificationReport,
    SupervisionRound,
    SupportDelivery,
    SupportPromise,
    party_id_of,
)
from contracts.pairing import PairingOfficeRegistered
from contracts.parties import PAIRING_OFFICE
from contracts.signing import SignedInput
from contracts.topics import PAIRING_INPUT
from events.authentication import authenticate_party, key_handlers, key_streams, load_keys, producers_of, register_party
from events.codec import decode_input
from events.consumer import Decoded, ids_of, input_handler, rejected_receipt
from events.runtime import ServiceRuntime, deliveries_of, require_store
from events.store import NewEvent
from events.handling import Consumer, consume_batch
from events.unit import BatchUnitOfWork, Table
from services.pairing import domain, rounds

SERVICE = "pairing"
FACTS_GROUP = "farmlink.pairing.facts"
runtime = ServiceRuntime(SERVICE, Path(__file__).parent / "sql")
app = runtime.app

PAIRINGS = Table(
    "pairings",
    ("pairing_id",),
    (
        ("pairing_id", "text"),
        ("kind", "text"),
        ("helper", "text"),
        ("helper_kind", "text"),
        ("helped", "text"),
        ("helped_kind", "text"),
        ("helped_township", "text"),
        ("team", "text"),
    ),
)
SUPPORT = Table(
    "support",
    ("delivery_id",),
    (
        ("delivery_id", "text"),
        ("pairing_id", "text"),
        ("kind", "text"),
        ("quantity", "numeric"),
        ("value_fen", "bigint"),
        ("delivered_on", "date"),
        ("to_cooperative_id", "text"),
        ("to_village", "text"),
        ("note", "text"),
    ),
)
PROJECTS = Table(
    "projects",
    ("project_id",),
    (
        ("project_id", "text"),
        ("name", "text"),
        ("owner_team", "text"),
        ("target", "text"),
        ("due_on", "date"),
        ("pairing_id", "text"),
        ("product", "text"),
    ),
)
MILESTONES = Table(
    "milestones",
    ("project_id", "milestone_id"),
    (
        ("project_id", "text"),
        ("milestone_id", "text"),
        ("name", "text"),
        ("due_on", "date"),
        ("reached_on", "date"),
        ("evidence", "text"),
    ),
)


def pairing_stream(pairing_id: str) -> str:
    return f"pairing-{pairing_id}"


def project_stream(project_id: str) -> str:
    return f"project-{project_id}"


def stream_of(request) -> str:
    """The stream an input appends to."""
    if isinstance(request, PairingOfficeRegistration):
        return f"pairing-office-{request.office_id}"
    if isinstance(request, PairingRegistration):
        return pairing_stream(request.pairing_id)
    if isinstance(request, SupportDelivery):
        return f"support-{request.delivery_id}"
    if isinstance(request, SupportPromise):
        return f"promise-{request.promise_id}"
    if isinstance(request, ProjectRegistration | MilestoneReport):
        return project_stream(request.project_id)
    if isinstance(request, SupervisionRound):
        return f"round-{request.round_id}"
    if isinstance(request, ProblemReport | RectificationReport | ProblemClosure):
        return f"problem-{request.problem_id}"
    return ""


async def load(conn: asyncpg.Connection, uow: BatchUnitOfWork, items: Sequence[Decoded]) -> None:
    """The offices' keys, the milestones of the projects the batch names, and the heads of every stream it
    names (a pairing or project exists when its stream does)."""
    requests = [item.item[1] for item in items]
    await load_keys(conn, uow, producers_of(items))
    project_ids = list({r.project_id for r in requests if isinstance(r, MilestoneReport)})
    if project_ids:
        rows = await conn.fetch(
            "SELECT project_id, milestone_id, due_on, reached_on FROM milestones WHERE project_id = ANY($1::text[])", project_ids
        )
        uow.load(
            MILESTONES.name,
            {
                (row["project_id"], row["milestone_id"]): domain.Milestone(
                    row["due_on"].isoformat(), row["reached_on"] is not None
                )
                for row in rows
            },
        )
    pairing_ids = {
        r.pairing_id for r in requests if isinstance(r, SupportDelivery | SupportPromise | ProjectRegistration) and r.pairing_id
    }
    await uow.load_heads(
        conn, [*(s for s in map(stream_of, requests) if s), *map(pairing_stream, pairing_ids), *key_streams(items)]
    )
    held = [r for r in requests if isinstance(r, SupervisionRound)]
    if held:
        await rounds.load_rounds(conn, uow, held)
    elif closed := [r.problem_id for r in requests if isinstance(r, ProblemClosure)]:
        await rounds.load_problems(conn, uow, closed)


def signed_by_office(uow: BatchUnitOfWork, message, request) -> SignedInput:
    """An input its pairing office (the one it names, else the default office) signed with its current key."""
    office_id = party_id_of(message.type, request.model_dump())
    return authenticate_party(
        uow,
        message,
        PAIRING_OFFICE,
        office_id,
        unknown="; a pairing office registers (pairing_office.registered) before it records anything",
    )


def register_office(uow: BatchUnitOfWork, decoded: Decoded, message, registration: PairingOfficeRegistration) -> None:
    register_party(
        uow,
        decoded,
        message,
        PAIRING_OFFICE,
        registration.office_id,
        registration.public_key,
        lambda key: PairingOfficeRegistered(office_id=registration.office_id, name=registration.name, public_key=key),
        stream_of(registration),
    )


def register_pairing(uow: BatchUnitOfWork, decoded: Decoded, message, registration: PairingRegistration) -> None:
    evidence = signed_by_office(uow, message, registration)
    stream = stream_of(registration)
    event = domain.register_pairing(registration, uow.stream_version(stream) > 0).model_copy(update={"signed_input": evidence})
    uow.append(stream, [NewEvent(event)], 0, **ids_of(decoded))
    uow.put(PAIRINGS, {name: getattr(event, name) for name in PAIRINGS.column_names}, view=False)


def deliver_support(uow: BatchUnitOfWork, decoded: Decoded, message, delivery: SupportDelivery) -> None:
    evidence = signed_by_office(uow, message, delivery)
    stream = stream_of(delivery)
    event = domain.deliver_support(
        delivery, uow.stream_version(pairing_stream(delivery.pairing_id)) > 0, uow.stream_version(stream) > 0
    ).model_copy(update={"signed_input": evidence})
    uow.append(stream, [NewEvent(event)], 0, **ids_of(decoded))
    uow.put(SUPPORT, {name: getattr(event, name) for name in SUPPORT.column_names}, view=False)


def promise_support(uow: BatchUnitOfWork, decoded: Decoded, message, promise: SupportPromise) -> None:
    evidence = signed_by_office(uow, message, promise)
    stream = stream_of(promise)
    event = domain.promise_support(
        promise, uow.stream_version(pairing_stream(promise.pairing_id)) > 0, uow.stream_version(stream) > 0
    ).model_copy(update={"signed_input": evidence})
    uow.append(stream, [NewEvent(event)], 0, **ids_of(decoded))


def register_project(uow: BatchUnitOfWork, decoded: Decoded, message, registration: ProjectRegistration) -> None:
    evidence = signed_by_office(uow, message, registration)
    stream = stream_of(registration)
    known = registration.pairing_id is None or uow.stream_version(pairing_stream(registration.pairing_id)) > 0
    event = domain.register_project(registration, uow.stream_version(stream) > 0, known).model_copy(
        update={"signed_input": evidence}
    )
    uow.append(stream, [NewEvent(event)], 0, **ids_of(decoded))
    uow.put(PROJECTS, {name: getattr(event, name) for name in PROJECTS.column_names}, view=False)
    for milestone in event.milestones:
        uow.put(
            MILESTONES,
            {
                "project_id": event.project_id,
                "milestone_id": milestone.milestone_id,
                "name": milestone.name,
                "due_on": milestone.due_on,
                "reached_on": None,
                "evidence": None,
            },
            view=False,
        )
        uow.set(
            MILESTONES.name, (event.project_id, milestone.milestone_id), domain.Milestone(milestone.due_on.isoformat(), False)
        )


def reach_milestone(uow: BatchUnitOfWork, decoded: Decoded, message, report: MilestoneReport) -> None:
    evidence = signed_by_office(uow, message, report)
    stream = stream_of(report)
    milestone = uow.get(MILESTONES.name, (report.project_id, report.milestone_id))
    event = domain.reach_milestone(report, uow.stream_version(stream) > 0, milestone).model_copy(
        update={"signed_input": evidence}
    )
    uow.append(stream, [NewEvent(event)], uow.stream_version(stream), **ids_of(decoded))
    uow.patch(
        MILESTONES, (report.project_id, report.milestone_id), {"reached_on": report.reached_on, "evidence": report.evidence}
    )
    uow.set(MILESTONES.name, (report.project_id, report.milestone_id), domain.Milestone(event.due_on.isoformat(), True))


def hold_round(uow: BatchUnitOfWork, decoded: Decoded, message, report: SupervisionRound) -> None:
    evidence = signed_by_office(uow, message, report)
    stream = stream_of(report)
    event = domain.hold_round(report, uow.stream_version(stream) > 0).model_copy(update={"signed_input": evidence})
    uow.append(stream, [NewEvent(event), *rounds.evaluate(uow, report.round_id, report.as_of)], 0, **ids_of(decoded))


def open_problem(uow: BatchUnitOfWork, decoded: Decoded, message, report: ProblemReport) -> None:
    evidence = signed_by_office(uow, message, report)
    stream = stream_of(report)
    event = domain.open_problem(report, uow.stream_version(stream) > 0).model_copy(update={"signed_input": evidence})
    uow.append(stream, [NewEvent(event)], 0, **ids_of(decoded))


def rectify(uow: BatchUnitOfWork, decoded: Decoded, message, report: RectificationReport) -> None:
    """An entry of a problem's rectification record: for a problem an inspector opened, or one the rules opened
    (its id is the rule's, matcher/supervision/rules.py); one recorded before its problem opens joins it when it does."""
    evidence = signed_by_office(uow, message, report)
    stream = stream_of(report)
    event = domain.rectify(report).model_copy(update={"signed_input": evidence})
    uow.append(stream, [NewEvent(event)], uow.stream_version(stream), **ids_of(decoded))


def close_problem(uow: BatchUnitOfWork, decoded: Decoded, message, report: ProblemClosure) -> None:
    evidence = signed_by_office(uow, message, report)
    stream = stream_of(report)
    event = domain.close_problem(report).model_copy(update={"signed_input": evidence})
    uow.append(stream, [NewEvent(event)], uow.stream_version(stream), **ids_of(decoded))
    opened_by_a_round = uow.get(rounds.PROBLEMS.name, report.problem_id)
    if opened_by_a_round is not None and opened_by_a_round["state"] == "open":
        rounds.set_problem(uow, {**opened_by_a_round, "state": "closed"})


HANDLERS = {
    PairingOfficeRegistration: register_office,
    PairingRegistration: register_pairing,
    SupportPromise: promise_support,
    SupportDelivery: deliver_support,
    ProjectRegistration: register_project,
    MilestoneReport: reach_milestone,
    SupervisionRound: hold_round,
    ProblemReport: open_problem,
    RectificationReport: rectify,
    ProblemClosure: close_problem,
    **key_handlers(PAIRING_OFFICE),
}


handle = input_handler(SERVICE, HANDLERS)
"""Decide one input from the view; then tell the producer."""


CONSUMER = Consumer(SERVICE, decode_input, handle, load, rejected_receipt(SERVICE))


FACTS = Consumer(f"{SERVICE}.facts", rounds.decode_fact, rounds.keep_fact)


@runtime.subscriber(PAIRING_INPUT)
async def on_pairing_input(body: list[bytes], message: KafkaMessage) -> None:
    await consume_batch(require_store(runtime), CONSUMER, deliveries_of(message))


@runtime.subscriber(*rounds.FACT_TOPICS, group_id=FACTS_GROUP, **runtime.BEHIND_THE_MARKET)
async def on_fact(body: list[bytes], message: KafkaMessage) -> None:
    await consume_batch(require_store(runtime), FACTS, deliveries_of(message))
