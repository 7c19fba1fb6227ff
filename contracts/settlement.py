"""Events the settlement service records: plans, deliveries and payments split to households.

v2 of PlanRecorded, DeliveryConfirmed and PaymentMade added `desk_id` (the settlement desk the
input named; None: the default desk, contracts/parties.py) and `signed_input` (the desk's signed
input); v1 events were recorded from unsigned inputs and read as v2 with both None.
"""

from decimal import Decimal
from typing import ClassVar

from contracts.catalogue import Product
from contracts.model import Contract
from contracts.signing import PublicKey, SignedInput
from contracts.types import Area, Fen, Identifier, Name


class SettlementDeskRegistered(Contract):
    """A settlement desk joined farmlink with the public key it signs plans, deliveries and payments with."""

    event_type: ClassVar[str] = "SettlementDeskRegistered"
    schema_version: ClassVar[int] = 1

    desk_id: Identifier
    name: Name
    public_key: PublicKey
    signed_input: SignedInput | None = None


class PlanRecorded(Contract):
    """An industry plan for a township: area and target household income."""

    event_type: ClassVar[str] = "PlanRecorded"
    schema_version: ClassVar[int] = 2

    plan_id: Identifier
    county: Name
    township: Name
    product: Product
    area_mu: Area
    target_household_income_fen: Fen
    desk_id: Identifier | None = None
    signed_input: SignedInput | None = None


class DeliveryConfirmed(Contract):
    """A buyer confirmed the goods of a fill were handed over."""

    event_type: ClassVar[str] = "DeliveryConfirmed"
    schema_version: ClassVar[int] = 2

    lot_id: Identifier
    outlet_id: Identifier
    buyer_id: Identifier
    product: Product
    quantity: Decimal
    desk_id: Identifier | None = None
    signed_input: SignedInput | None = None


class PaymentMade(Contract):
    """A buyer paid for a fill; the amount is split to the lot's households by contribution."""

    event_type: ClassVar[str] = "PaymentMade"
    schema_version: ClassVar[int] = 2

    lot_id: Identifier
    outlet_id: Identifier
    buyer_id: Identifier
    product: Product
    cooperative_id: Identifier
    amount_fen: int
    household_income_fen: dict[str, int]
    desk_id: Identifier | None = None
    signed_input: SignedInput | None = None
