"""What producers submit: one model per scenario line type.

A scenario file line is `{"type": <one of INPUT_TYPES>, "payload": {...}}`. The owning
service validates the payload against these models, then records events.
"""

import builtins
from dataclasses import dataclass
from typing import Any

from pydantic import Field, model_validator

from contracts.catalogue import Product
from contracts.model import Contract
from contracts.pairing_inputs import (
    PairingOfficeRegistration as PairingOfficeRegistration,
    PairingKind as PairingKind,
    PairingRegistration as PairingRegistration,
    SupportKind as SupportKind,
    SUPPORT_UNITS as SUPPORT_UNITS,
    SupportDelivery as SupportDelivery,
    SupportPromise as SupportPromise,
    MilestonePlan as MilestonePlan,
    ProjectRegistration as ProjectRegistration,
    MilestoneReport as MilestoneReport,
    Cutoff as Cutoff,
    SupervisionRound as SupervisionRound,
    ProblemReport as ProblemReport,
    RectificationReport as RectificationReport,
    ProblemClosure as ProblemClosure,
)
from contracts.parties import (
    BUYER,
    COOPERATIVE,
    DEFAULT_DESK,
    DEFAULT_PARTY_ID,
    PAIRING_OFFICE,
    PRICE_FEED,
    SETTLEMENT_DESK,
    PartyKind,
)
from contracts.registrations import (
    HouseholdMembership as HouseholdMembership,
    CooperativeRegistration as CooperativeRegistration,
    BuyerRegistration as BuyerRegistration,
    PriceFeedRegistration as PriceFeedRegistration,
    SettlementDeskRegistration as SettlementDeskRegistration,
    KeyRotation as KeyRotation,
    KeyRevocation as KeyRevocation,
)
from contracts.signing import Signature
from contracts.topics import BUYER_INPUT, COOPERATIVE_INPUT, MARKET_INPUT, PAIRING_INPUT, SETTLEMENT_INPUT
from contracts.types import Area, Fen, Grade, Identifier, IsoDate, Name, PositiveFen, Producer, Quantity


class PlantingReport(Contract):
    """Land a cooperative put under a product."""

    planting_id: Identifier
    cooperative_id: Identifier
    product: Product
    area_mu: Area
    expected_yield: Quantity
    expected_harvest_from: IsoDate
    expected_harvest_to: IsoDate
    household_ids: tuple[Identifier, ...] = Field(min_length=1)

    @model_validator(mode="after")
    def _window_ordered(self) -> "PlantingReport":
        if self.expected_harvest_from > self.expected_harvest_to:
            raise ValueError("expected_harvest_from must not be after expected_harvest_to")
        return self


class ContributionReport(Contract):
    """How much of a lot one household brought."""

    household_id: Identifier
    quantity: Quantity


class HarvestReport(Contract):
    """A harvest lot a cooperative offers: the unit of supply."""

    lot_id: Identifier
    cooperative_id: Identifier
    product: Product
    grade: Grade
    quantity: Quantity
    available_from: IsoDate
    expires_on: IsoDate
    contributions: tuple[ContributionReport, ...] = Field(min_length=1)

    @model_validator(mode="after")
    def _window_ordered(self) -> "HarvestReport":
        if self.available_from > self.expires_on:
            raise ValueError("available_from must not be after expires_on")
        return self


class OrderPlacement(Contract):
    """A buyer's order: product, minimum grade, quantity, limit price, window, regions."""

    order_id: Identifier
    buyer_id: Identifier
    product: Product
    min_grade: Grade
    quantity: Quantity
    limit_price_fen: PositiveFen
    deliver_from: IsoDate
    deliver_to: IsoDate
    regions: tuple[Name, ...] = ()

    @model_validator(mode="after")
    def _window_ordered(self) -> "OrderPlacement":
        if self.deliver_from > self.deliver_to:
            raise ValueError("deliver_from must not be after deliver_to")
        return self


class OrderCancellationRequest(Contract):
    """A buyer withdraws the unfilled rest of one of its orders."""

    order_id: Identifier
    buyer_id: Identifier


class Commitment(Contract):
    """A guaranteed-floor purchase promise, such as Yuping's for Yanhe's oil-tea fruit."""

    commitment_id: Identifier
    buyer_id: Identifier
    product: Product
    min_grade: Grade
    floor_price_fen: PositiveFen
    reference_market: Name
    valid_from: IsoDate
    valid_to: IsoDate
    eligible_counties: tuple[Name, ...] = ()
    eligible_cooperatives: tuple[Identifier, ...] = ()
    cap_quantity: Quantity | None = None
    max_quantity_per_mu: Quantity | None = None

    @model_validator(mode="after")
    def _window_ordered(self) -> "Commitment":
        if self.valid_from > self.valid_to:
            raise ValueError("valid_from must not be after valid_to")
        return self


class MarketPriceReport(Contract):
    """An observed reference price for a product and grade on a date at a named market."""

    product: Product
    grade: Grade
    market: Name
    price_fen: PositiveFen
    observed_on: IsoDate


