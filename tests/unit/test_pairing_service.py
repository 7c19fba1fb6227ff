"""The pairing office records "9+2" and "1+1" pairings, the support they deliver and projects with
milestones; every line is signed by the office, and each rule refuses with the field it breaks.

The pairing service's own handlers run on an in-memory unit of work (tests/memory_services.py)."""

import pytest

from contracts.signing import new_private_key, public_key_of
from farmlink.audit.signatures import check_signatures
from services.pairing import app as pairing
from tests.memory_services import Party

pytestmark = pytest.mark.unit

FENGJIA = {
    "pairing_id": "tongxin-fengjia",
    "kind": "1+1",
    "helper": "Tongxin community, Dejiang",
    "helper_kind": "village",
    "helped": "Fengjia",
    "helped_kind": "village",
    "helped_township": "Ketian",
    "team": "Dejiang chili team",
}
SEEDLINGS = {
    "delivery_id": "yuping-seedlings-1",
    "pairing_id": "tongxin-fengjia",
    "kind": "seedlings",
    "quantity": "1000000",
    "value_fen": 350_000_000,
    "delivered_on": "2020-03-10",
    "note": "delivery note 2020-017",
    "to_village": "Fengjia",
}
CHILI = {
    "project_id": "ketian-chili",
    "name": "Ketian 2,000 mu of chili",
    "owner_team": "Dejiang chili team",
    "target": "2,000 mu",
    "due_on": "2020-10-31",
    "pairing_id": "tongxin-fengjia",
    "product": "chili",
    "milestones": [
        {"milestone_id": "planted", "name": "2,000 mu planted", "due_on": "2020-05-31"},
        {"milestone_id": "harvested", "name": "first harvest sold", "due_on": "2020-09-30"},
    ],
}


@pytest.fixture
def office():
    key = new_private_key()
    party = Party(pairing, "pairing-office:main")
    assert party.send(
        "pairing_office.registered",
        {"office_id": "main", "name": "Tongren pairing office", "public_key": public_key_of(key)},
        key,
    )[0]
    party.key = key
    return party


def test_a_pairing_its_support_and_a_project_with_milestones_are_recorded_and_audit_clean(office):
    assert office.send("pairing.registered", FENGJIA, office.key)[0]
    assert office.send("support.delivered", SEEDLINGS, office.key)[0]
    assert office.send("project.registered", CHILI, office.key)[0]
    assert office.send(
        "project.milestone_reached",
        {"project_id": "ketian-chili", "milestone_id": "planted", "reached_on": "2020-05-20", "evidence": "Ketian town survey"},
        office.key,
    )[0]
    types = [e.event_type for e in office.uow.envelopes]
    assert types == [
        "PairingOfficeRegistered",
        "PairingRegistered",
        "SupportDelivered",
        "ProjectRegistered",
        "ProjectMilestoneReached",
    ]
    support = office.uow.envelopes[2].payload
    assert (support["unit"], support["value_fen"]) == ("seedlings", 350_000_000)
    assert office.uow.envelopes[4].payload["due_on"] == "2020-05-31"
    assert check_signatures(office.audit_log()) == []


def test_support_for_a_pairing_never_registered_is_refused(office):
    accepted, reason = office.send("support.delivered", SEEDLINGS, office.key)
    assert not accepted and reason.startswith("payload.pairing_id: unknown pairing tongxin-fengjia")


def test_a_pairing_registered_twice_and_a_helped_village_without_its_township_are_refused(office):
    assert office.send("pairing.registered", FENGJIA, office.key)[0]
    assert (
        office.send("pairing.registered", FENGJIA, office.key)[1]
        == "payload.pairing_id: pairing tongxin-fengjia is already registered"
    )
    other = {**FENGJIA, "pairing_id": "p2", "helped_township": None}
    assert (
        office.send("pairing.registered", other, office.key)[1] == "payload.helped_township: a helped village names its township"
    )


