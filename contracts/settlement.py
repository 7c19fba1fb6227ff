"""Events the settlement service records: plans, deliveries and payments split to households."""

from decimal import Decimal
from typing import ClassVar

from contracts.catalogue import Product
from contracts.model import Contract
from contracts.types import Area, Fen, Identifier, Name


class PlanRecorded(Contract):
    """An industry plan for a township: area and target household income."""

    event_type: ClassVar[str] = "PlanRecorded"
    schema_version: ClassVar[int] = 1

    plan_id: Identifier
    county: Name
    township: Name
    product: Product
    area_mu: Area
    target_household_income_fen: Fen


class DeliveryConfirmed(Contract):
    """A buyer confirmed the goods of a fill were handed over."""

    event_type: ClassVar[str] = "DeliveryConfirmed"
    schema_version: ClassVar[int] = 1

    lot_id: Identifier
    outlet_id: Identifier
    buyer_id: Identifier
    product: Product
    quantity: Decimal


class PaymentMade(Contract):
    """A buyer paid for a fill; the amount is split to the lot's households by contribution."""

    event_type: ClassVar[str] = "PaymentMade"
    schema_version: ClassVar[int] = 1

    lot_id: Identifier
    outlet_id: Identifier
    buyer_id: Identifier
    product: Product
    cooperative_id: Identifier
    amount_fen: int
    household_income_fen: dict[str, int]
