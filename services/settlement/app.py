"""The settlement service app: records deliveries, payments and plans; keeps the income ledger.

Thin and batch-shaped (events/unit.py): `load` reads what a batch needs in a few queries,
each handler decides one input from that view (services/settlement/domain.py has the rules),
and the batch is written once.
"""

import json
from collections.abc import Sequence
from decimal import Decimal
from pathlib import Path

import asyncpg
from faststream.kafka import KafkaMessage

from contracts.cooperative import CooperativeRegistered, HarvestRecorded, PlantingRecorded
from contracts.inputs import DeliveryConfirmation, PaymentReport, PlanReport, Receipt, SettlementDeskRegistration, party_id_of
from contracts.matching import FillMade
from contracts.parties import SETTLEMENT_DESK
from contracts.settlement import PlanRecorded, SettlementDeskRegistered
from contracts.signing import SignedInput
from contracts.topics import COOPERATIVE_EVENTS, FILLS, SETTLEMENT_INPUT
from events.authentication import authenticate_party, key_handlers, key_streams, load_keys, producers_of, register_party
from events.codec import decode_event, decode_input
from events.consumer import Decoded, Rejection, ids_of, input_handler, rejected_receipt, send_receipt
from events.runtime import ServiceRuntime, deliveries_of, require_store
from events.store import NewEvent
from events.unit import BatchUnitOfWork, Table
from events.handling import Consumer, consume_batch
from services.settlement import domain

SERVICE = "settlement"
runtime = ServiceRuntime(SERVICE, Path(__file__).parent / "sql")
app = runtime.app

PLANS = Table(
    "plans",
    ("plan_id",),
    (
        ("plan_id", "text"),
        ("county", "text"),
        ("township", "text"),
        ("product", "text"),
        ("area_mu", "numeric"),
        ("target_household_income_fen", "bigint"),
    ),
)
FILL_ROWS = Table(
    "fills",
    ("fill_id",),
    (
        ("fill_id", "text"),
        ("lot_id", "text"),
        ("outlet_id", "text"),
        ("outlet_kind", "text"),
        ("buyer_id", "text"),
        ("product", "text"),
        ("cooperative_id", "text"),
        ("quantity", "numeric"),
        ("unit_price_fen", "bigint"),
        ("price_basis", "text"),
        ("revenue_fen", "bigint"),
        ("household_income_fen", "jsonb"),
        ("delivered", "numeric"),
        ("paid_fen", "bigint"),
    ),
)
NEW_FILLS = Table("fills", ("fill_id",), FILL_ROWS.columns[:-2])
INCOMES = Table("incomes", ("household_id", "product"), (("household_id", "text"), ("product", "text"), ("paid_fen", "bigint")))
HOUSEHOLDS = Table(
    "households",
    ("household_id",),
    (
        ("household_id", "text"),
        ("cooperative_id", "text"),
        ("village", "text"),
        ("township", "text"),
        ("county", "text"),
        ("registered_poor", "boolean"),
    ),
)
LOTS = Table(
    "lots", ("lot_id",), (("lot_id", "text"), ("cooperative_id", "text"), ("product", "text"), ("contributions", "jsonb"))
)
PLANTINGS = Table(
    "plantings",
    ("planting_id",),
    (
        ("planting_id", "text"),
        ("cooperative_id", "text"),
        ("county", "text"),
        ("township", "text"),
        ("product", "text"),
        ("area_mu", "numeric"),
    ),
)
FILL = "fill"  # view: (lot id, outlet id) -> the fill's row


class LotNotYetKnown(Exception):
    """A payment for a lot whose harvest event has not arrived yet: retried, not rejected."""


def stream_of(report) -> str:
    if isinstance(report, SettlementDeskRegistration):
        return f"settlement-desk-{report.desk_id}"
    if isinstance(report, PlanReport):
        return f"plan-{report.plan_id}"
    if isinstance(report, DeliveryConfirmation | PaymentReport):
        return f"settlement-{report.lot_id}-{report.outlet_id}"
    return ""