class PlanReport(Contract):
    """An industry plan: area and target household income, e.g. Ketian's 2,000 mu of chili."""

    plan_id: Identifier
    county: Name
    township: Name
    product: Product
    area_mu: Area
    target_household_income_fen: Fen
    desk_id: Identifier | None = Field(None, description=f"the settlement desk that records it; omitted: {DEFAULT_DESK!r}")


class DeliveryConfirmation(Contract):
    """A buyer confirms goods of a fill were handed over; the settlement desk records it."""

    lot_id: Identifier
    outlet_id: Identifier
    quantity: Quantity
    desk_id: Identifier | None = Field(None, description=f"the settlement desk that records it; omitted: {DEFAULT_DESK!r}")


class PaymentReport(Contract):
    """A buyer paid for a fill; the settlement desk records it and settlement splits it to the lot's households."""

    lot_id: Identifier
    outlet_id: Identifier
    amount_fen: PositiveFen
    desk_id: Identifier | None = Field(None, description=f"the settlement desk that records it; omitted: {DEFAULT_DESK!r}")


@dataclass(frozen=True)
class InputKind:
    """Everything farmlink knows about one input type, declared once: the payload model, the
    service that owns it (and so its topic), the party that signs it (contracts/parties.py), the
    event it records, and whether that event enters the matcher's journal. Every other table is
    derived from INPUT_KINDS (the matcher, which imports nothing of ours, keeps its own list of
    journaled event types; tests/unit/test_contracts.py checks it agrees)."""

    type: str
    model: builtins.type[Contract]
    owner: str
    party: PartyKind
    records: str
    journaled: bool
    party_field: str = ""
    """The payload field naming the party that signs it (default: the party kind's own id field)."""

    @property
    def signed(self) -> bool:
        """Every input is signed by its party (contracts/parties.py)."""
        return True

    @property
    def field(self) -> str:
        return self.party_field or self.party.id_field


def _key_kinds(party: PartyKind, records: str) -> tuple[InputKind, InputKind]:
    """A party kind's rotation and revocation inputs (contracts/parties.py), named by `party_id`."""
    return (
        InputKind(
            f"{party.input_prefix}.key_rotated", KeyRotation, party.owner, party, f"{records}KeyRotated", False, "party_id"
        ),
        InputKind(
            f"{party.input_prefix}.key_revoked", KeyRevocation, party.owner, party, f"{records}KeyRevoked", False, "party_id"
        ),
    )


INPUT_KINDS: tuple[InputKind, ...] = (
    InputKind(
        "cooperative.registered", CooperativeRegistration, "cooperative", COOPERATIVE, "CooperativeRegistered", journaled=False
    ),
    InputKind("planting.recorded", PlantingReport, "cooperative", COOPERATIVE, "PlantingRecorded", journaled=True),
    InputKind("harvest.recorded", HarvestReport, "cooperative", COOPERATIVE, "HarvestRecorded", journaled=True),
    *_key_kinds(COOPERATIVE, "Cooperative"),
    InputKind("buyer.registered", BuyerRegistration, "buyer", BUYER, "BuyerRegistered", journaled=False),
    InputKind("order.placed", OrderPlacement, "buyer", BUYER, "OrderPlaced", journaled=True),
    InputKind("order.cancelled", OrderCancellationRequest, "buyer", BUYER, "OrderCancelled", journaled=True),
    InputKind("commitment.made", Commitment, "buyer", BUYER, "CommitmentMade", journaled=True),
    *_key_kinds(BUYER, "Buyer"),
    InputKind("price_feed.registered", PriceFeedRegistration, "market", PRICE_FEED, "PriceFeedRegistered", journaled=False),
    InputKind("market_price.observed", MarketPriceReport, "market", PRICE_FEED, "MarketPriceObserved", journaled=True),
    *_key_kinds(PRICE_FEED, "PriceFeed"),
    InputKind(
        "settlement_desk.registered",
        SettlementDeskRegistration,
        "settlement",
        SETTLEMENT_DESK,
        "SettlementDeskRegistered",
        journaled=False,
    ),
    InputKind("plan.recorded", PlanReport, "settlement", SETTLEMENT_DESK, "PlanRecorded", journaled=False),
    InputKind("delivery.confirmed", DeliveryConfirmation, "settlement", SETTLEMENT_DESK, "DeliveryConfirmed", journaled=False),
    InputKind("payment.made", PaymentReport, "settlement", SETTLEMENT_DESK, "PaymentMade", journaled=False),
    *_key_kinds(SETTLEMENT_DESK, "SettlementDesk"),
    InputKind(
        "pairing_office.registered",
        PairingOfficeRegistration,
        "pairing",
        PAIRING_OFFICE,
        "PairingOfficeRegistered",
        journaled=False,
    ),
    InputKind("pairing.registered", PairingRegistration, "pairing", PAIRING_OFFICE, "PairingRegistered", journaled=False),
    InputKind("support.promised", SupportPromise, "pairing", PAIRING_OFFICE, "SupportPromised", journaled=False),
    InputKind("support.delivered", SupportDelivery, "pairing", PAIRING_OFFICE, "SupportDelivered", journaled=False),
    InputKind("project.registered", ProjectRegistration, "pairing", PAIRING_OFFICE, "ProjectRegistered", journaled=False),
    InputKind(
        "project.milestone_reached", MilestoneReport, "pairing", PAIRING_OFFICE, "ProjectMilestoneReached", journaled=False
    ),
    InputKind("supervision.round", SupervisionRound, "pairing", PAIRING_OFFICE, "SupervisionRoundHeld", journaled=False),
    InputKind("problem.opened", ProblemReport, "pairing", PAIRING_OFFICE, "ProblemOpened", journaled=False),
    InputKind("problem.rectified", RectificationReport, "pairing", PAIRING_OFFICE, "ProblemRectified", journaled=False),
    InputKind("problem.closed", ProblemClosure, "pairing", PAIRING_OFFICE, "ProblemClosed", journaled=False),
    *_key_kinds(PAIRING_OFFICE, "PairingOffice"),
)

