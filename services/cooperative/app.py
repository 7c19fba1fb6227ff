"""The cooperative service app: consumes the cooperative input topic, records events.

Thin and batch-shaped (events/unit.py): `load` reads what a batch needs in a few queries,
each handler decides one input from that view (services/cooperative/domain.py has the rules),
and the batch is written once.
"""

from collections.abc import Sequence
from pathlib import Path

import asyncpg
from faststream.kafka import KafkaMessage

from contracts.inputs import CooperativeRegistration, HarvestReport, PlantingReport
from contracts.parties import COOPERATIVE
from contracts.topics import COOPERATIVE_INPUT
from events.authentication import PartyKey, keep_key, key_handlers, key_of, key_streams, load_keys, producers_of
from events.codec import decode_input
from events.consumer import Decoded, ids_of, input_handler, rejected_receipt
from events.runtime import ServiceRuntime, deliveries_of, require_store
from events.store import NewEvent
from events.unit import BatchUnitOfWork, Table
from events.handling import Consumer, consume_batch
from services.cooperative import domain

SERVICE = "cooperative"
runtime = ServiceRuntime(SERVICE, Path(__file__).parent / "sql")
app = runtime.app

COOPERATIVES = Table(
    "cooperatives",
    ("cooperative_id",),
    (
        ("cooperative_id", "text"),
        ("name", "text"),
        ("county", "text"),
        ("township", "text"),
        ("village", "text"),
        ("public_key", "text"),
    ),
)
HOUSEHOLDS = Table(
    "households", ("household_id",), (("household_id", "text"), ("cooperative_id", "text"), ("registered_poor", "boolean"))
)
MEMBERS = "members"  # view only: cooperative id -> {household id: registered_poor}


def stream_of(report) -> str:
    if isinstance(report, CooperativeRegistration):
        return f"cooperative-{report.cooperative_id}"
    if isinstance(report, PlantingReport):
        return f"planting-{report.planting_id}"
    if isinstance(report, HarvestReport):
        return f"lot-{report.lot_id}"
    return ""


async def load(conn: asyncpg.Connection, uow: BatchUnitOfWork, items: Sequence[Decoded]) -> None:
    """Cooperatives, their members, households being registered and stream heads the batch names."""
    reports = [item.item[1] for item in items]
    cooperative_ids = list({r.cooperative_id for r in reports if hasattr(r, "cooperative_id")})
    rows = await conn.fetch(
        "SELECT cooperative_id, name, county, township, village, public_key FROM cooperatives WHERE cooperative_id = ANY($1::text[])",
        cooperative_ids,
    )
    uow.absent(COOPERATIVES.name, cooperative_ids)
    uow.load(COOPERATIVES.name, {row["cooperative_id"]: dict(row) for row in rows})
    household_ids = list({h.household_id for r in reports if isinstance(r, CooperativeRegistration) for h in r.households})
    rows = await conn.fetch(
        """SELECT household_id, cooperative_id, registered_poor FROM households
           WHERE cooperative_id = ANY($1::text[]) OR household_id = ANY($2::text[])""",
        cooperative_ids,
        household_ids,
    )
    members: dict[str, dict[str, bool]] = {c: {} for c in cooperative_ids}
    for row in rows:
        members.setdefault(row["cooperative_id"], {})[row["household_id"]] = row["registered_poor"]
    uow.load(MEMBERS, members)
    uow.absent(HOUSEHOLDS.name, household_ids)
    uow.load(HOUSEHOLDS.name, {row["household_id"]: dict(row) for row in rows})
    await load_keys(conn, uow, producers_of(items))
    await uow.load_heads(conn, [*(s for s in map(stream_of, reports) if s), *key_streams(items)])


def cooperative_of(uow: BatchUnitOfWork, cooperative_id: str) -> domain.Cooperative | None:
    row = uow.get(COOPERATIVES.name, cooperative_id)
    if row is None:
        return None
    return domain.Cooperative(
        cooperative_id, row["county"], row["township"], row["village"], dict(uow.get(MEMBERS, cooperative_id) or {})
    )


def registered_key(uow: BatchUnitOfWork, cooperative_id: str) -> PartyKey | None:
    """The cooperative's current key (rotations and revocation included)."""
    return key_of(uow, COOPERATIVE.producer(cooperative_id))


def register_cooperative(uow: BatchUnitOfWork, decoded: Decoded, message, report: CooperativeRegistration) -> None:
    evidence = domain.authenticate_registration(message, report)
    taken = {
        h.household_id: row["cooperative_id"]
        for h in report.households
        if (row := uow.get(HOUSEHOLDS.name, h.household_id)) is not None
    }
    exists = uow.get(COOPERATIVES.name, report.cooperative_id) is not None
    event = domain.register(report, exists, taken).model_copy(update={"signed_input": evidence})
    uow.append(stream_of(report), [NewEvent(event)], 0, **ids_of(decoded))
    uow.put(
        COOPERATIVES,
        {
            "cooperative_id": event.cooperative_id,
            "name": event.name,
            "county": event.county,
            "township": event.township,
            "village": event.village,
            "public_key": event.public_key,
        },
    )
    assert event.public_key is not None
    keep_key(uow, COOPERATIVE.producer(event.cooperative_id), PartyKey(event.public_key))
    for h in event.households:
        uow.put(
            HOUSEHOLDS,
            {"household_id": h.household_id, "cooperative_id": event.cooperative_id, "registered_poor": h.registered_poor},
        )
    uow.set(MEMBERS, event.cooperative_id, {h.household_id: h.registered_poor for h in event.households})


def record_planting(uow: BatchUnitOfWork, decoded: Decoded, message, report: PlantingReport) -> None:
    evidence = domain.authenticate(message, report.cooperative_id, registered_key(uow, report.cooperative_id))
    stream = stream_of(report)
    event = domain.record_planting(report, cooperative_of(uow, report.cooperative_id), uow.stream_version(stream) > 0)
    uow.append(stream, [NewEvent(event.model_copy(update={"signed_input": evidence}))], 0, **ids_of(decoded))


def record_harvest(uow: BatchUnitOfWork, decoded: Decoded, message, report: HarvestReport) -> None:
    evidence = domain.authenticate(message, report.cooperative_id, registered_key(uow, report.cooperative_id))
    stream = stream_of(report)
    event = domain.record_harvest(report, cooperative_of(uow, report.cooperative_id), uow.stream_version(stream) > 0)
    uow.append(stream, [NewEvent(event.model_copy(update={"signed_input": evidence}))], 0, **ids_of(decoded))


HANDLERS = {
    CooperativeRegistration: register_cooperative,
    PlantingReport: record_planting,
    HarvestReport: record_harvest,
    **key_handlers(COOPERATIVE),
}


handle = input_handler(SERVICE, HANDLERS)
"""Decide one input from the view; then tell the producer."""


CONSUMER = Consumer(SERVICE, decode_input, handle, load, rejected_receipt(SERVICE), skip_markers=True)


@runtime.subscriber(COOPERATIVE_INPUT)
async def on_cooperative_input(body: list[bytes], message: KafkaMessage) -> None:
    await consume_batch(require_store(runtime), CONSUMER, deliveries_of(message))