async def load_inputs(conn: asyncpg.Connection, uow: BatchUnitOfWork, items: Sequence[Decoded]) -> None:
    """Desks' keys, plans, fills (locked: deliveries and payments change them), lots and stream heads the batch names."""
    reports = [item.item[1] for item in items]
    await load_keys(conn, uow, producers_of(items))
    plan_ids = list({r.plan_id for r in reports if isinstance(r, PlanReport)})
    pairs = list({(r.lot_id, r.outlet_id) for r in reports if isinstance(r, DeliveryConfirmation | PaymentReport)})
    lot_ids = list({r.lot_id for r in reports if isinstance(r, PaymentReport)})
    if plan_ids:
        rows = await conn.fetch("SELECT plan_id FROM plans WHERE plan_id = ANY($1::text[])", plan_ids)
        uow.absent(PLANS.name, plan_ids)
        uow.load(PLANS.name, {row["plan_id"]: True for row in rows})
    if pairs:
        rows = await conn.fetch(
            f"""SELECT {", ".join(FILL_ROWS.column_names)} FROM fills
                WHERE (lot_id, outlet_id) IN (SELECT * FROM unnest($1::text[], $2::text[])) ORDER BY fill_id FOR UPDATE""",
            [lot for lot, _ in pairs],
            [outlet for _, outlet in pairs],
        )
        uow.absent(FILL, pairs)
        uow.load(FILL, {(row["lot_id"], row["outlet_id"]): dict(row) for row in rows})
    if lot_ids:
        rows = await conn.fetch(
            "SELECT lot_id, contributions::text AS contributions FROM lots WHERE lot_id = ANY($1::text[])", lot_ids
        )
        uow.absent(LOTS.name, lot_ids)
        uow.load(LOTS.name, {row["lot_id"]: json.loads(row["contributions"]) for row in rows})
    await uow.load_heads(conn, [*(s for s in map(stream_of, reports) if s), *key_streams(items)])


def fill_of(uow: BatchUnitOfWork, lot_id: str, outlet_id: str) -> tuple[dict | None, domain.FillAccount | None]:
    row = uow.get(FILL, (lot_id, outlet_id))
    if row is None:
        return None, None
    fields = ("lot_id", "outlet_id", "buyer_id", "product", "cooperative_id", "quantity", "revenue_fen", "delivered", "paid_fen")
    return row, domain.FillAccount(**{name: row[name] for name in fields})


def desk_signed(uow: BatchUnitOfWork, message, report: PlanReport | DeliveryConfirmation | PaymentReport) -> SignedInput:
    """A plan, delivery or payment its settlement desk (the one it names, else the default desk) signed with its current key."""
    desk_id = party_id_of(message.type, report.model_dump())
    return authenticate_party(
        uow,
        message,
        SETTLEMENT_DESK,
        desk_id,
        unknown="; a settlement desk registers (settlement_desk.registered) before it records anything",
    )


def register_desk(uow: BatchUnitOfWork, decoded: Decoded, message, registration: SettlementDeskRegistration) -> None:
    register_party(
        uow,
        decoded,
        message,
        SETTLEMENT_DESK,
        registration.desk_id,
        registration.public_key,
        lambda key: SettlementDeskRegistered(desk_id=registration.desk_id, name=registration.name, public_key=key),
        stream_of(registration),
    )


def record_plan(uow: BatchUnitOfWork, decoded: Decoded, message, report: PlanReport) -> None:
    evidence = desk_signed(uow, message, report)
    if uow.get(PLANS.name, report.plan_id):
        raise Rejection(f"payload.plan_id: plan {report.plan_id} was already recorded")
    plan = PlanRecorded(**report.model_dump(), signed_input=evidence)
    uow.append(stream_of(report), [NewEvent(plan)], 0, **ids_of(decoded))
    uow.put(
        PLANS,
        {
            "plan_id": plan.plan_id,
            "county": plan.county,
            "township": plan.township,
            "product": plan.product,
            "area_mu": plan.area_mu,
            "target_household_income_fen": plan.target_household_income_fen,
        },
        view=False,
    )
    uow.set(PLANS.name, plan.plan_id, True)


def confirm_delivery(uow: BatchUnitOfWork, decoded: Decoded, message, report: DeliveryConfirmation) -> None:
    evidence = desk_signed(uow, message, report)
    row, fill = fill_of(uow, report.lot_id, report.outlet_id)
    delivered = domain.confirm_delivery(report, fill).model_copy(update={"signed_input": evidence})
    uow.append(stream_of(report), [NewEvent(delivered)], None, **ids_of(decoded))
    changed = {**row, "delivered": row["delivered"] + report.quantity}  # type: ignore[dict-item]
    uow.set(FILL, (report.lot_id, report.outlet_id), changed)
    uow.patch(FILL_ROWS, changed["fill_id"], {"delivered": changed["delivered"]})