def test_a_milestone_is_reached_once_and_only_one_the_project_has(office):
    office.send("pairing.registered", FENGJIA, office.key)
    office.send("project.registered", CHILI, office.key)
    reached = {"project_id": "ketian-chili", "milestone_id": "planted", "reached_on": "2020-05-20", "evidence": "survey"}
    assert office.send("project.milestone_reached", reached, office.key)[0]
    assert office.send("project.milestone_reached", reached, office.key)[1].endswith(
        "milestone planted of ketian-chili was already reached"
    )
    accepted, reason = office.send("project.milestone_reached", {**reached, "milestone_id": "sold-abroad"}, office.key)
    assert not accepted and reason == "payload.milestone_id: project ketian-chili has no milestone sold-abroad"


def test_a_line_not_signed_by_the_registered_office_is_refused():
    office, key = Party(pairing, "pairing-office:main"), new_private_key()
    accepted, reason = office.send("pairing.registered", FENGJIA, key)
    assert not accepted
    assert reason.startswith(
        "payload.office_id: unknown pairing-office main; a pairing office registers (pairing_office.registered)"
    )


def test_money_support_counts_its_quantity_in_fen_and_every_support_names_a_recipient():
    from pydantic import ValidationError

    from contracts.inputs import SupportDelivery

    with pytest.raises(ValidationError, match="quantity is the amount in fen and must equal value_fen"):
        SupportDelivery.model_validate({**SEEDLINGS, "kind": "money", "quantity": "100", "value_fen": 200})
    with pytest.raises(ValidationError, match="support goes to a cooperative"):
        SupportDelivery.model_validate({**SEEDLINGS, "to_village": None})


def test_a_milestone_due_after_its_project_is_refused_by_the_model():
    from pydantic import ValidationError

    from contracts.inputs import ProjectRegistration

    late = {**CHILI, "milestones": [{"milestone_id": "planted", "name": "planted", "due_on": "2020-11-30"}]}
    with pytest.raises(ValidationError, match="milestone planted is due after the project"):
        ProjectRegistration.model_validate(late)


def test_a_supervision_round_is_held_once_and_an_inspectors_problem_cannot_take_a_rules_id(office):
    assert office.send("supervision.round", {"round_id": "2020-q3", "as_of": "2020-09-30"}, office.key)[0]
    assert office.send("supervision.round", {"round_id": "2020-q3", "as_of": "2020-09-30"}, office.key)[1] == (
        "payload.round_id: round 2020-q3 was already held"
    )
    problem = {"problem_id": "unpaid-fill:F1", "township": "Ketian", "owner_team": "t", "subject": "s", "reason": "r"}
    accepted, reason = office.send("problem.opened", problem, office.key)
    assert not accepted and reason.startswith("payload.problem_id: ids with ':' are the rules' own")
    assert office.send("problem.rectified", {"problem_id": "unpaid-fill:F1", "action": "called the buyer"}, office.key)[0]
    assert office.send("problem.closed", {"problem_id": "unpaid-fill:F1", "reason": "paid", "evidence": "bank slip"}, office.key)[
        0
    ]
    assert [e.event_type for e in office.uow.envelopes][-4:] == [
        "SupervisionRoundHeld",
        "SupervisionRoundEvaluated",
        "ProblemRectified",
        "ProblemClosed",
    ]


def test_support_is_promised_once_for_a_registered_pairing(office):
    promise = {
        "promise_id": "sheds",
        "pairing_id": "tongxin-fengjia",
        "kind": "equipment",
        "quantity": "2",
        "value_fen": 600000,
        "due_on": "2020-08-31",
        "note": "two drying sheds",
    }
    assert office.send("support.promised", promise, office.key)[1].startswith(
        "payload.pairing_id: unknown pairing tongxin-fengjia"
    )
    office.send("pairing.registered", FENGJIA, office.key)
    assert office.send("support.promised", promise, office.key)[0]
    assert (
        office.send("support.promised", promise, office.key)[1]
        == "payload.promise_id: support promise sheds was already recorded"
    )
    assert office.uow.envelopes[-1].payload["unit"] == "pieces"
