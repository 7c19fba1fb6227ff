"""Published event schemas never change, and the compatibility check says why a change would break readers."""

import json
from typing import Literal

import pytest
from pydantic import Field

from contracts.cooperative import HarvestRecorded
from contracts.model import Contract
from contracts.registry import LATEST_VERSION, MODELS_BY_TYPE
from contracts.schemas import (INPUT_SCHEMA_DIR, SCHEMA_DIR, compatibility_problems, current_schemas, input_schemas, render,
                               schema_file_name)
from contracts.types import Identifier, Quantity

pytestmark = pytest.mark.unit

CURRENT = current_schemas()


def _advice(name: str, committed: dict, current: dict) -> str:
    problems = compatibility_problems(committed, current)
    if problems:
        event_type, version = name.split(".")[0], int(name.split(".")[1].removeprefix("v"))
        return (
            f"{name} differs from the model and would break readers of the published version: {problems}. "
            f"A published version never changes: add {event_type} v{version + 1} as a new model and an upcaster "
            f"from v{version} (events.upcasting.register), then run `farmlink contracts export`."
        )
    return (
        f"{name} differs from the model, but compatibly (compatibility_problems lists none): "
        "run `farmlink contracts export` and commit the file."
    )


# ---------------------------------------------------------------- committed files match the models


@pytest.mark.parametrize("name", sorted(CURRENT))
def test_the_committed_schema_equals_the_model(name):
    path = SCHEMA_DIR / name
    if not path.exists():
        pytest.fail(f"{name} is not committed: run `farmlink contracts export` and commit contracts/schemas/{name}")
    committed_text = path.read_text(encoding="utf-8")
    if committed_text != render(CURRENT[name]):
        pytest.fail(_advice(name, json.loads(committed_text), CURRENT[name]))


def test_every_event_model_has_a_committed_schema_file():
    committed = {path.name for path in SCHEMA_DIR.glob("*.json")}
    missing = sorted(set(CURRENT) - committed)
    assert not missing, f"no committed schema for {missing}: run `farmlink contracts export`"


def test_every_committed_schema_file_names_a_known_event_type_and_version():
    for path in SCHEMA_DIR.glob("*.json"):
        event_type, version, suffix = path.name.split(".")
        assert suffix == "json" and version.startswith("v"), path.name
        assert event_type in LATEST_VERSION, f"{path.name}: unknown event type {event_type}"
        assert 1 <= int(version.removeprefix("v")) <= LATEST_VERSION[event_type], path.name


def test_there_is_one_schema_per_registered_event_type_and_version():
    assert set(CURRENT) == {schema_file_name(event_type, version) for event_type, version in MODELS_BY_TYPE}


def test_a_schema_file_is_named_by_event_type_and_version():
    assert schema_file_name("HarvestRecorded", 2) == "HarvestRecorded.v2.json"


def test_a_rendered_schema_has_sorted_keys_non_ascii_as_is_and_one_trailing_newline():
    text = render({"b": 1, "a": "沿河"})
    assert text == '{\n  "a": "沿河",\n  "b": 1\n}\n'


def test_the_compatibility_mismatch_advice_tells_the_developer_what_to_do():
    old = {"properties": {"a": {"type": "string"}}, "required": ["a"]}
    assert "run `farmlink contracts export`" in _advice("X.v1.json", old, {**old, "properties": {**old["properties"], "b": {"type": "string"}}})
    breaking = _advice("X.v1.json", old, {"properties": {}, "required": []})
    assert "add X v2" in breaking and "upcaster" in breaking and "a: field removed" in breaking


# ---------------------------------------------------------------- compatibility_problems, hand-written schemas


def obj(properties: dict, required: list[str] = (), **more) -> dict:
    return {"type": "object", "properties": properties, "required": list(required), **more}


STRING = {"type": "string"}
INTEGER = {"type": "integer"}
V1 = obj({"lot_id": STRING, "grade": {"type": "string", "enum": ["A", "B", "C"]}, "note": STRING}, ["lot_id", "grade"])


def test_an_unchanged_schema_is_compatible():
    assert compatibility_problems(V1, V1) == []


def test_adding_an_optional_field_is_compatible():
    assert compatibility_problems(V1, obj({**V1["properties"], "village": STRING}, V1["required"])) == []


def test_a_required_field_becoming_optional_is_compatible():
    assert compatibility_problems(V1, obj(V1["properties"], ["lot_id"])) == []


def test_adding_an_enum_value_is_compatible():
    grade = {"type": "string", "enum": ["A", "B", "C", "D"]}
    assert compatibility_problems(V1, obj({**V1["properties"], "grade": grade}, V1["required"])) == []


def test_allowing_null_as_well_is_compatible():
    note = {"anyOf": [STRING, {"type": "null"}]}
    assert compatibility_problems(V1, obj({**V1["properties"], "note": note}, V1["required"])) == []


def test_removing_a_field_is_reported():
    properties = {name: node for name, node in V1["properties"].items() if name != "note"}
    assert compatibility_problems(V1, obj(properties, V1["required"])) == ["note: field removed"]


def test_an_optional_field_becoming_required_is_reported():
    assert compatibility_problems(V1, obj(V1["properties"], [*V1["required"], "note"])) == ["note: field newly required"]


def test_a_new_required_field_is_reported():
    new = obj({**V1["properties"], "village": STRING}, [*V1["required"], "village"])
    assert compatibility_problems(V1, new) == ["village: field newly required"]


