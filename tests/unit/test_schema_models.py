"""The compatibility check on real pydantic models (extra="forbid": closed schemas), nested models and lists included."""

from typing import Literal

import pytest
from pydantic import Field

from contracts.compatibility import Mode, compatibility_problems
from contracts.cooperative import HarvestRecorded
from contracts.model import Contract
from contracts.types import Identifier, Quantity
from tests.unit.schema_builders import BACKWARD, FORWARD, FULL

pytestmark = pytest.mark.unit


# ---------------------------------------------------------------- real pydantic models (extra="forbid": closed schemas)


class LotGradedV1(Contract):
    lot_id: Identifier
    grade: Literal["A", "B", "C"]
    quantity: Quantity
    inspector: str | None = None


class WithOptionalField(Contract):
    lot_id: Identifier
    grade: Literal["A", "B", "C"]
    quantity: Quantity
    inspector: str | None = None
    desk_id: Identifier | None = None


class WithoutInspector(Contract):
    lot_id: Identifier
    grade: Literal["A", "B", "C"]
    quantity: Quantity


class WithIntegerQuantity(Contract):
    lot_id: Identifier
    grade: Literal["A", "B", "C"]
    quantity: int
    inspector: str | None = None


class WithGradeD(Contract):
    lot_id: Identifier
    grade: Literal["A", "B", "C", "D"]
    quantity: Quantity
    inspector: str | None = None


class WithShorterLotId(Contract):
    lot_id: str = Field(min_length=1, max_length=64, pattern=r"^[^\s\x00-\x1f]+$")
    grade: Literal["A", "B", "C"]
    quantity: Quantity
    inspector: str | None = None


def model_problems(new: type[Contract], mode: Mode) -> list[str]:
    return compatibility_problems(LotGradedV1.model_json_schema(), new.model_json_schema(), mode)


def test_the_contract_base_makes_closed_schemas():
    assert LotGradedV1.model_json_schema()["additionalProperties"] is False


def test_an_input_payload_gaining_an_optional_field_keeps_backward_but_would_break_an_event_s_full():
    assert model_problems(WithOptionalField, BACKWARD) == []
    assert model_problems(WithOptionalField, FULL) == [
        "$.desk_id: field added, and the old schema is closed (additionalProperties false): "
        "its readers reject data that holds it [breaks FORWARD]"
    ]


def test_a_model_that_drops_an_optional_field_breaks_backward():
    assert model_problems(WithoutInspector, FULL) == [
        "$.inspector: field removed from a closed schema (additionalProperties false): "
        "data written under the old schema may hold it [breaks BACKWARD]"
    ]


def test_a_model_whose_quantity_becomes_an_int_breaks_backward():
    backward = model_problems(WithIntegerQuantity, BACKWARD)
    assert "$.quantity: type string no longer allowed (the new schema allows integer) [breaks BACKWARD]" in backward
    assert "$.quantity: type number no longer allowed (the new schema allows integer) [breaks BACKWARD]" in backward


def test_a_model_that_adds_a_grade_breaks_forward_only():
    assert model_problems(WithGradeD, BACKWARD) == []
    assert model_problems(WithGradeD, FORWARD) == ['$.grade: enum value "D" added [breaks FORWARD]']


def test_a_model_with_a_shorter_identifier_breaks_backward_only():
    assert model_problems(WithShorterLotId, FULL) == ["$.lot_id: maxLength tightened from 128 to 64 [breaks BACKWARD]"]


class ContributionWithoutPoorFlag(Contract):
    household_id: Identifier
    quantity: Quantity


class HarvestRecordedWithoutPoorFlag(HarvestRecorded):
    contributions: tuple[ContributionWithoutPoorFlag, ...] = Field(min_length=1)


def test_removing_a_field_from_the_objects_in_a_list_is_reported_at_the_items_path():
    old, new = HarvestRecorded.model_json_schema(), HarvestRecordedWithoutPoorFlag.model_json_schema()
    assert compatibility_problems(old, new, FULL) == [
        "$.contributions[*].registered_poor: field removed from a closed schema (additionalProperties false): "
        "data written under the old schema may hold it [breaks BACKWARD]",
        "$.contributions[*].registered_poor: required field removed [breaks FORWARD]",
    ]


class Place(Contract):
    county: str
    village: str


class PlaceWithoutVillage(Contract):
    county: str


class WithPlace(Contract):
    place: Place


class WithOptionalPlace(Contract):
    place: Place | None = None


class WithOptionalPlaceWithoutVillage(Contract):
    place: PlaceWithoutVillage | None = None


def test_removing_a_field_from_an_optional_nested_model_is_reported_at_its_path():
    old, new = WithOptionalPlace.model_json_schema(), WithOptionalPlaceWithoutVillage.model_json_schema()
    assert compatibility_problems(old, new, FULL) == [
        "$.place.village: field removed from a closed schema (additionalProperties false): "
        "data written under the old schema may hold it [breaks BACKWARD]",
        "$.place.village: required field removed [breaks FORWARD]",
    ]


def test_making_a_nested_model_optional_breaks_forward_only():
    assert compatibility_problems(WithPlace.model_json_schema(), WithOptionalPlace.model_json_schema(), BACKWARD) == []
    assert compatibility_problems(WithPlace.model_json_schema(), WithOptionalPlace.model_json_schema(), FORWARD) == [
        "$.place: required field became optional [breaks FORWARD]",
        "$.place: type null newly allowed (the old schema allows object) [breaks FORWARD]",
    ]
