"""The pairing office's rules: pure functions from an input and what is known to the event to record."""

from dataclasses import dataclass

from contracts.inputs import (
    SUPPORT_UNITS,
    MilestoneReport,
    PairingRegistration,
    ProblemClosure,
    ProblemReport,
    ProjectRegistration,
    RectificationReport,
    SupervisionRound,
    SupportDelivery,
    SupportPromise,
)
from contracts.pairing import (
    PairingRegistered,
    ProblemClosed,
    ProblemOpened,
    ProblemRectified,
    ProjectMilestoneReached,
    ProjectRegistered,
    SupervisionRoundHeld,
    SupportDelivered,
    SupportPromised,
)
from events.consumer import Rejection


@dataclass(frozen=True)
class Milestone:
    """A project's milestone as the service remembers it."""

    due_on: str
    reached: bool


def register_pairing(registration: PairingRegistration, already_registered: bool) -> PairingRegistered:
    """A new pairing; a helped village names its township."""
    if already_registered:
        raise Rejection(f"payload.pairing_id: pairing {registration.pairing_id} is already registered")
    if registration.helped_kind == "village" and registration.helped_township is None:
        raise Rejection("payload.helped_township: a helped village names its township")
    return PairingRegistered(**registration.model_dump())


def deliver_support(delivery: SupportDelivery, pairing_known: bool, already_delivered: bool) -> SupportDelivered:
    """Support of a registered pairing, recorded once, with the unit its quantity counts."""
    if already_delivered:
        raise Rejection(f"payload.delivery_id: support delivery {delivery.delivery_id} was already recorded")
    if not pairing_known:
        raise Rejection(
            f"payload.pairing_id: unknown pairing {delivery.pairing_id}; a pairing registers (pairing.registered) first"
        )
    return SupportDelivered(**delivery.model_dump(), unit=SUPPORT_UNITS[delivery.kind])


def promise_support(promise: SupportPromise, pairing_known: bool, already_promised: bool) -> SupportPromised:
    """Support a registered pairing promises, recorded once, with the unit its quantity counts."""
    if already_promised:
        raise Rejection(f"payload.promise_id: support promise {promise.promise_id} was already recorded")
    if not pairing_known:
        raise Rejection(
            f"payload.pairing_id: unknown pairing {promise.pairing_id}; a pairing registers (pairing.registered) first"
        )
    return SupportPromised(**promise.model_dump(), unit=SUPPORT_UNITS[promise.kind])


def register_project(registration: ProjectRegistration, already_registered: bool, pairing_known: bool) -> ProjectRegistered:
    """A new project; the pairing it belongs to, when it names one, is registered."""
    if already_registered:
        raise Rejection(f"payload.project_id: project {registration.project_id} is already registered")
    if registration.pairing_id is not None and not pairing_known:
        raise Rejection(f"payload.pairing_id: unknown pairing {registration.pairing_id}")
    return ProjectRegistered(**registration.model_dump())


def reach_milestone(report: MilestoneReport, project_known: bool, milestone: Milestone | None) -> ProjectMilestoneReached:
    """A milestone of a registered project, reached once."""
    if not project_known:
        raise Rejection(f"payload.project_id: unknown project {report.project_id}")
    if milestone is None:
        raise Rejection(f"payload.milestone_id: project {report.project_id} has no milestone {report.milestone_id}")
    if milestone.reached:
        raise Rejection(f"payload.milestone_id: milestone {report.milestone_id} of {report.project_id} was already reached")
    return ProjectMilestoneReached(**report.model_dump(), due_on=milestone.due_on)


def hold_round(report: SupervisionRound, already_held: bool) -> SupervisionRoundHeld:
    """A supervision round, held once."""
    if already_held:
        raise Rejection(f"payload.round_id: round {report.round_id} was already held")
    return SupervisionRoundHeld(**report.model_dump())


def open_problem(report: ProblemReport, already_opened: bool) -> ProblemOpened:
    """A problem an inspector opens; an id already used (by hand, or for its record) is refused."""
    if already_opened:
        raise Rejection(f"payload.problem_id: problem {report.problem_id} already exists")
    if ":" in report.problem_id:
        raise Rejection(
            f"payload.problem_id: ids with ':' are the rules' own (matcher/supervision/rules.py); choose another for {report.problem_id}"
        )
    return ProblemOpened(**report.model_dump())


def rectify(report: RectificationReport) -> ProblemRectified:
    return ProblemRectified(**report.model_dump())


def close_problem(report: ProblemClosure) -> ProblemClosed:
    return ProblemClosed(**report.model_dump())
