"""The buyer's rules: orders, cancellations and floor commitments."""

from dataclasses import dataclass

from contracts.buyer import CommitmentMade, OrderCancelled, OrderPlaced
from contracts.inputs import CommitmentOffer, OrderCancellationRequest, OrderPlacement
from events.consumer import Rejection


@dataclass(frozen=True)
class KnownOrder:
    """An order as the buyer service remembers it."""

    order_id: str
    buyer_id: str
    product: str
    cancelled: bool


def place_order(placement: OrderPlacement, already_placed: bool) -> OrderPlaced:
    """A new order (the model already checked quantity, price and window)."""
    if already_placed:
        raise Rejection(f"payload.order_id: order {placement.order_id} was already placed")
    return OrderPlaced(**placement.model_dump())


def cancel_order(request: OrderCancellationRequest, order: KnownOrder | None) -> OrderCancelled:
    """Withdraw the unfilled rest of a known, open order."""
    if order is None:
        raise Rejection(f"payload.order_id: unknown order {request.order_id}")
    if order.cancelled:
        raise Rejection(f"payload.order_id: order {request.order_id} is already cancelled")
    return OrderCancelled(order_id=order.order_id, buyer_id=order.buyer_id, product=order.product)


def make_commitment(offer: CommitmentOffer, already_made: bool) -> CommitmentMade:
    """A guaranteed-floor purchase (floor > 0, window ordered, caps positive: checked by the model)."""
    if already_made:
        raise Rejection(f"payload.commitment_id: commitment {offer.commitment_id} was already made")
    return CommitmentMade(**offer.model_dump())
