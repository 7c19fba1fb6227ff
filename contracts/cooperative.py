"""Events the cooperative service records."""

from typing import ClassVar

from pydantic import Field

from contracts.catalogue import Product
from contracts.inputs import HouseholdMembership
from contracts.model import Contract
from contracts.signing import PublicKey, SignedInput
from contracts.types import Area, Grade, Identifier, IsoDate, Name, Quantity


class CooperativeRegistered(Contract):
    """A cooperative and its households joined farmlink."""

    event_type: ClassVar[str] = "CooperativeRegistered"
    schema_version: ClassVar[int] = 1

    cooperative_id: Identifier
    name: Name
    county: Name
    township: Name
    village: Name
    households: tuple[HouseholdMembership, ...]
    public_key: PublicKey | None = None
    signed_input: SignedInput | None = None


class PlantingRecorded(Contract):
    """Land put under a product by a cooperative; its area feeds the per-mu limit."""

    event_type: ClassVar[str] = "PlantingRecorded"
    schema_version: ClassVar[int] = 1

    planting_id: Identifier
    cooperative_id: Identifier
    county: Name
    township: Name
    product: Product
    area_mu: Area
    expected_yield: Quantity
    expected_harvest_from: IsoDate
    expected_harvest_to: IsoDate
    household_ids: tuple[Identifier, ...]
    signed_input: SignedInput | None = None


class Contribution(Contract):
    """One household's share of a lot, with its registered-poor flag."""

    household_id: Identifier
    quantity: Quantity
    registered_poor: bool


class HarvestRecorded(Contract):
    """A harvest lot ready for market, enriched with where it comes from and who grew it."""

    event_type: ClassVar[str] = "HarvestRecorded"
    schema_version: ClassVar[int] = 1

    lot_id: Identifier
    cooperative_id: Identifier
    county: Name
    township: Name
    village: Name
    product: Product
    grade: Grade
    quantity: Quantity
    available_from: IsoDate
    expires_on: IsoDate
    contributions: tuple[Contribution, ...] = Field(min_length=1)
    signed_input: SignedInput | None = None
