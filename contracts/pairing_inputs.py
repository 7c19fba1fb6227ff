"""What the pairing office submits (结对帮扶: pairings, support, projects, supervision rounds and problems): one
model per scenario line type, as contracts/inputs.py for the market's producers (which lists them all)."""

from typing import Annotated, Literal

from pydantic import Field, model_validator

from contracts.catalogue import Product
from contracts.model import Contract
from contracts.parties import DEFAULT_OFFICE
from contracts.signing import PublicKey
from contracts.types import Fen, Identifier, IsoDate, Name, Quantity


class PairingOfficeRegistration(Contract):
    """A pairing office (Tongren's 结对帮扶 office, a district's) joins farmlink with the public key it signs
    pairings, support deliveries and projects with. `public_key` is optional here as for the others."""

    office_id: Identifier
    name: Name
    public_key: PublicKey | None = None


_OFFICE = Field(None, description=f"the pairing office that records it; omitted: {DEFAULT_OFFICE!r}")

PairingKind = Literal["9+2", "1+1"]
"""9+2: one of the nine districts and counties or the two development zones backs Yanhe through a team;
1+1: an advanced village pairs with a poor one (结对帮扶)."""


class PairingRegistration(Contract):
    """A helper (a district or county, a development zone, an advanced village) pairs with a township or a
    village in Yanhe, through a team: e.g. Tongxin community (Dejiang) with Fengjia village (Ketian)."""

    pairing_id: Identifier
    kind: PairingKind
    helper: Name
    helper_kind: Literal["district", "county", "development_zone", "village"]
    helped: Name
    helped_kind: Literal["township", "village"]
    helped_township: Name | None = Field(None, description="the township of a helped village")
    team: Name
    office_id: Identifier | None = _OFFICE
    registered_on: IsoDate | None = Field(
        None, description="the day the pairing began: `farmlink pairings` compares the helped area before and after it"
    )


SupportKind = Literal["seedlings", "money", "experts", "equipment"]

SUPPORT_UNITS: dict[str, str] = {"seedlings": "seedlings", "money": "fen", "experts": "person-days", "equipment": "pieces"}
"""What the quantity of each kind of support counts."""


class SupportDelivery(Contract):
    """Support a pairing delivered: seedlings, money, experts' days or equipment, with its value in fen,
    to a cooperative or a village, with a delivery note (e.g. Yuping's 1,000,000 oil-tea seedlings)."""

    delivery_id: Identifier
    pairing_id: Identifier
    kind: SupportKind
    quantity: Quantity = Field(
        description="in the kind's unit: seedlings, fen (money), person-days (experts), pieces (equipment)"
    )
    value_fen: Fen
    delivered_on: IsoDate
    note: Name
    to_cooperative_id: Identifier | None = None
    to_village: Name | None = None
    office_id: Identifier | None = _OFFICE

    @model_validator(mode="after")
    def _recipient_and_money(self) -> "SupportDelivery":
        if self.to_cooperative_id is None and self.to_village is None:
            raise ValueError("support goes to a cooperative (to_cooperative_id) or a village (to_village)")
        if self.kind == "money" and self.quantity != self.value_fen:
            raise ValueError("money support: quantity is the amount in fen and must equal value_fen")
        return self


class SupportPromise(Contract):
    """Support a pairing promised, by a date: e.g. Yuping's expert team for the oil-tea bases. Deliveries of the
    same pairing and kind count against it (matcher/supervision/rules.py opens a problem when it is not delivered by then)."""

    promise_id: Identifier
    pairing_id: Identifier
    kind: SupportKind
    quantity: Quantity = Field(description="in the kind's unit, as for a delivery")
    value_fen: Fen
    due_on: IsoDate
    note: Name
    office_id: Identifier | None = _OFFICE


class MilestonePlan(Contract):
    """A step of a project with the date it is due."""

    milestone_id: Identifier
    name: Name
    due_on: IsoDate


class ProjectRegistration(Contract):
    """An industry project as a list item with an owner (清单化、项目化): e.g. Ketian's 2,000 mu of chili."""

    project_id: Identifier
    name: Name
    owner_team: Name
    target: Name
    due_on: IsoDate
    milestones: tuple[MilestonePlan, ...] = Field(min_length=1)
    pairing_id: Identifier | None = None
    product: Product | None = None
    office_id: Identifier | None = _OFFICE

    @model_validator(mode="after")
    def _milestones_in_time(self) -> "ProjectRegistration":
        seen: set[str] = set()
        for milestone in self.milestones:
            if milestone.milestone_id in seen:
                raise ValueError(f"milestone {milestone.milestone_id} is listed twice")
            seen.add(milestone.milestone_id)
            if milestone.due_on > self.due_on:
                raise ValueError(f"milestone {milestone.milestone_id} is due after the project ({self.due_on})")
        return self


class MilestoneReport(Contract):
    """A project's milestone was reached, with the evidence."""

    project_id: Identifier
    milestone_id: Identifier
    reached_on: IsoDate
    evidence: Name
    office_id: Identifier | None = _OFFICE


Cutoff = dict[
    Annotated[str, Field(pattern=r"^[a-z0-9._-]+/[0-9]+$", max_length=200)],
    Annotated[int, Field(strict=True, ge=0, le=2**62)],
]
"""A supervision round's cut-off: per event topic partition, the offset below which it sees every record."""


class SupervisionRound(Contract):
    """A follow-up visit of the supervision (回访): as of its date, the pairing service runs the ledger's rules
    (matcher/supervision/rules.py) over the facts before the round's cut-off and records the problems they open and
    the ones they find cured."""

    round_id: Identifier
    as_of: IsoDate
    note: Name | None = None
    office_id: Identifier | None = _OFFICE
    cutoff: Cutoff | None = Field(
        default=None,
        description="what the round must have seen: per event topic partition (`<topic>/<partition>`), the offset below "
        "which the pairing service must have kept every record before it decides (`farmlink publish` stamps it)",
    )


class ProblemReport(Contract):
    """An inspector opens a problem by hand (问题清单): what, where, and the team that owns its rectification."""

    problem_id: Identifier
    township: Name
    owner_team: Name
    subject: Name
    reason: Name
    office_id: Identifier | None = _OFFICE


class RectificationReport(Contract):
    """What the owning team did about a problem (整改台账): one entry of its rectification record."""

    problem_id: Identifier
    action: Name
    office_id: Identifier | None = _OFFICE


class ProblemClosure(Contract):
    """An inspector closes a problem (销号) with a signed reason and the evidence; a problem the rules opened also
    closes by itself when the log shows it cured."""

    problem_id: Identifier
    reason: Name
    evidence: Name
    office_id: Identifier | None = _OFFICE
