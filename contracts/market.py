"""Events the market-price service records."""

from typing import ClassVar

from contracts.catalogue import Product
from contracts.model import Contract
from contracts.types import Grade, Name, PositiveFen, IsoDate


class MarketPriceObserved(Contract):
    """A reference price for a product and grade, seen at a named market on a date."""

    event_type: ClassVar[str] = "MarketPriceObserved"
    schema_version: ClassVar[int] = 1

    product: Product
    grade: Grade
    market: Name
    price_fen: PositiveFen
    observed_on: IsoDate
