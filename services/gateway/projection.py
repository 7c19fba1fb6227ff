"""The gateway's projection: what it serves, built by consuming the public topics.

One consumer (group `farmlink.gateway`) reads registrations, plantings and lots (cooperative events),
registrations and commitments (buyer events), fills, offers, plans and payments (settlement events, for
the pairing office's page), receipts and dead letters, and
writes its own schema `gateway` through the batch unit of work (events/unit.py): each record
is marked in the inbox in the same transaction as its rows, so a redelivered batch has no
second effect and the projection survives restarts. Handlers are pure: record -> staged rows.
"""

import json
from datetime import datetime
from decimal import Decimal

import orjson

from contracts.buyer import BuyerRegistered, CommitmentMade
from contracts.cooperative import CooperativeRegistered, HarvestRecorded, PlantingRecorded
from contracts.inputs import Receipt
from contracts.matching import FillMade, OfferClosed, OfferOpened, OfferShrunk
from contracts.parties import (
    BuyerKeyRevoked,
    BuyerKeyRotated,
    CooperativeKeyRevoked,
    CooperativeKeyRotated,
    KeyRevoked,
    KeyRotated,
)
from contracts.settlement import PaymentMade, PlanRecorded
from contracts.pairing import PairingRegistered, ProjectMilestoneReached, ProjectRegistered, SupportDelivered
from contracts.topics import (
    BUYER_EVENTS,
    COOPERATIVE_EVENTS,
    DEAD_LETTER,
    FILLS,
    OFFERS,
    PAIRING_EVENTS,
    RECEIPTS,
    SETTLEMENT_EVENTS,
)
from events.codec import decode_event
from events.consumer import Decoded, Delivery
from events.handling import Consumer
from events.unit import BatchUnitOfWork
from services.gateway.tables import (
    COMMITMENTS,
    DEAD_LETTERS,
    FILL_ROWS,
    HOUSEHOLDS,
    INCOMES,
    LOTS,
    MILESTONES,
    OFFER_ROWS,
    PAIRINGS,
    PARTIES,
    PLANS,
    PLANTINGS,
    PROJECTS,
    RECEIPT_ROWS,
    SUPPORT,
)

CONSUMER = "gateway"
TOPICS = (COOPERATIVE_EVENTS, BUYER_EVENTS, FILLS, OFFERS, SETTLEMENT_EVENTS, PAIRING_EVENTS, RECEIPTS, DEAD_LETTER)
"""What the gateway subscribes to (events/access.py grants it exactly these, and the relay's checkpoints)."""


def decode(delivery: Delivery) -> Decoded:
    """A record of any subscribed topic: events by their envelope; receipts and dead letters by where they sit
    (each record is one receipt or one dead letter, so its place is its identity for the inbox)."""
    if delivery.topic == RECEIPTS:
        receipt = Receipt.model_validate_json(delivery.value)
        return Decoded(receipt, message_id=f"receipt:{delivery.delivery_id}", correlation_id=receipt.correlation_id)
    if delivery.topic == DEAD_LETTER:
        consumer = next((v.decode("utf-8", "replace") for n, v in delivery.headers if n == "dlq.consumer" and v), "unknown")
        return Decoded(("dead_letter", consumer), message_id=f"dead-letter:{delivery.delivery_id}", correlation_id="")
    return decode_event(delivery)


def party(kind: str, party_id: str) -> str:
    return f"{kind}:{party_id}"


def keep_cooperative(uow: BatchUnitOfWork, envelope, event: CooperativeRegistered) -> None:
    if event.public_key is not None:
        uow.insert(
            PARTIES,
            {
                "party": party("cooperative", event.cooperative_id),
                "kind": "cooperative",
                "party_id": event.cooperative_id,
                "name": event.name,
                "public_key": event.public_key,
                "revoked": None,
            },
        )
    for h in event.households:
        uow.insert(
            HOUSEHOLDS,
            {
                "household_id": h.household_id,
                "cooperative_id": event.cooperative_id,
                "village": event.village,
                "registered_poor": h.registered_poor,
                "county": event.county,
                "township": event.township,
            },
        )


