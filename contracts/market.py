"""Events the market-price service records."""

from typing import ClassVar

from contracts.catalogue import Product
from contracts.model import Contract
from contracts.signing import PublicKey, SignedInput
from contracts.types import Grade, Name, PositiveFen, IsoDate


class PriceFeedRegistered(Contract):
    """A market's price feed joined farmlink with the public key it signs its prices with."""

    event_type: ClassVar[str] = "PriceFeedRegistered"
    schema_version: ClassVar[int] = 1

    market: Name
    name: Name
    public_key: PublicKey
    signed_input: SignedInput | None = None


class MarketPriceObserved(Contract):
    """A reference price for a product and grade, seen at a named market on a date, as the market's
    registered price feed signed it. v2 added `signed_input` (v1: prices were not signed)."""

    event_type: ClassVar[str] = "MarketPriceObserved"
    schema_version: ClassVar[int] = 2

    product: Product
    grade: Grade
    market: Name
    price_fen: PositiveFen
    observed_on: IsoDate
    signed_input: SignedInput | None = None