INPUT_KIND: dict[str, InputKind] = {kind.type: kind for kind in INPUT_KINDS}

INPUT_TYPES: dict[str, type[Contract]] = {kind.type: kind.model for kind in INPUT_KINDS}
"""Every scenario line type and the payload model that validates it."""

INPUT_OWNER: dict[str, str] = {kind.type: kind.owner for kind in INPUT_KINDS}
"""Which service owns each input type."""

SERVICE_INPUT_TOPIC: dict[str, str] = {
    "cooperative": COOPERATIVE_INPUT,
    "buyer": BUYER_INPUT,
    "market": MARKET_INPUT,
    "settlement": SETTLEMENT_INPUT,
    "pairing": PAIRING_INPUT,
}

MATCHER_INPUT_TYPES = frozenset(kind.type for kind in INPUT_KINDS if kind.journaled)
"""Input types that reach the matcher's journal (the publisher stamps them with their place in the run)."""

JOURNALED_EVENT_TYPES = frozenset(kind.records for kind in INPUT_KINDS if kind.journaled)
"""The events those inputs record: what the matching service journals."""


class InputMessage(Contract):
    """An input as it travels on an input topic: the producer's submission, its ids, and the
    producer's signature over all of them (contracts/signing.py; every input is signed by its party,
    contracts/parties.py: the owning service refuses one without)."""

    message_id: Identifier
    type: str
    producer: Producer
    correlation_id: Identifier
    payload: dict[str, Any]
    signature: Signature | None = None

    @model_validator(mode="after")
    def _known_type(self) -> "InputMessage":
        if self.type not in INPUT_TYPES:
            raise ValueError(f"unknown input type {self.type!r}; known: {', '.join(INPUT_TYPES)}")
        return self


SIGNED_INPUT_TYPES = frozenset(kind.type for kind in INPUT_KINDS if kind.signed)
"""Inputs their producer must sign: every input (contracts/parties.py); the owning service rejects them unsigned."""

REGISTRATION_TYPES = {
    kind.type: kind.party.id_field for kind in INPUT_KINDS if kind.type == f"{kind.party.input_prefix}.registered"
}
"""Registrations: signed with the key they register (self-signed); type -> the field naming the party."""

KEY_ROTATION_TYPES = frozenset(kind.type for kind in INPUT_KINDS if kind.model is KeyRotation)
KEY_REVOCATION_TYPES = frozenset(kind.type for kind in INPUT_KINDS if kind.model is KeyRevocation)


def producer_kind(input_type: str) -> str | None:
    """The party kind that signs an input type ('cooperative', 'buyer', 'price-feed', 'settlement-desk'), None for an unknown type."""
    kind = INPUT_KIND.get(input_type)
    return kind.party.name if kind else None


def party_id_of(input_type: str, payload: dict[str, Any]) -> str:
    """The id of the party an input speaks for, from its payload (a settlement or pairing line naming no desk or
    office: the default one)."""
    kind = INPUT_KIND[input_type]
    value = payload.get(kind.field)
    if value is None and kind.party.name in DEFAULT_PARTY_ID:
        return DEFAULT_PARTY_ID[kind.party.name]
    return str(value) if value is not None else "?"


def producer_of(input_type: str, payload: dict[str, Any]) -> str:
    """Who submits an input: `<party kind>:<party id>` (contracts/parties.py)."""
    return INPUT_KIND[input_type].party.producer(party_id_of(input_type, payload))


class Receipt(Contract):
    """What a service did with one input: accepted (with the events it recorded) or rejected, and why."""

    correlation_id: str
    message_id: str
    service: str
    status: str  # accepted | rejected | journaled
    reason: str | None = None
    event_ids: tuple[str, ...] = ()
    fill_ids: tuple[str, ...] = ()


class SequenceMarker(Contract):
    """What a service publishes on farmlink.sequence.markers when it rejects a sequenced input, so the
    matcher skips that place of the run (keyed by product; the stamp also rides in the header)."""

    run: str
    product: str
    seq: str
    reason: str
    message_id: str | None = None