def keep_buyer(uow: BatchUnitOfWork, envelope, event: BuyerRegistered) -> None:
    uow.insert(
        PARTIES,
        {
            "party": party("buyer", event.buyer_id),
            "kind": "buyer",
            "party_id": event.buyer_id,
            "name": event.name,
            "public_key": event.public_key,
            "revoked": None,
        },
    )


def rotate_key(uow: BatchUnitOfWork, envelope, event: KeyRotated) -> None:
    """A cooperative's or buyer's new key: requests and inputs are checked against it from now on."""
    kind = "cooperative" if isinstance(event, CooperativeKeyRotated) else "buyer"
    uow.patch(PARTIES, party(kind, event.party_id), {"public_key": event.public_key})


def revoke_key(uow: BatchUnitOfWork, envelope, event: KeyRevoked) -> None:
    """A cooperative or buyer revoked its key: nothing it signs is accepted any more."""
    kind = "cooperative" if isinstance(event, CooperativeKeyRevoked) else "buyer"
    uow.patch(PARTIES, party(kind, event.party_id), {"revoked": event.reason})


def keep_lot(uow: BatchUnitOfWork, envelope, event: HarvestRecorded) -> None:
    contributions = [
        {"household_id": c.household_id, "quantity": plain(c.quantity), "registered_poor": c.registered_poor}
        for c in event.contributions
    ]
    uow.insert(
        LOTS,
        {
            "lot_id": event.lot_id,
            "cooperative_id": event.cooperative_id,
            "product": event.product,
            "grade": event.grade,
            "quantity": event.quantity,
            "available_from": event.available_from,
            "expires_on": event.expires_on,
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


def keep_plan(uow: BatchUnitOfWork, envelope, event: PlanRecorded) -> None:
    uow.put(
        PLANS,
        {
            "plan_id": event.plan_id,
            "county": event.county,
            "township": event.township,
            "product": event.product,
            "area_mu": event.area_mu,
            "target_household_income_fen": event.target_household_income_fen,
        },
        view=False,
    )


def keep_payment(uow: BatchUnitOfWork, envelope, event: PaymentMade) -> None:
    for household, fen in event.household_income_fen.items():
        uow.add(INCOMES, {"household_id": household, "product": event.product, "paid_fen": fen})


def keep_commitment(uow: BatchUnitOfWork, envelope, event: CommitmentMade) -> None:
    terms = event.model_dump(mode="json", exclude={"signed_input"})
    uow.insert(
        COMMITMENTS,
        {"commitment_id": event.commitment_id, "buyer_id": event.buyer_id, "product": event.product, "terms": json.dumps(terms)},
    )


def keep_fill(uow: BatchUnitOfWork, envelope, event: FillMade) -> None:
    uow.insert(
        FILL_ROWS,
        {
            "fill_id": event.fill_id,
            "buyer_id": event.buyer_id,
            "cooperative_id": event.cooperative_id,
            "lot_id": event.lot_id,
            "product": event.product,
            "grade": event.grade,
            "outlet_kind": event.outlet_kind,
            "outlet_id": event.outlet_id,
            "quantity": event.quantity,
            "unit_price_fen": event.unit_price_fen,
            "price_basis": event.price_basis,
            "revenue_fen": event.revenue_fen,
            "household_income_fen": json.dumps(event.household_income_fen),
            "floor_price_fen": event.floor_price_fen,
            "market_price_fen": event.market_price_fen,
            "price_as_of": event.price_as_of,
            "position": event.position,
            "committed_at": envelope.occurred_at,
        },
    )


def open_offer(uow: BatchUnitOfWork, envelope, event: OfferOpened) -> None:
    uow.put(
        OFFER_ROWS,
        {
            "lot_id": event.lot_id,
            "product": event.product,
            "grade": event.grade,
            "cooperative_id": event.cooperative_id,
            "county": event.county,
            "township": event.township,
            "quantity_left": event.quantity_left,
            "available_from": event.available_from,
            "expires_on": event.expires_on,
            "open": True,
        },
        view=False,
    )


def shrink_offer(uow: BatchUnitOfWork, envelope, event: OfferShrunk) -> None:
    uow.patch(OFFER_ROWS, event.lot_id, {"quantity_left": event.quantity_left})


def close_offer(uow: BatchUnitOfWork, envelope, event: OfferClosed) -> None:
    uow.patch(OFFER_ROWS, event.lot_id, {"open": False})


def keep_pairing(uow: BatchUnitOfWork, envelope, event: PairingRegistered) -> None:
    uow.insert(PAIRINGS, {name: getattr(event, name) for name in PAIRINGS.column_names})


def keep_support(uow: BatchUnitOfWork, envelope, event: SupportDelivered) -> None:
    uow.insert(SUPPORT, {name: getattr(event, name) for name in SUPPORT.column_names})


def keep_project(uow: BatchUnitOfWork, envelope, event: ProjectRegistered) -> None:
    uow.insert(PROJECTS, {name: getattr(event, name) for name in PROJECTS.column_names})
    for milestone in event.milestones:
        uow.insert(
            MILESTONES,
            {
                "project_id": event.project_id,
                "milestone_id": milestone.milestone_id,
                "due_on": milestone.due_on,
                "reached_on": None,
            },
        )


def reach_milestone(uow: BatchUnitOfWork, envelope, event: ProjectMilestoneReached) -> None:
    uow.patch(MILESTONES, (event.project_id, event.milestone_id), {"reached_on": event.reached_on})


EVENT_HANDLERS = {
    CooperativeRegistered: keep_cooperative,
    BuyerRegistered: keep_buyer,
    CooperativeKeyRotated: rotate_key,
    BuyerKeyRotated: rotate_key,
    CooperativeKeyRevoked: revoke_key,
    BuyerKeyRevoked: revoke_key,
    HarvestRecorded: keep_lot,
    PlantingRecorded: keep_planting,
    PlanRecorded: keep_plan,
    PaymentMade: keep_payment,
    CommitmentMade: keep_commitment,
    FillMade: keep_fill,
    OfferOpened: open_offer,
    OfferShrunk: shrink_offer,
    OfferClosed: close_offer,
    PairingRegistered: keep_pairing,
    SupportDelivered: keep_support,
    ProjectRegistered: keep_project,
    ProjectMilestoneReached: reach_milestone,
}
"""Every event the gateway keeps; others on the same topics (orders, cancellations, deliveries) pass by."""


def keep_receipt(uow: BatchUnitOfWork, receipt: Receipt) -> None:
    uow.put(
        RECEIPT_ROWS,
        {
            "message_id": receipt.message_id,
            "service": receipt.service,
            "status": receipt.status,
            "receipt": receipt.model_dump_json(),
        },
        view=False,
    )


def handle(uow: BatchUnitOfWork, decoded: Decoded) -> None:
    item = decoded.item
    if isinstance(item, Receipt):
        keep_receipt(uow, item)
    elif isinstance(item, tuple) and item[0] == "dead_letter":
        uow.add(DEAD_LETTERS, {"consumer": item[1], "count": 1})
    else:
        envelope, event = item
        handler = EVENT_HANDLERS.get(type(event))
        if handler is not None:
            handler(uow, envelope, event)


PROJECTION = Consumer(CONSUMER, decode, handle)


def offer_change(decoded: Decoded) -> dict | None:
    """What an offers SSE stream sends for a committed record: the offer event, or None for any other record."""
    item = decoded.item
    if isinstance(item, tuple) and len(item) == 2 and isinstance(item[1], OfferOpened | OfferShrunk | OfferClosed):
        envelope, event = item
        return {"event_type": envelope.event_type, "event_id": str(envelope.event_id), **event.model_dump(mode="json")}
    return None


def plain(number: Decimal) -> str:
    """A decimal as people write it: no exponent, no trailing zeros (1E+4 and 10000.000 are both "10000")."""
    text = format(number.normalize(), "f")
    return text


def fill_row_json(row) -> dict:
    """A fill as the API shows it: decimals as strings, dates ISO, money integer fen."""
    out = {}
    for name, value in dict(row).items():
        if name == "household_income_fen" and isinstance(value, str):
            value = orjson.loads(value)
        elif isinstance(value, datetime):
            value = value.isoformat()
        elif isinstance(value, Decimal):
            value = plain(value)
        elif value is not None and not isinstance(value, bool | int | str | dict | list):
            value = str(value)
        out[name] = value
    return out
