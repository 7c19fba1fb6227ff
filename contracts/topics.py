"""Kafka topics: the names, what they carry, how they are keyed and partitioned.

Input topics carry commands from producers (cooperatives, buyers, price feeds) to the
service that owns them. Event topics carry what the services recorded, keyed by product
so one partition holds one product's sequence. Event topics keep everything: auditors
replay them from offset 0.
"""

import hashlib
import re
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


# -- per-party topics: what one buyer or one cooperative may read, and nobody else ----------------
PARTY_TOPIC_PREFIX = "farmlink.party."
"""Every party topic starts with this; the feeds service (services/feeds) is the only writer."""

PARTY_TOPIC_PARTITIONS = 1
"""One partition: a party reads its own records in the order the feeds service wrote them."""

PARTY_TOPIC_KINDS = ("buyer", "cooperative")
"""The party kinds that get a topic of their own (contracts.parties kind names)."""

_SLUG_CHARS = 40
_HASH_HEX = 16


def party_token(party_id: str) -> str:
    """A party id (free text, any Unicode) as a name part Kafka accepts: a readable slug of its ASCII letters
    and digits (lower case, every other run of characters one `-`, at most 40 characters), then `-`, then the
    first 16 hex digits (64 bits) of the SHA-256 of the id's UTF-8 bytes; the hash alone when nothing ASCII is
    left (`云南农场` -> `2d0b...`). Only [a-z0-9-], no `.`, so `<kind>.<token>.` never prefixes another party's
    names. Two ids share a token only if their 64-bit hashes collide (docs/architecture.md, "Party topics")."""
    if not party_id:
        raise ValueError("a party id is not empty")
    slug = re.sub(r"[^a-z0-9]+", "-", party_id.lower()).strip("-")[:_SLUG_CHARS].strip("-")
    digest = hashlib.sha256(party_id.encode("utf-8")).hexdigest()[:_HASH_HEX]
    return f"{slug}-{digest}" if slug else digest


def party_name(kind: str, party_id: str) -> str:
    """`<kind>.<token>`: a party's Kafka principal and the stem of its topic and consumer groups."""
    if kind not in PARTY_TOPIC_KINDS:
        raise ValueError(f"party kind {kind!r} has no topic of its own; kinds with one: {', '.join(PARTY_TOPIC_KINDS)}")
    return f"{kind}.{party_token(party_id)}"


def party_topic(kind: str, party_id: str) -> str:
    """The topic only this party reads: `farmlink.party.<kind>.<token>` (at most 15 + 11 + 57 = 83 characters,
    well inside Kafka's 249)."""
    return PARTY_TOPIC_PREFIX + party_name(kind, party_id)


def is_party_topic(topic: str) -> bool:
    return topic.startswith(PARTY_TOPIC_PREFIX)
