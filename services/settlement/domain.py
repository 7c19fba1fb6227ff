"""Settlement rules: deliveries within a fill, payments within its revenue, split to households."""

from dataclasses import dataclass
from decimal import Decimal

from contracts.inputs import DeliveryConfirmation, PaymentReport
from contracts.settlement import DeliveryConfirmed, PaymentMade
from events.consumer import Rejection
from matcher.money import split_largest_remainder


@dataclass(frozen=True)
class FillAccount:
    """A fill and what has been delivered and paid against it so far."""

    lot_id: str
    outlet_id: str
    buyer_id: str
    product: str
    cooperative_id: str
    quantity: Decimal
    revenue_fen: int
    delivered: Decimal
    paid_fen: int


def _known(fill: FillAccount | None, lot_id: str, outlet_id: str) -> FillAccount:
    if fill is None:
        raise Rejection(f"payload.outlet_id: there is no fill of lot {lot_id} to outlet {outlet_id}")
    return fill


def confirm_delivery(confirmation: DeliveryConfirmation, fill: FillAccount | None) -> DeliveryConfirmed:
    """Goods handed over, never more than the fill's quantity in all."""
    known = _known(fill, confirmation.lot_id, confirmation.outlet_id)
    if known.delivered + confirmation.quantity > known.quantity:
        raise Rejection(
            f"payload.quantity: {confirmation.quantity} more would deliver {known.delivered + confirmation.quantity}, "
            f"over the fill's {known.quantity}"
        )
    return DeliveryConfirmed(
        lot_id=known.lot_id,
        outlet_id=known.outlet_id,
        buyer_id=known.buyer_id,
        product=known.product,
        quantity=confirmation.quantity,
        desk_id=confirmation.desk_id,
    )


def make_payment(report: PaymentReport, fill: FillAccount | None, contributions: dict[str, Decimal]) -> PaymentMade:
    """Money paid, never more than the fill's revenue in all, split to households by contribution."""
    known = _known(fill, report.lot_id, report.outlet_id)
    if known.paid_fen + report.amount_fen > known.revenue_fen:
        raise Rejection(
            f"payload.amount_fen: {report.amount_fen} more would pay {known.paid_fen + report.amount_fen} fen, "
            f"over the fill's revenue of {known.revenue_fen} fen"
        )
    shares = split_largest_remainder(report.amount_fen, sorted(contributions.items()))
    return PaymentMade(
        lot_id=known.lot_id,
        outlet_id=known.outlet_id,
        buyer_id=known.buyer_id,
        product=known.product,
        cooperative_id=known.cooperative_id,
        desk_id=report.desk_id,
        amount_fen=report.amount_fen,
        household_income_fen=dict(shares),
    )
