"""What producers submit: one model per scenario line type.

A scenario file line is `{"type": <one of INPUT_TYPES>, "payload": {...}}`. The owning
service validates the payload against these models, then records events.
"""

from pydantic import Field, model_validator

from contracts.catalogue import Product
from contracts.model import Contract
from contracts.signing import PublicKey, Signature
from contracts.topics import BUYER_INPUT, COOPERATIVE_INPUT, MARKET_INPUT, SETTLEMENT_INPUT
from contracts.types import Area, Fen, Grade, Identifier, IsoDate, Name, PositiveFen, Quantity


class HouseholdMembership(Contract):
    """A member household and whether it is a registered-poor (建档立卡) household."""

    household_id: Identifier
    registered_poor: bool


class CooperativeRegistration(Contract):
    """A cooperative joins farmlink with its households and the public key it signs with.

    `public_key` is optional here so that `farmlink simulate` reads a scenario file without
    keys (`farmlink publish` fills in the cooperative's own); the cooperative service requires it.
    """

    cooperative_id: Identifier
    name: Name
    county: Name
    township: Name
    village: Name
    households: tuple[HouseholdMembership, ...] = Field(min_length=1)
    public_key: PublicKey | None = None


class BuyerRegistration(Contract):
    """A buyer (enterprise, canteen, supermarket, county purchase programme) joins farmlink with its public key.

    `public_key` is optional here for the same reason as a cooperative's; the buyer service requires it.
    """

    buyer_id: Identifier
    name: Name
    public_key: PublicKey | None = None


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


class CommitmentOffer(Contract):
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
    def _window_ordered(self) -> "CommitmentOffer":
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


class DeliveryConfirmation(Contract):
    """A buyer confirms goods of a fill were handed over."""

    lot_id: Identifier
    outlet_id: Identifier
    quantity: Quantity


class PaymentReport(Contract):
    """A buyer paid for a fill; settlement splits it to the lot's households."""

    lot_id: Identifier
    outlet_id: Identifier
    amount_fen: PositiveFen


INPUT_TYPES: dict[str, type[Contract]] = {
    "cooperative.registered": CooperativeRegistration,
    "planting.recorded": PlantingReport,
    "harvest.recorded": HarvestReport,
    "buyer.registered": BuyerRegistration,
    "order.placed": OrderPlacement,
    "order.cancelled": OrderCancellationRequest,
    "commitment.made": CommitmentOffer,
    "market_price.observed": MarketPriceReport,
    "plan.recorded": PlanReport,
    "delivery.confirmed": DeliveryConfirmation,
    "payment.made": PaymentReport,
}
"""Every scenario line type and the payload model that validates it."""

INPUT_OWNER: dict[str, str] = {
    "cooperative.registered": "cooperative",
    "planting.recorded": "cooperative",
    "harvest.recorded": "cooperative",
    "buyer.registered": "buyer",
    "order.placed": "buyer",
    "order.cancelled": "buyer",
    "commitment.made": "buyer",
    "market_price.observed": "market",
    "plan.recorded": "settlement",
    "delivery.confirmed": "settlement",
    "payment.made": "settlement",
}
"""Which service owns each input type."""

SERVICE_INPUT_TOPIC: dict[str, str] = {
    "cooperative": COOPERATIVE_INPUT,
    "buyer": BUYER_INPUT,
    "market": MARKET_INPUT,
    "settlement": SETTLEMENT_INPUT,
}

MATCHER_INPUT_TYPES = frozenset(
    {"planting.recorded", "harvest.recorded", "order.placed", "order.cancelled", "commitment.made", "market_price.observed"}
)
"""Input types that reach the matcher's journal (the publisher waits for them to be journaled)."""


class InputMessage(Contract):
    """An input as it travels on an input topic: the producer's submission, its ids, and the
    producer's signature over all of them (contracts/signing.py; required of cooperatives and buyers)."""

    message_id: Identifier
    type: str
    producer: Identifier
    correlation_id: Identifier
    payload: dict
    signature: Signature | None = None

    @model_validator(mode="after")
    def _known_type(self) -> "InputMessage":
        if self.type not in INPUT_TYPES:
            raise ValueError(f"unknown input type {self.type!r}; known: {', '.join(INPUT_TYPES)}")
        return self


SIGNED_INPUT_TYPES = frozenset(
    {"cooperative.registered", "planting.recorded", "harvest.recorded", "buyer.registered", "order.placed", "order.cancelled", "commitment.made"}
)
"""Inputs their producer (a cooperative or a buyer) must sign; the owning service rejects them unsigned."""

REGISTRATION_TYPES = {"cooperative.registered": "cooperative_id", "buyer.registered": "buyer_id"}
"""Registrations: signed with the key they register (self-signed)."""


def producer_kind(input_type: str) -> str | None:
    """'cooperative' or 'buyer' for a signed input type, None for the rest."""
    if input_type not in SIGNED_INPUT_TYPES:
        return None
    return "cooperative" if INPUT_OWNER[input_type] == "cooperative" else "buyer"


def producer_of(input_type: str, payload: dict) -> str:
    """Who submits an input: the cooperative, the buyer, the price feed, or the settlement desk."""
    if input_type in ("cooperative.registered", "planting.recorded", "harvest.recorded"):
        return f"cooperative:{payload.get('cooperative_id', '?')}"
    if input_type in SIGNED_INPUT_TYPES:
        return f"buyer:{payload.get('buyer_id', '?')}"
    if input_type == "market_price.observed":
        return f"market:{payload.get('market', '?')}"
    return "settlement"


class Receipt(Contract):
    """What a service did with one input: accepted (with the events it recorded) or rejected, and why."""

    correlation_id: str
    message_id: str
    service: str
    status: str  # accepted | rejected | journaled
    reason: str | None = None
    event_ids: tuple[str, ...] = ()
    fill_ids: tuple[str, ...] = ()
