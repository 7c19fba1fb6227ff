"""The cooperative's rules: pure functions from an input and what is known to the event to record."""

from dataclasses import dataclass
from decimal import Decimal

from contracts.catalogue import is_livestock
from contracts.cooperative import Contribution, CooperativeRegistered, HarvestRecorded, PlantingRecorded
from contracts.inputs import CooperativeRegistration, HarvestReport, InputMessage, PlantingReport
from contracts.signing import SignedInput
from events import authentication
from events.consumer import Rejection


@dataclass(frozen=True)
class Cooperative:
    """A registered cooperative, where it is, and its households (id -> registered_poor)."""

    cooperative_id: str
    county: str
    township: str
    village: str
    households: dict[str, bool]


def producer_for(cooperative_id: str) -> str:
    """The producer name a cooperative's inputs carry."""
    return authentication.producer_for("cooperative", cooperative_id)


def authenticate(message: InputMessage, cooperative_id: str, registered_key: authentication.PartyKey | str | None) -> SignedInput:
    """An input the cooperative it names sent and signed with its registered key; the evidence to record.

    Checked before anything else: a forged input learns nothing about the cooperative's data.
    """
    return authentication.authenticate(message, "cooperative", cooperative_id, registered_key)


def authenticate_registration(message: InputMessage, report: CooperativeRegistration) -> SignedInput:
    """A registration carries the cooperative's public key and is signed with it (self-signed)."""
    return authentication.authenticate_registration(message, "cooperative", report.cooperative_id, report.public_key)


def register(report: CooperativeRegistration, already_registered: bool, taken: dict[str, str]) -> CooperativeRegistered:
    """A new cooperative with households that belong to no other cooperative, and its public key."""
    if report.public_key is None:
        raise Rejection("payload.public_key: a cooperative registers with the public key it signs its inputs with")
    if already_registered:
        raise Rejection(f"payload.cooperative_id: cooperative {report.cooperative_id} is already registered")
    seen: set[str] = set()
    for index, household in enumerate(report.households):
        where = f"payload.households.{index}.household_id"
        if household.household_id in seen:
            raise Rejection(f"{where}: household {household.household_id} is listed twice")
        seen.add(household.household_id)
        if household.household_id in taken:
            owner = taken[household.household_id]
            raise Rejection(f"{where}: household {household.household_id} already belongs to cooperative {owner}")
    return CooperativeRegistered(**report.model_dump())


def _known(cooperative: Cooperative | None, cooperative_id: str) -> Cooperative:
    if cooperative is None:
        raise Rejection(f"payload.cooperative_id: unknown cooperative {cooperative_id}")
    return cooperative


def _whole_head(product: str, field: str, quantity: Decimal) -> None:
    if is_livestock(product) and quantity != quantity.to_integral_value():
        raise Rejection(f"{field}: {product} is counted in whole head, got {quantity}")


def record_planting(report: PlantingReport, cooperative: Cooperative | None, already_recorded: bool) -> PlantingRecorded:
    """A planting of a known cooperative's own households."""
    if already_recorded:
        raise Rejection(f"payload.planting_id: planting {report.planting_id} was already recorded")
    known = _known(cooperative, report.cooperative_id)
    _whole_head(report.product, "payload.expected_yield", report.expected_yield)
    for index, household_id in enumerate(report.household_ids):
        if household_id in report.household_ids[:index]:
            raise Rejection(f"payload.household_ids.{index}: household {household_id} is listed twice")
        if household_id not in known.households:
            raise Rejection(f"payload.household_ids.{index}: household {household_id} is not a member of {known.cooperative_id}")
    return PlantingRecorded(**report.model_dump(), county=known.county, township=known.township)


def record_harvest(report: HarvestReport, cooperative: Cooperative | None, already_recorded: bool) -> HarvestRecorded:
    """A harvest lot whose contributions add up exactly, enriched with place and registered-poor flags."""
    if already_recorded:
        raise Rejection(f"payload.lot_id: lot {report.lot_id} was already recorded")
    known = _known(cooperative, report.cooperative_id)
    _whole_head(report.product, "payload.quantity", report.quantity)
    contributions = []
    seen: set[str] = set()
    for index, contribution in enumerate(report.contributions):
        where = f"payload.contributions.{index}"
        if contribution.household_id not in known.households:
            raise Rejection(
                f"{where}.household_id: household {contribution.household_id} is not a member of {known.cooperative_id}"
            )
        if contribution.household_id in seen:
            raise Rejection(f"{where}.household_id: household {contribution.household_id} is listed twice")
        seen.add(contribution.household_id)
        _whole_head(report.product, f"{where}.quantity", contribution.quantity)
        contributions.append(
            Contribution(
                household_id=contribution.household_id,
                quantity=contribution.quantity,
                registered_poor=known.households[contribution.household_id],
            )
        )
    total = sum((c.quantity for c in report.contributions), Decimal(0))
    if total != report.quantity:
        raise Rejection(f"payload.contributions: contributions add up to {total}, not the lot quantity {report.quantity}")
    fields = report.model_dump(exclude={"contributions"})
    return HarvestRecorded(
        **fields, county=known.county, township=known.township, village=known.village, contributions=tuple(contributions)
    )