def test_changing_a_fields_type_is_reported():
    new = obj({**V1["properties"], "lot_id": INTEGER}, V1["required"])
    assert compatibility_problems(V1, new) == ["lot_id: type changed from ['string'] to ['integer']"]


def test_removing_an_enum_value_is_reported():
    new = obj({**V1["properties"], "grade": {"type": "string", "enum": ["A", "B"]}}, V1["required"])
    assert compatibility_problems(V1, new) == ["grade: values removed ['C']"]


def test_a_change_inside_a_nested_object_is_reported_with_its_path():
    place_v1 = obj({"county": STRING, "village": STRING}, ["county"])
    place_v2 = obj({"county": STRING}, ["county"])
    old = obj({"place": {"$ref": "#/$defs/Place"}}, ["place"], **{"$defs": {"Place": place_v1}})
    new = obj({"place": {"$ref": "#/$defs/Place"}}, ["place"], **{"$defs": {"Place": place_v2}})
    assert compatibility_problems(old, new) == ["place.village: field removed"]


def test_every_kind_of_break_is_reported_at_once():
    new = obj({"lot_id": INTEGER, "grade": {"type": "string", "enum": ["A"]}, "village": STRING}, ["lot_id", "grade", "village"])
    assert sorted(compatibility_problems(V1, new)) == [
        "grade: values removed ['B', 'C']",
        "lot_id: type changed from ['string'] to ['integer']",
        "note: field removed",
        "village: field newly required",
    ]


# ---------------------------------------------------------------- compatibility_problems, real pydantic models


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
    village: str | None = None


class WithoutInspector(Contract):
    lot_id: Identifier
    grade: Literal["A", "B", "C"]
    quantity: Quantity


class WithRequiredVillage(Contract):
    lot_id: Identifier
    grade: Literal["A", "B", "C"]
    quantity: Quantity
    inspector: str | None = None
    village: str


class WithIntegerQuantity(Contract):
    lot_id: Identifier
    grade: Literal["A", "B", "C"]
    quantity: int
    inspector: str | None = None


class WithoutGradeC(Contract):
    lot_id: Identifier
    grade: Literal["A", "B"]
    quantity: Quantity
    inspector: str | None = None


def problems(new: type[Contract]) -> list[str]:
    return compatibility_problems(LotGradedV1.model_json_schema(), new.model_json_schema())


def test_a_model_given_an_optional_field_stays_compatible():
    assert problems(WithOptionalField) == []


def test_a_model_that_drops_a_field_is_reported():
    assert problems(WithoutInspector) == ["inspector: field removed"]


def test_a_model_with_a_new_required_field_is_reported():
    assert problems(WithRequiredVillage) == ["village: field newly required"]


def test_a_model_whose_quantity_becomes_an_int_is_reported():
    assert problems(WithIntegerQuantity) == ["quantity: type changed from ['number', 'string'] to ['integer']"]


def test_a_model_that_drops_a_grade_is_reported():
    assert problems(WithoutGradeC) == ["grade: values removed ['C']"]


def test_every_current_model_is_compatible_with_itself():
    for name, schema in CURRENT.items():
        assert compatibility_problems(schema, schema) == [], name


class ContributionWithoutPoorFlag(Contract):
    household_id: Identifier
    quantity: Quantity


class HarvestRecordedWithoutPoorFlag(HarvestRecorded):
    contributions: tuple[ContributionWithoutPoorFlag, ...] = Field(min_length=1)


def test_removing_a_field_from_the_objects_in_a_list_is_reported():
    old, new = HarvestRecorded.model_json_schema(), HarvestRecordedWithoutPoorFlag.model_json_schema()
    assert compatibility_problems(old, new) == ["contributions.registered_poor: field removed"]


class Place(Contract):
    county: str
    village: str


class PlaceWithoutVillage(Contract):
    county: str


class WithPlace(Contract):
    place: Place


class WithPlaceWithoutVillage(Contract):
    place: PlaceWithoutVillage


class WithOptionalPlace(Contract):
    place: Place | None = None


class WithOptionalPlaceWithoutVillage(Contract):
    place: PlaceWithoutVillage | None = None


def test_a_field_removed_from_a_nested_model_is_reported():
    old, new = WithPlace.model_json_schema(), WithPlaceWithoutVillage.model_json_schema()
    assert compatibility_problems(old, new) == ["place.village: field removed"]


def test_removing_a_field_from_an_optional_nested_model_is_reported():
    old, new = WithOptionalPlace.model_json_schema(), WithOptionalPlaceWithoutVillage.model_json_schema()
    assert compatibility_problems(old, new) == ["place.village: field removed"]


def test_making_a_nested_model_optional_is_compatible():
    assert compatibility_problems(WithPlace.model_json_schema(), WithOptionalPlace.model_json_schema()) == []


# ---------------------------------------------------------------- inputs and receipts, for producers


@pytest.mark.parametrize("name", sorted(input_schemas()))
def test_the_committed_input_schema_equals_the_model(name):
    path = INPUT_SCHEMA_DIR / name
    assert path.exists(), f"{name} is not committed: run `farmlink contracts export` and commit contracts/schemas/inputs/{name}"
    assert path.read_text(encoding="utf-8") == render(input_schemas()[name]), f"run `farmlink contracts export`: {name} differs"


def test_no_committed_input_schema_names_an_unknown_input():
    assert {path.name for path in INPUT_SCHEMA_DIR.glob("*.json")} == set(input_schemas())
