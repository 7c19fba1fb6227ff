"""Every published event type and version, and the topic and key each travels under."""

from contracts import buyer, cooperative, market, matching, settlement, topics
from contracts.model import Contract

EVENT_MODELS: tuple[type[Contract], ...] = (
    cooperative.CooperativeRegistered,
    cooperative.PlantingRecorded,
    cooperative.HarvestRecorded,
    buyer.BuyerRegistered,
    buyer.OrderPlaced,
    buyer.OrderCancelled,
    buyer.CommitmentMade,
    market.MarketPriceObserved,
    matching.InputJournaled,
    matching.FillMade,
    matching.OfferOpened,
    matching.OfferShrunk,
    matching.OfferClosed,
    settlement.PlanRecorded,
    settlement.DeliveryConfirmed,
    settlement.PaymentMade,
)

MODELS_BY_TYPE: dict[tuple[str, int], type[Contract]] = {
    (model.event_type, model.schema_version): model for model in EVENT_MODELS  # type: ignore[attr-defined]
}

LATEST_VERSION: dict[str, int] = {}
for _model in EVENT_MODELS:
    _type, _version = _model.event_type, _model.schema_version  # type: ignore[attr-defined]
    LATEST_VERSION[_type] = max(LATEST_VERSION.get(_type, 0), _version)

EVENT_TOPIC: dict[str, str] = {
    "CooperativeRegistered": topics.COOPERATIVE_EVENTS,
    "PlantingRecorded": topics.COOPERATIVE_EVENTS,
    "HarvestRecorded": topics.COOPERATIVE_EVENTS,
    "BuyerRegistered": topics.BUYER_EVENTS,
    "OrderPlaced": topics.BUYER_EVENTS,
    "OrderCancelled": topics.BUYER_EVENTS,
    "CommitmentMade": topics.BUYER_EVENTS,
    "MarketPriceObserved": topics.MARKET_EVENTS,
    "InputJournaled": topics.MATCHING_JOURNAL,
    "FillMade": topics.FILLS,
    "OfferOpened": topics.OFFERS,
    "OfferShrunk": topics.OFFERS,
    "OfferClosed": topics.OFFERS,
    "PlanRecorded": topics.SETTLEMENT_EVENTS,
    "DeliveryConfirmed": topics.SETTLEMENT_EVENTS,
    "PaymentMade": topics.SETTLEMENT_EVENTS,
}
"""The topic each event type is published on."""


def event_key(event_type: str, stream_id: str, payload: dict) -> str:
    """The Kafka key: the product where one exists (one partition holds a product's sequence), else the stream."""
    product = payload.get("product")
    return product if isinstance(product, str) else stream_id
