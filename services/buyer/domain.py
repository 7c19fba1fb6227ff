"""The buyer's rules: orders, cancellations and floor commitments."""

from dataclasses import dataclass

from contracts.buyer import BuyerRegistered, CommitmentMade, OrderCancelled, OrderPlaced
from contracts.inputs import BuyerRegistration, Commitment, InputMessage, OrderCancellationRequest, OrderPlacement
from contracts.signing import SignedInput
from events import authentication
from events.consumer import Rejection


@dataclass(frozen=True)
class KnownOrder:
    """An order as the buyer service remembers it."""

    order_id: str
    buyer_id: str
    product: str
    cancelled: bool


def producer_for(buyer_id: str) -> str:
    """The producer name a buyer's inputs carry."""
    return authentication.producer_for("buyer", buyer_id)


def authenticate(message: InputMessage, buyer_id: str, registered_key: authentication.PartyKey | str | None) -> SignedInput:
    """An input the buyer it names sent and signed with its registered key; the evidence to record."""
    return authentication.authenticate(
        message, "buyer", buyer_id, registered_key, unknown="; a buyer registers (buyer.registered) before it orders"
    )


def authenticate_registration(message: InputMessage, registration: BuyerRegistration) -> SignedInput:
    """A registration carries the buyer's public key and is signed with it (self-signed)."""
    return authentication.authenticate_registration(message, "buyer", registration.buyer_id, registration.public_key)


def register_buyer(registration: BuyerRegistration, already_registered: bool) -> BuyerRegistered:
    """A new buyer with the public key it signs with."""
    if registration.public_key is None:
        raise Rejection("payload.public_key: a buyer registers with the public key it signs its inputs with")
    if already_registered:
        raise Rejection(f"payload.buyer_id: buyer {registration.buyer_id} is already registered")
    return BuyerRegistered(**registration.model_dump())


def _known_buyer(buyer_id: str, buyer_known: bool) -> None:
    if not buyer_known:
        raise Rejection(f"payload.buyer_id: unknown buyer {buyer_id}; a buyer registers (buyer.registered) before it orders")


def place_order(placement: OrderPlacement, already_placed: bool, buyer_known: bool) -> OrderPlaced:
    """A new order of a registered buyer (the model already checked quantity, price and window)."""
    _known_buyer(placement.buyer_id, buyer_known)
    if already_placed:
        raise Rejection(f"payload.order_id: order {placement.order_id} was already placed")
    return OrderPlaced(**placement.model_dump())


def cancel_order(request: OrderCancellationRequest, order: KnownOrder | None) -> OrderCancelled:
    """Withdraw the unfilled rest of a known, open order of the buyer who asks."""
    if order is None:
        raise Rejection(f"payload.order_id: unknown order {request.order_id}")
    if order.buyer_id != request.buyer_id:
        raise Rejection(f"payload.buyer_id: order {request.order_id} belongs to buyer {order.buyer_id}, not {request.buyer_id}")
    if order.cancelled:
        raise Rejection(f"payload.order_id: order {request.order_id} is already cancelled")
    return OrderCancelled(order_id=order.order_id, buyer_id=order.buyer_id, product=order.product)


def make_commitment(commitment: Commitment, already_made: bool, buyer_known: bool) -> CommitmentMade:
    """A registered buyer's guaranteed-floor purchase (floor > 0, window ordered, caps positive: checked by the model)."""
    _known_buyer(commitment.buyer_id, buyer_known)
    if already_made:
        raise Rejection(f"payload.commitment_id: commitment {commitment.commitment_id} was already made")
    return CommitmentMade(**commitment.model_dump())
