"""Reading the journal: each journaled input (the source event's type and payload, as JSON)
becomes the matcher fact it stands for. Pure and shared: the matching service runs it live,
the audit re-executes it over the recorded journal.
"""

from collections.abc import Callable, Mapping
from datetime import date
from decimal import Decimal
from typing import Any

from matcher.facts import Commitment, Contribution, Fact, Lot, MarketPrice, Order, OrderCancellation, Planting, RulesAdoption
from matcher.versions import ADOPTION_TYPE

JOURNALED_TYPES = frozenset(
    {"HarvestRecorded", "PlantingRecorded", "OrderPlaced", "OrderCancelled", "CommitmentMade", "MarketPriceObserved"}
)
"""The source event types that enter a product's journal (besides rules adoptions, ADOPTION_TYPE, which the
matching service itself journals: matcher/versions.py)."""


def _quantity(value: Any) -> Decimal | None:
    return None if value is None else Decimal(str(value))


def _day(value: str) -> date:
    return date.fromisoformat(value)


def _lot(p: Mapping[str, Any]) -> Lot:
    return Lot(
        lot_id=p["lot_id"],
        cooperative_id=p["cooperative_id"],
        county=p["county"],
        township=p["township"],
        product=p["product"],
        grade=p["grade"],
        quantity=Decimal(str(p["quantity"])),
        available_from=_day(p["available_from"]),
        expires_on=_day(p["expires_on"]),
        contributions=tuple(
            Contribution(c["household_id"], Decimal(str(c["quantity"])), c["registered_poor"]) for c in p["contributions"]
        ),
    )


def _order(p: Mapping[str, Any]) -> Order:
    return Order(
        order_id=p["order_id"],
        buyer_id=p["buyer_id"],
        product=p["product"],
        min_grade=p["min_grade"],
        quantity=Decimal(str(p["quantity"])),
        limit_price_fen=p["limit_price_fen"],
        deliver_from=_day(p["deliver_from"]),
        deliver_to=_day(p["deliver_to"]),
        regions=tuple(p["regions"]),
    )


def _commitment(p: Mapping[str, Any]) -> Commitment:
    return Commitment(
        commitment_id=p["commitment_id"],
        buyer_id=p["buyer_id"],
        product=p["product"],
        min_grade=p["min_grade"],
        floor_price_fen=p["floor_price_fen"],
        reference_market=p["reference_market"],
        valid_from=_day(p["valid_from"]),
        valid_to=_day(p["valid_to"]),
        eligible_counties=tuple(p["eligible_counties"]),
        eligible_cooperatives=tuple(p["eligible_cooperatives"]),
        cap_quantity=_quantity(p["cap_quantity"]),
        max_quantity_per_mu=_quantity(p["max_quantity_per_mu"]),
    )


_READERS: dict[str, Callable[[Mapping[str, Any]], Fact]] = {
    "HarvestRecorded": _lot,
    "PlantingRecorded": lambda p: Planting(p["planting_id"], p["cooperative_id"], p["product"], Decimal(str(p["area_mu"]))),
    "OrderPlaced": _order,
    "OrderCancelled": lambda p: OrderCancellation(p["order_id"], p["product"]),
    "CommitmentMade": _commitment,
    "MarketPriceObserved": lambda p: MarketPrice(p["product"], p["grade"], p["market"], p["price_fen"], _day(p["observed_on"])),
    ADOPTION_TYPE: lambda p: RulesAdoption(p["product"], p["rules_version"]),  # matcher/versions.py
}


def fact_from(source_event_type: str, payload: Mapping[str, Any]) -> Fact:
    """The matcher fact a journaled source event stands for."""
    reader = _READERS.get(source_event_type)
    if reader is None:
        raise ValueError(f"{source_event_type} does not enter the matcher's journal")
    return reader(payload)
