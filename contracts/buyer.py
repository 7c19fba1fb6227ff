"""Events the buyer service records."""

from typing import ClassVar

from contracts.catalogue import Product
from contracts.model import Contract
from contracts.signing import PublicKey, SignedInput
from contracts.types import Grade, Identifier, IsoDate, Name, PositiveFen, Quantity


class BuyerRegistered(Contract):
    """A buyer joined farmlink with the public key it signs its orders and commitments with."""

    event_type: ClassVar[str] = "BuyerRegistered"
    schema_version: ClassVar[int] = 1

    buyer_id: Identifier
    name: Name
    public_key: PublicKey
    signed_input: SignedInput | None = None


class OrderPlaced(Contract):
    """A buyer wants to buy a product at a limit price in a window, from some regions."""

    event_type: ClassVar[str] = "OrderPlaced"
    schema_version: ClassVar[int] = 1

    order_id: Identifier
    buyer_id: Identifier
    product: Product
    min_grade: Grade
    quantity: Quantity
    limit_price_fen: PositiveFen
    deliver_from: IsoDate
    deliver_to: IsoDate
    regions: tuple[Name, ...]
    signed_input: SignedInput | None = None


class OrderCancelled(Contract):
    """A buyer withdrew the unfilled rest of an order; its fills stand."""

    event_type: ClassVar[str] = "OrderCancelled"
    schema_version: ClassVar[int] = 1

    order_id: Identifier
    buyer_id: Identifier
    product: Product
    signed_input: SignedInput | None = None


class CommitmentMade(Contract):
    """A guaranteed-floor purchase: at max(market, floor), from eligible cooperatives, in a window."""

    event_type: ClassVar[str] = "CommitmentMade"
    schema_version: ClassVar[int] = 1

    commitment_id: Identifier
    buyer_id: Identifier
    product: Product
    min_grade: Grade
    floor_price_fen: PositiveFen
    reference_market: Name
    valid_from: IsoDate
    valid_to: IsoDate
    eligible_counties: tuple[Name, ...]
    eligible_cooperatives: tuple[Identifier, ...]
    cap_quantity: Quantity | None
    max_quantity_per_mu: Quantity | None
    signed_input: SignedInput | None = None
