"""Kafka topics: the names, what they carry, how they are keyed and partitioned.

Input topics carry commands from producers (cooperatives, buyers, price feeds) to the
service that owns them. Event topics carry what the services recorded, keyed by product
so one partition holds one product's sequence. Event topics keep everything: auditors
replay them from offset 0.
"""

from dataclasses import dataclass


@dataclass(frozen=True)
class Topic:
    """A Kafka topic farmlink creates explicitly (auto-create is off)."""

    name: str
    partitions: int
    keep_forever: bool
    description: str
    compacted: bool = False


COOPERATIVE_INPUT = "farmlink.cooperative.input"
BUYER_INPUT = "farmlink.buyer.input"
MARKET_INPUT = "farmlink.market.input"
SETTLEMENT_INPUT = "farmlink.settlement.input"
PAIRING_INPUT = "farmlink.pairing.input"

COOPERATIVE_EVENTS = "farmlink.cooperative.events"
BUYER_EVENTS = "farmlink.buyer.events"
MARKET_EVENTS = "farmlink.market.events"
MATCHING_JOURNAL = "farmlink.matching.journal"
FILLS = "farmlink.matching.fills"
OFFERS = "farmlink.offers"
SETTLEMENT_EVENTS = "farmlink.settlement.events"
PAIRING_EVENTS = "farmlink.pairing.events"

RECEIPTS = "farmlink.receipts"
DEAD_LETTER = "farmlink.deadletter"
RELAY_CHECKPOINTS = "farmlink.relay.checkpoints"
SEQUENCE_MARKERS = "farmlink.sequence.markers"

SEQUENCE_HEADER = "farmlink.sequence"
"""Kafka header of an input that must reach the matcher in its producer's order:
`<run>/<product>/<seq>`, seq = 1, 2, ... for the run's lines of that product that the matcher
journals (`farmlink publish` sets it). The owning service copies it onto the events the input
leads to, or, when it rejects the input, onto a marker on SEQUENCE_MARKERS; the matching service
journals a run's inputs of one product in seq order (docs/architecture.md, "Ordering")."""

EVENT_PARTITIONS = 6

TOPICS: tuple[Topic, ...] = (
    Topic(
        COOPERATIVE_INPUT,
        3,
        True,
        "cooperative.registered, planting.recorded, harvest.recorded, cooperative.key_rotated, cooperative.key_revoked commands",
    ),
    Topic(
        BUYER_INPUT,
        3,
        True,
        "buyer.registered, order.placed, order.cancelled, commitment.made, buyer.key_rotated, buyer.key_revoked commands",
    ),
    Topic(
        MARKET_INPUT,
        3,
        True,
        "price_feed.registered, market_price.observed, price_feed.key_rotated, price_feed.key_revoked commands",
    ),
    Topic(
        SETTLEMENT_INPUT,
        3,
        True,
        "settlement_desk.registered, delivery.confirmed, payment.made, plan.recorded, settlement_desk.key_rotated, settlement_desk.key_revoked commands",
    ),
    Topic(
        PAIRING_INPUT,
        3,
        True,
        "pairing_office.registered, pairing.registered, support.promised, support.delivered, project.registered, "
        "project.milestone_reached, supervision.round, problem.opened, problem.rectified, problem.closed, pairing_office.key_rotated, "
        "pairing_office.key_revoked commands",
    ),
    Topic(
        COOPERATIVE_EVENTS,
        EVENT_PARTITIONS,
        True,
        "CooperativeRegistered, PlantingRecorded, HarvestRecorded, CooperativeKeyRotated, CooperativeKeyRevoked",
    ),
    Topic(
        BUYER_EVENTS,
        EVENT_PARTITIONS,
        True,
        "BuyerRegistered, OrderPlaced, OrderCancelled, CommitmentMade, BuyerKeyRotated, BuyerKeyRevoked",
    ),
    Topic(
        MARKET_EVENTS,
        EVENT_PARTITIONS,
        True,
        "PriceFeedRegistered, MarketPriceObserved, PriceFeedKeyRotated, PriceFeedKeyRevoked",
    ),
    Topic(MATCHING_JOURNAL, EVENT_PARTITIONS, True, "InputJournaled: the matcher's per-product input journal"),
    Topic(FILLS, EVENT_PARTITIONS, True, "FillMade: one per fill, in the matcher's output order per product"),
    Topic(OFFERS, EVENT_PARTITIONS, True, "OfferOpened, OfferShrunk, OfferClosed: what buyer systems subscribe to"),
    Topic(
        SETTLEMENT_EVENTS,
        EVENT_PARTITIONS,
        True,
        "SettlementDeskRegistered, DeliveryConfirmed, PaymentMade, PlanRecorded, SettlementDeskKeyRotated, SettlementDeskKeyRevoked",
    ),
    Topic(
        PAIRING_EVENTS,
        EVENT_PARTITIONS,
        True,
        "PairingOfficeRegistered, PairingRegistered, SupportPromised, SupportDelivered, ProjectRegistered, "
        "ProjectMilestoneReached, SupervisionRoundHeld, ProblemOpened, ProblemRectified, ProblemClosed, SupervisionRoundEvaluated, "
        "ProblemFound, ProblemCured, PairingOfficeKeyRotated, "
        "PairingOfficeKeyRevoked",
    ),
    Topic(RECEIPTS, 1, False, "one receipt per input command: accepted or rejected with the reason"),
    Topic(DEAD_LETTER, 1, True, "messages that could not be decoded or validated, with reason, bytes and headers"),
    Topic(
        SEQUENCE_MARKERS,
        EVENT_PARTITIONS,
        True,
        "a sequenced input its service rejected, keyed by product, so the matcher skips its place",
    ),
    Topic(
        RELAY_CHECKPOINTS,
        1,
        True,
        "per schema, the outbox rows of the relay's last Kafka transaction (compacted)",
        compacted=True,
    ),
)
