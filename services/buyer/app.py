"""The buyer service app: consumes the buyer input topic, records order and commitment events.

Thin and batch-shaped (events/unit.py): `load` reads what a batch needs in three queries,
each handler decides one input from that view (services/buyer/domain.py has the rules), and
the batch is written once.
"""

from collections.abc import Sequence
from pathlib import Path

import asyncpg
from faststream.kafka import KafkaMessage

from contracts.inputs import BuyerRegistration, Commitment, OrderCancellationRequest, OrderPlacement
from contracts.parties import BUYER
from contracts.topics import BUYER_INPUT
from events.authentication import PartyKey, keep_key, key_handlers, key_of, key_streams, load_keys, producers_of
from events.codec import decode_input
from events.consumer import Decoded, ids_of, input_handler, rejected_receipt
from events.runtime import ServiceRuntime, deliveries_of, require_store
from events.store import NewEvent
from events.unit import BatchUnitOfWork, Table
from events.handling import Consumer, consume_batch
from services.buyer import domain

SERVICE = "buyer"
runtime = ServiceRuntime(SERVICE, Path(__file__).parent / "sql")
app = runtime.app

BUYERS = Table("buyers", ("buyer_id",), (("buyer_id", "text"), ("name", "text"), ("public_key", "text")))
ORDERS = Table(
    "orders", ("order_id",), (("order_id", "text"), ("buyer_id", "text"), ("product", "text"), ("cancelled", "boolean"))
)


def stream_of(request) -> str:
    """The stream an input appends to."""
    if isinstance(request, BuyerRegistration):
        return f"buyer-{request.buyer_id}"
    if isinstance(request, OrderPlacement | OrderCancellationRequest):
        return f"order-{request.order_id}"
    if isinstance(request, Commitment):
        return f"commitment-{request.commitment_id}"
    return ""


async def load(conn: asyncpg.Connection, uow: BatchUnitOfWork, items: Sequence[Decoded]) -> None:
    """Buyers, orders and stream heads the batch names, one query each."""
    requests = [item.item[1] for item in items]
    buyer_ids = list({r.buyer_id for r in requests if hasattr(r, "buyer_id")})
    order_ids = list({r.order_id for r in requests if isinstance(r, OrderCancellationRequest)})
    rows = await conn.fetch("SELECT buyer_id, name, public_key FROM buyers WHERE buyer_id = ANY($1::text[])", buyer_ids)
    uow.absent(BUYERS.name, buyer_ids)
    uow.load(BUYERS.name, {row["buyer_id"]: dict(row) for row in rows})
    if order_ids:
        rows = await conn.fetch(
            "SELECT order_id, buyer_id, product, cancelled FROM orders WHERE order_id = ANY($1::text[])", order_ids
        )
        uow.absent(ORDERS.name, order_ids)
        uow.load(ORDERS.name, {row["order_id"]: dict(row) for row in rows})
    await load_keys(conn, uow, producers_of(items))
    await uow.load_heads(conn, [*(s for s in map(stream_of, requests) if s), *key_streams(items)])


def registered_key(uow: BatchUnitOfWork, buyer_id: str) -> PartyKey | None:
    """The buyer's current key (rotations and revocation included)."""
    return key_of(uow, BUYER.producer(buyer_id))


def register_buyer(uow: BatchUnitOfWork, decoded: Decoded, message, request: BuyerRegistration) -> None:
    evidence = domain.authenticate_registration(message, request)
    registered = domain.register_buyer(request, uow.get(BUYERS.name, request.buyer_id) is not None)
    registered = registered.model_copy(update={"signed_input": evidence})
    uow.append(stream_of(request), [NewEvent(registered)], 0, **ids_of(decoded))
    uow.put(BUYERS, {"buyer_id": registered.buyer_id, "name": registered.name, "public_key": registered.public_key})
    keep_key(uow, BUYER.producer(registered.buyer_id), PartyKey(registered.public_key))


def place_order(uow: BatchUnitOfWork, decoded: Decoded, message, request: OrderPlacement) -> None:
    evidence = domain.authenticate(message, request.buyer_id, registered_key(uow, request.buyer_id))
    stream = stream_of(request)
    placed = domain.place_order(request, uow.stream_version(stream) > 0, True).model_copy(update={"signed_input": evidence})
    uow.append(stream, [NewEvent(placed)], 0, **ids_of(decoded))
    uow.put(ORDERS, {"order_id": placed.order_id, "buyer_id": placed.buyer_id, "product": placed.product, "cancelled": False})


def cancel_order(uow: BatchUnitOfWork, decoded: Decoded, message, request: OrderCancellationRequest) -> None:
    evidence = domain.authenticate(message, request.buyer_id, registered_key(uow, request.buyer_id))
    row = uow.get(ORDERS.name, request.order_id)
    known = domain.KnownOrder(**row) if row else None
    cancelled = domain.cancel_order(request, known).model_copy(update={"signed_input": evidence})
    uow.append(stream_of(request), [NewEvent(cancelled)], 1, **ids_of(decoded))
    uow.put(ORDERS, {**row, "cancelled": True})


def make_commitment(uow: BatchUnitOfWork, decoded: Decoded, message, request: Commitment) -> None:
    evidence = domain.authenticate(message, request.buyer_id, registered_key(uow, request.buyer_id))
    stream = stream_of(request)
    made = domain.make_commitment(request, uow.stream_version(stream) > 0, True).model_copy(update={"signed_input": evidence})
    uow.append(stream, [NewEvent(made)], 0, **ids_of(decoded))


HANDLERS = {
    BuyerRegistration: register_buyer,
    OrderPlacement: place_order,
    OrderCancellationRequest: cancel_order,
    Commitment: make_commitment,
    **key_handlers(BUYER),
}


handle = input_handler(SERVICE, HANDLERS)
"""Decide one input from the view; then tell the producer."""


CONSUMER = Consumer(SERVICE, decode_input, handle, load, rejected_receipt(SERVICE), skip_markers=True)


@runtime.subscriber(BUYER_INPUT)
async def on_buyer_input(body: list[bytes], message: KafkaMessage) -> None:
    await consume_batch(require_store(runtime), CONSUMER, deliveries_of(message))