def make_payment(uow: BatchUnitOfWork, decoded: Decoded, message, report: PaymentReport) -> None:
    evidence = desk_signed(uow, message, report)
    row, fill = fill_of(uow, report.lot_id, report.outlet_id)
    contributions: dict[str, Decimal] = {}
    if fill is not None:
        raw = uow.get(LOTS.name, report.lot_id)
        if raw is None:
            raise LotNotYetKnown(report.lot_id)
        contributions = {household: Decimal(quantity) for household, quantity in raw.items()}
    payment = domain.make_payment(report, fill, contributions).model_copy(update={"signed_input": evidence})
    uow.append(stream_of(report), [NewEvent(payment)], None, **ids_of(decoded))
    changed = {**row, "paid_fen": row["paid_fen"] + report.amount_fen}  # type: ignore[dict-item]
    uow.set(FILL, (report.lot_id, report.outlet_id), changed)
    uow.patch(FILL_ROWS, changed["fill_id"], {"paid_fen": changed["paid_fen"]})
    for household, fen in payment.household_income_fen.items():
        uow.add(INCOMES, {"household_id": household, "product": payment.product, "paid_fen": fen})


INPUT_HANDLERS = {
    SettlementDeskRegistration: register_desk,
    PlanReport: record_plan,
    DeliveryConfirmation: confirm_delivery,
    PaymentReport: make_payment,
    **key_handlers(SETTLEMENT_DESK),
}


handle_input = input_handler(SERVICE, INPUT_HANDLERS)
"""Desk registrations, and the deliveries, payments and plans the desks sign."""


def keep_households(uow: BatchUnitOfWork, envelope, event: CooperativeRegistered) -> None:
    for h in event.households:
        uow.insert(
            HOUSEHOLDS,
            {
                "household_id": h.household_id,
                "cooperative_id": event.cooperative_id,
                "village": event.village,
                "township": event.township,
                "county": event.county,
                "registered_poor": h.registered_poor,
            },
        )


def keep_lot(uow: BatchUnitOfWork, envelope, event: HarvestRecorded) -> None:
    contributions = {c.household_id: str(c.quantity) for c in event.contributions}
    uow.insert(
        LOTS,
        {
            "lot_id": event.lot_id,
            "cooperative_id": event.cooperative_id,
            "product": event.product,
            "contributions": json.dumps(contributions),
        },
    )


def keep_planting(uow: BatchUnitOfWork, envelope, event: PlantingRecorded) -> None:
    uow.insert(
        PLANTINGS,
        {
            "planting_id": event.planting_id,
            "cooperative_id": event.cooperative_id,
            "county": event.county,
            "township": event.township,
            "product": event.product,
            "area_mu": event.area_mu,
        },
    )


def keep_fill(uow: BatchUnitOfWork, envelope, event: FillMade) -> None:
    uow.insert(
        NEW_FILLS,
        {
            "fill_id": event.fill_id,
            "lot_id": event.lot_id,
            "outlet_id": event.outlet_id,
            "outlet_kind": event.outlet_kind,
            "buyer_id": event.buyer_id,
            "product": event.product,
            "cooperative_id": event.cooperative_id,
            "quantity": event.quantity,
            "unit_price_fen": event.unit_price_fen,
            "price_basis": event.price_basis,
            "revenue_fen": event.revenue_fen,
            "household_income_fen": json.dumps(event.household_income_fen),
        },
    )
    send_receipt(
        uow,
        Receipt(
            correlation_id=envelope.correlation_id,
            message_id=str(envelope.event_id),
            service=SERVICE,
            status="fill_recorded",
            fill_ids=(event.fill_id,),
        ),
    )


EVENT_HANDLERS = {
    CooperativeRegistered: keep_households,
    HarvestRecorded: keep_lot,
    PlantingRecorded: keep_planting,
    FillMade: keep_fill,
}


def handle_event(uow: BatchUnitOfWork, decoded: Decoded) -> None:
    """Keep what settlement needs from other services: households, lots, plantings, fills."""
    envelope, event = decoded.item
    handler = EVENT_HANDLERS.get(type(event))
    if handler is not None:
        handler(uow, envelope, event)


INPUTS = Consumer(SERVICE, decode_input, handle_input, load_inputs, rejected_receipt(SERVICE))
EVENTS = Consumer(SERVICE, decode_event, handle_event)


@runtime.subscriber(SETTLEMENT_INPUT, group_id="farmlink.settlement.input")
async def on_settlement_input(body: list[bytes], message: KafkaMessage) -> None:
    await consume_batch(require_store(runtime), INPUTS, deliveries_of(message))


@runtime.subscriber(COOPERATIVE_EVENTS, FILLS, group_id="farmlink.settlement.events")
async def on_event(body: list[bytes], message: KafkaMessage) -> None:
    await consume_batch(require_store(runtime), EVENTS, deliveries_of(message))
