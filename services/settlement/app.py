"""The settlement service app: records deliveries, payments and plans; keeps the income ledger."""

import json
from decimal import Decimal
from pathlib import Path

from faststream.kafka import KafkaMessage

from contracts.cooperative import CooperativeRegistered, HarvestRecorded, PlantingRecorded
from contracts.inputs import DeliveryConfirmation, PaymentReport, PlanReport, Receipt
from contracts.matching import FillMade
from contracts.settlement import PlanRecorded
from contracts.topics import COOPERATIVE_EVENTS, FILLS, SETTLEMENT_INPUT
from events.codec import decode_event, decode_input
from events.consumer import Decoded, Rejection, accepted, consume_batch, rejected_receipt, send_receipt
from events.runtime import ServiceRuntime, deliveries_of, require_store
from events.store import NewEvent, UnitOfWork
from services.settlement import domain

SERVICE = "settlement"
runtime = ServiceRuntime(SERVICE, Path(__file__).parent / "sql")
app = runtime.app


class LotNotYetKnown(Exception):
    """A payment for a lot whose harvest event has not arrived yet: retried, not rejected."""


async def load_fill(uow: UnitOfWork, lot_id: str, outlet_id: str) -> domain.FillAccount | None:
    row = await uow.conn.fetchrow(
        """SELECT lot_id, outlet_id, buyer_id, product, cooperative_id, quantity, revenue_fen, delivered, paid_fen
           FROM fills WHERE lot_id = $1 AND outlet_id = $2 FOR UPDATE""",
        lot_id,
        outlet_id,
    )
    return domain.FillAccount(**dict(row)) if row else None


async def load_contributions(uow: UnitOfWork, lot_id: str) -> dict[str, Decimal]:
    raw = await uow.conn.fetchval("SELECT contributions FROM lots WHERE lot_id = $1", lot_id)
    if raw is None:
        raise LotNotYetKnown(lot_id)
    return {household: Decimal(quantity) for household, quantity in json.loads(raw).items()}


async def handle_input(uow: UnitOfWork, decoded: Decoded) -> None:
    """Deliveries, payments and plans from the settlement desk."""
    message, report = decoded.item
    ids = dict(correlation_id=decoded.correlation_id, causation_id=decoded.message_id)
    if isinstance(report, PlanReport):
        stream = f"plan-{report.plan_id}"
        if await uow.conn.fetchval("SELECT EXISTS (SELECT 1 FROM plans WHERE plan_id = $1)", report.plan_id):
            raise Rejection(f"payload.plan_id: plan {report.plan_id} was already recorded")
        plan = PlanRecorded(**report.model_dump())
        await uow.append(stream, [NewEvent(plan)], 0, **ids)
        await uow.conn.execute(
            "INSERT INTO plans VALUES ($1, $2, $3, $4, $5, $6)",
            plan.plan_id, plan.county, plan.township, plan.product, plan.area_mu, plan.target_household_income_fen,
        )
    elif isinstance(report, DeliveryConfirmation):
        delivered = domain.confirm_delivery(report, await load_fill(uow, report.lot_id, report.outlet_id))
        await uow.append(f"settlement-{report.lot_id}-{report.outlet_id}", [NewEvent(delivered)], None, **ids)
        await uow.conn.execute(
            "UPDATE fills SET delivered = delivered + $3 WHERE lot_id = $1 AND outlet_id = $2",
            report.lot_id, report.outlet_id, report.quantity,
        )
    elif isinstance(report, PaymentReport):
        fill = await load_fill(uow, report.lot_id, report.outlet_id)
        contributions = await load_contributions(uow, report.lot_id) if fill else {}
        payment = domain.make_payment(report, fill, contributions)
        await uow.append(f"settlement-{report.lot_id}-{report.outlet_id}", [NewEvent(payment)], None, **ids)
        await uow.conn.execute(
            "UPDATE fills SET paid_fen = paid_fen + $3 WHERE lot_id = $1 AND outlet_id = $2",
            report.lot_id, report.outlet_id, report.amount_fen,
        )
        await uow.conn.executemany(
            """INSERT INTO incomes VALUES ($1, $2, $3)
               ON CONFLICT (household_id, product) DO UPDATE SET paid_fen = incomes.paid_fen + EXCLUDED.paid_fen""",
            [(household, payment.product, fen) for household, fen in payment.household_income_fen.items()],
        )
    else:
        raise Rejection(f"type: {message.type} is not a settlement input")
    await accepted(uow, decoded, SERVICE)


async def handle_event(uow: UnitOfWork, decoded: Decoded) -> None:
    """Keep what settlement needs from other services: households, lots, plantings, fills."""
    envelope, event = decoded.item
    if isinstance(event, CooperativeRegistered):
        await uow.conn.executemany(
            "INSERT INTO households VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING",
            [(h.household_id, event.cooperative_id, event.village, event.township, event.county, h.registered_poor) for h in event.households],
        )
    elif isinstance(event, HarvestRecorded):
        contributions = {c.household_id: str(c.quantity) for c in event.contributions}
        await uow.conn.execute(
            "INSERT INTO lots VALUES ($1, $2, $3, $4::jsonb) ON CONFLICT DO NOTHING",
            event.lot_id, event.cooperative_id, event.product, json.dumps(contributions),
        )
    elif isinstance(event, PlantingRecorded):
        await uow.conn.execute(
            "INSERT INTO plantings VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING",
            event.planting_id, event.cooperative_id, event.county, event.township, event.product, event.area_mu,
        )
    elif isinstance(event, FillMade):
        await uow.conn.execute(
            """INSERT INTO fills (fill_id, lot_id, outlet_id, outlet_kind, buyer_id, product, cooperative_id, quantity,
                                  unit_price_fen, price_basis, revenue_fen, household_income_fen)
               VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12::jsonb) ON CONFLICT DO NOTHING""",
            event.fill_id, event.lot_id, event.outlet_id, event.outlet_kind, event.buyer_id, event.product,
            event.cooperative_id, event.quantity, event.unit_price_fen, event.price_basis, event.revenue_fen,
            json.dumps(event.household_income_fen),
        )
        await send_receipt(
            uow,
            Receipt(
                correlation_id=envelope.correlation_id,
                message_id=str(envelope.event_id),
                service=SERVICE,
                status="fill_recorded",
                fill_ids=(event.fill_id,),
            ),
        )


@runtime.subscriber(SETTLEMENT_INPUT, group_id="farmlink.settlement.input")
async def on_settlement_input(body: list[bytes], message: KafkaMessage) -> None:
    await consume_batch(require_store(runtime), SERVICE, deliveries_of(message), decode_input, handle_input, rejected_receipt(SERVICE))


@runtime.subscriber(COOPERATIVE_EVENTS, FILLS, group_id="farmlink.settlement.events")
async def on_event(body: list[bytes], message: KafkaMessage) -> None:
    await consume_batch(require_store(runtime), SERVICE, deliveries_of(message), decode_event, handle_event)
