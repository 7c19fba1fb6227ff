"""Events the pairing service records: pairing offices, "9+2" and "1+1" pairings, the support they
deliver, and industry projects as list items with owners and milestones (清单化、项目化)."""

from typing import Annotated, ClassVar, Literal

from pydantic import Field

from contracts.catalogue import Product
from contracts.inputs import Cutoff, MilestonePlan, PairingKind, SupportKind
from contracts.model import Contract
from contracts.signing import PublicKey, SignedInput
from contracts.types import Fen, Identifier, IsoDate, Name, Quantity


class PairingOfficeRegistered(Contract):
    """A pairing office joined farmlink with the public key it signs with."""

    event_type: ClassVar[str] = "PairingOfficeRegistered"
    schema_version: ClassVar[int] = 1

    office_id: Identifier
    name: Name
    public_key: PublicKey
    signed_input: SignedInput | None = None


class PairingRegistered(Contract):
    """A helper paired with a township or village of Yanhe, through a team, from a day (v2; v1 named no day)."""

    event_type: ClassVar[str] = "PairingRegistered"
    schema_version: ClassVar[int] = 2

    pairing_id: Identifier
    kind: PairingKind
    helper: Name
    helper_kind: Literal["district", "county", "development_zone", "village"]
    helped: Name
    helped_kind: Literal["township", "village"]
    helped_township: Name | None = None
    team: Name
    office_id: Identifier | None = None
    registered_on: IsoDate | None = None
    signed_input: SignedInput | None = None


class SupportPromised(Contract):
    """Support a pairing promised by a date, in the kind's unit and its value in fen."""

    event_type: ClassVar[str] = "SupportPromised"
    schema_version: ClassVar[int] = 1

    promise_id: Identifier
    pairing_id: Identifier
    kind: SupportKind
    quantity: Quantity
    unit: Name
    value_fen: Fen
    due_on: IsoDate
    note: Name
    office_id: Identifier | None = None
    signed_input: SignedInput | None = None


class SupportDelivered(Contract):
    """Support a pairing delivered, its value in fen, to whom, with the delivery note."""

    event_type: ClassVar[str] = "SupportDelivered"
    schema_version: ClassVar[int] = 1

    delivery_id: Identifier
    pairing_id: Identifier
    kind: SupportKind
    quantity: Quantity
    unit: Name
    value_fen: Fen
    delivered_on: IsoDate
    note: Name
    to_cooperative_id: Identifier | None = None
    to_village: Name | None = None
    office_id: Identifier | None = None
    signed_input: SignedInput | None = None


class ProjectRegistered(Contract):
    """An industry project with its owning team, target, due date and milestones."""

    event_type: ClassVar[str] = "ProjectRegistered"
    schema_version: ClassVar[int] = 1

    project_id: Identifier
    name: Name
    owner_team: Name
    target: Name
    due_on: IsoDate
    milestones: tuple[MilestonePlan, ...]
    pairing_id: Identifier | None = None
    product: Product | None = None
    office_id: Identifier | None = None
    signed_input: SignedInput | None = None


class ProjectMilestoneReached(Contract):
    """A milestone of a project was reached, on a date, with the evidence."""

    event_type: ClassVar[str] = "ProjectMilestoneReached"
    schema_version: ClassVar[int] = 1

    project_id: Identifier
    milestone_id: Identifier
    reached_on: IsoDate
    evidence: Name
    due_on: IsoDate
    office_id: Identifier | None = None
    signed_input: SignedInput | None = None


class SupervisionRoundHeld(Contract):
    """A supervision round was held as of a date, with the cut-off it was sent with (v2; v1 had none); what its
    rules opened and cured follows in its stream (SupervisionRoundEvaluated, ProblemFound, ProblemCured)."""

    event_type: ClassVar[str] = "SupervisionRoundHeld"
    schema_version: ClassVar[int] = 2

    round_id: Identifier
    as_of: IsoDate
    note: Name | None = None
    cutoff: Cutoff | None = None
    office_id: Identifier | None = None
    signed_input: SignedInput | None = None


class ProblemOpened(Contract):
    """An inspector opened a problem by hand."""

    event_type: ClassVar[str] = "ProblemOpened"
    schema_version: ClassVar[int] = 1

    problem_id: Identifier
    township: Name
    owner_team: Name
    subject: Name
    reason: Name
    office_id: Identifier | None = None
    signed_input: SignedInput | None = None


class ProblemRectified(Contract):
    """One entry of a problem's rectification record."""

    event_type: ClassVar[str] = "ProblemRectified"
    schema_version: ClassVar[int] = 1

    problem_id: Identifier
    action: Name
    office_id: Identifier | None = None
    signed_input: SignedInput | None = None


class ProblemClosed(Contract):
    """An inspector closed a problem with a signed reason and the evidence."""

    event_type: ClassVar[str] = "ProblemClosed"
    schema_version: ClassVar[int] = 1

    problem_id: Identifier
    reason: Name
    evidence: Name
    office_id: Identifier | None = None
    signed_input: SignedInput | None = None


RuleText = Annotated[str, Field(min_length=1, max_length=2000)]
"""A subject or reason the ledger's rules wrote (matcher/supervision/rules.py)."""

ProblemKey = Annotated[str, Field(min_length=1, max_length=400, pattern=r"^[^\s\x00-\x1f]+$")]
"""A problem's id: a rule's `<kind>:<subject ids>`, or the id an inspector chose."""

EventRef = Annotated[str, Field(min_length=1, max_length=64)]
"""The id of a recorded event, cited as evidence."""


class SchemaSeen(Contract):
    """How much of one service's log a supervision round saw: its facts the rules read, up to a position."""

    schema_name: Identifier = Field(description="the service's schema: cooperative, buyer, matching, settlement, pairing")
    through_position: int = Field(ge=1, description="the greatest global position of a fact the round saw")
    facts: int = Field(ge=1, description="how many facts of this schema the round saw (each at or below that position)")


class SupervisionRoundEvaluated(Contract):
    """The pairing service ran the ledger's rules for a round over exactly these facts: per schema, every fact the
    rules read up to a position (the round's cut-off); the problems it found and cured follow in the round's stream."""

    event_type: ClassVar[str] = "SupervisionRoundEvaluated"
    schema_version: ClassVar[int] = 1

    round_id: Identifier
    as_of: IsoDate
    seen: tuple[SchemaSeen, ...]
    opened: int = Field(ge=0)
    cured: int = Field(ge=0)


class ProblemFound(Contract):
    """A supervision round's rules opened a problem, with the events that show it."""

    event_type: ClassVar[str] = "ProblemFound"
    schema_version: ClassVar[int] = 1

    round_id: Identifier
    problem_id: ProblemKey
    kind: Literal["no-income", "unpaid-fill", "milestone-overdue", "support-undelivered", "floor-unused"]
    township: Name
    owner_team: Name
    subject: RuleText
    reason: RuleText
    evidence: tuple[EventRef, ...]


class ProblemCured(Contract):
    """A supervision round no longer found a rule's open problem: it is closed (销号) as cured, citing the events
    that cured it (the payments, the milestone, the deliveries)."""

    event_type: ClassVar[str] = "ProblemCured"
    schema_version: ClassVar[int] = 1

    round_id: Identifier
    problem_id: ProblemKey
    evidence: tuple[EventRef, ...]
