"""Every published event type and version, and the topic and key each travels under."""

from typing import Any

from contracts import buyer, cooperative, market, matching, pairing, parties, settlement, topics
from contracts.model import Contract

EVENT_KINDS: tuple[tuple[type[Contract], str], ...] = (
    (cooperative.CooperativeRegistered, topics.COOPERATIVE_EVENTS),
    (cooperative.PlantingRecorded, topics.COOPERATIVE_EVENTS),
    (cooperative.HarvestRecorded, topics.COOPERATIVE_EVENTS),
    (parties.CooperativeKeyRotated, topics.COOPERATIVE_EVENTS),
    (parties.CooperativeKeyRevoked, topics.COOPERATIVE_EVENTS),
    (buyer.BuyerRegistered, topics.BUYER_EVENTS),
    (buyer.OrderPlaced, topics.BUYER_EVENTS),
    (buyer.OrderCancelled, topics.BUYER_EVENTS),
    (buyer.CommitmentMade, topics.BUYER_EVENTS),
    (parties.BuyerKeyRotated, topics.BUYER_EVENTS),
    (parties.BuyerKeyRevoked, topics.BUYER_EVENTS),
    (market.PriceFeedRegistered, topics.MARKET_EVENTS),
    (market.MarketPriceObserved, topics.MARKET_EVENTS),
    (parties.PriceFeedKeyRotated, topics.MARKET_EVENTS),
    (parties.PriceFeedKeyRevoked, topics.MARKET_EVENTS),
    (matching.InputJournaled, topics.MATCHING_JOURNAL),
    (matching.FillMade, topics.FILLS),
    (matching.OfferOpened, topics.OFFERS),
    (matching.OfferShrunk, topics.OFFERS),
    (matching.OfferClosed, topics.OFFERS),
    (settlement.SettlementDeskRegistered, topics.SETTLEMENT_EVENTS),
    (parties.SettlementDeskKeyRotated, topics.SETTLEMENT_EVENTS),
    (parties.SettlementDeskKeyRevoked, topics.SETTLEMENT_EVENTS),
    (settlement.PlanRecorded, topics.SETTLEMENT_EVENTS),
    (settlement.DeliveryConfirmed, topics.SETTLEMENT_EVENTS),
    (settlement.PaymentMade, topics.SETTLEMENT_EVENTS),
    (pairing.PairingOfficeRegistered, topics.PAIRING_EVENTS),
    (pairing.PairingRegistered, topics.PAIRING_EVENTS),
    (pairing.SupportPromised, topics.PAIRING_EVENTS),
    (pairing.SupportDelivered, topics.PAIRING_EVENTS),
    (pairing.ProjectRegistered, topics.PAIRING_EVENTS),
    (pairing.ProjectMilestoneReached, topics.PAIRING_EVENTS),
    (pairing.SupervisionRoundHeld, topics.PAIRING_EVENTS),
    (pairing.ProblemOpened, topics.PAIRING_EVENTS),
    (pairing.ProblemRectified, topics.PAIRING_EVENTS),
    (pairing.ProblemClosed, topics.PAIRING_EVENTS),
    (pairing.SupervisionRoundEvaluated, topics.PAIRING_EVENTS),
    (pairing.ProblemFound, topics.PAIRING_EVENTS),
    (pairing.ProblemCured, topics.PAIRING_EVENTS),
    (parties.PairingOfficeKeyRotated, topics.PAIRING_EVENTS),
    (parties.PairingOfficeKeyRevoked, topics.PAIRING_EVENTS),
)
"""Every published event model, declared once with the topic it travels on."""

EVENT_MODELS: tuple[type[Contract], ...] = tuple(model for model, _ in EVENT_KINDS)

MODELS_BY_TYPE: dict[tuple[str, int], type[Contract]] = {
    (model.event_type, model.schema_version): model  # type: ignore[attr-defined]
    for model in EVENT_MODELS
}

LATEST_VERSION: dict[str, int] = {}
for _model in EVENT_MODELS:
    _type, _version = _model.event_type, _model.schema_version  # type: ignore[attr-defined]
    LATEST_VERSION[_type] = max(LATEST_VERSION.get(_type, 0), _version)

EVENT_TOPIC: dict[str, str] = {model.event_type: topic for model, topic in EVENT_KINDS}  # type: ignore[attr-defined]
"""The topic each event type is published on."""


def event_key(event_type: str, stream_id: str, payload: dict[str, Any]) -> str:
    """The Kafka key: the product where one exists (one partition holds a product's sequence), else the stream."""
    product = payload.get("product")
    return product if isinstance(product, str) else stream_id
