"""The buyer service app: consumes the buyer input topic, records order and commitment events."""

from pathlib import Path

from faststream.kafka import KafkaMessage

from contracts.inputs import BuyerRegistration, CommitmentOffer, OrderCancellationRequest, OrderPlacement
from contracts.topics import BUYER_INPUT
from events.codec import decode_input
from events.consumer import Decoded, Rejection, accepted, consume_batch, rejected_receipt
from events.runtime import ServiceRuntime, deliveries_of, require_store
from events.store import NewEvent, UnitOfWork
from services.buyer import domain

SERVICE = "buyer"
runtime = ServiceRuntime(SERVICE, Path(__file__).parent / "sql")
app = runtime.app


async def load_order(uow: UnitOfWork, order_id: str) -> domain.KnownOrder | None:
    row = await uow.conn.fetchrow("SELECT order_id, buyer_id, product, cancelled FROM orders WHERE order_id = $1", order_id)
    return domain.KnownOrder(**dict(row)) if row else None


async def registered_key(uow: UnitOfWork, buyer_id: str) -> str | None:
    return await uow.conn.fetchval("SELECT public_key FROM buyers WHERE buyer_id = $1", buyer_id)


async def stream_exists(uow: UnitOfWork, stream_id: str) -> bool:
    return await uow.conn.fetchval("SELECT EXISTS (SELECT 1 FROM events WHERE stream_id = $1)", stream_id)


async def handle(uow: UnitOfWork, decoded: Decoded) -> None:
    """Decode, load, decide, append; then tell the producer."""
    message, request = decoded.item
    ids = dict(correlation_id=decoded.correlation_id, causation_id=decoded.message_id)
    if isinstance(request, BuyerRegistration):
        evidence = domain.authenticate_registration(message, request)
        already = await registered_key(uow, request.buyer_id) is not None
        registered = domain.register_buyer(request, already).model_copy(update={"signed_input": evidence})
        await uow.append(f"buyer-{request.buyer_id}", [NewEvent(registered)], 0, **ids)
        await uow.conn.execute(
            "INSERT INTO buyers (buyer_id, name, public_key) VALUES ($1, $2, $3)", registered.buyer_id, registered.name, registered.public_key
        )
    elif isinstance(request, OrderPlacement):
        evidence = domain.authenticate(message, request.buyer_id, await registered_key(uow, request.buyer_id))
        stream = f"order-{request.order_id}"
        placed = domain.place_order(request, await stream_exists(uow, stream), True).model_copy(update={"signed_input": evidence})
        await uow.append(stream, [NewEvent(placed)], 0, **ids)
        await uow.conn.execute(
            "INSERT INTO orders (order_id, buyer_id, product) VALUES ($1, $2, $3)", placed.order_id, placed.buyer_id, placed.product
        )
    elif isinstance(request, OrderCancellationRequest):
        evidence = domain.authenticate(message, request.buyer_id, await registered_key(uow, request.buyer_id))
        stream = f"order-{request.order_id}"
        cancelled = domain.cancel_order(request, await load_order(uow, request.order_id)).model_copy(update={"signed_input": evidence})
        await uow.append(stream, [NewEvent(cancelled)], 1, **ids)
        await uow.conn.execute("UPDATE orders SET cancelled = true WHERE order_id = $1", cancelled.order_id)
    elif isinstance(request, CommitmentOffer):
        evidence = domain.authenticate(message, request.buyer_id, await registered_key(uow, request.buyer_id))
        stream = f"commitment-{request.commitment_id}"
        made = domain.make_commitment(request, await stream_exists(uow, stream), True).model_copy(update={"signed_input": evidence})
        await uow.append(stream, [NewEvent(made)], 0, **ids)
    else:
        raise Rejection(f"type: {message.type} is not a buyer input")
    await accepted(uow, decoded, SERVICE)


@runtime.subscriber(BUYER_INPUT)
async def on_buyer_input(body: list[bytes], message: KafkaMessage) -> None:
    await consume_batch(require_store(runtime), SERVICE, deliveries_of(message), decode_input, handle, rejected_receipt(SERVICE))
