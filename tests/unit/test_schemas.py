"""Published schemas keep their declared compatibility mode (BACKWARD, FORWARD, FULL), and the check says
which change breaks which readers, at which path."""

import json
from typing import Literal

import pytest
from pydantic import Field

from contracts import schemas
from contracts.compatibility import Mode, compatibility_problems
from contracts.cooperative import HarvestRecorded
from contracts.model import Contract
from contracts.registry import LATEST_VERSION, MODELS_BY_TYPE
from contracts.schemas import (
    INPUT_SCHEMA_DIR,
    SCHEMA_DIR,
    BreakingSchemaChange,
    breaking_change_report,
    breaking_changes,
    current_schemas,
    declared_mode,
    export,
    input_schemas,
    model_schemas,
    published_schemas,
    render,
    schema_file_name,
)
from contracts.types import Identifier, Quantity

pytestmark = pytest.mark.unit

CURRENT = current_schemas()
PUBLISHED = published_schemas()

BACKWARD, FORWARD, FULL = Mode.BACKWARD, Mode.FORWARD, Mode.FULL


def _advice(name: str, committed: dict, current: dict) -> str:
    """Why a committed file differs from its model, and what to do (`name` as published: "inputs/..." for inputs)."""
    problems = compatibility_problems(committed, current, declared_mode(name))
    if problems:
        return breaking_change_report(name, problems)
    return (
        f"contracts/schemas/{name} differs from the model, but keeps its declared mode {declared_mode(name)}: "
        "run `farmlink contracts export` and commit the file."
    )


# ---------------------------------------------------------------- the declared modes


def test_events_are_declared_full():
    assert declared_mode("HarvestRecorded.v1.json") is FULL
    assert declared_mode("MarketPriceObserved.v2.json") is FULL


def test_input_payloads_and_the_input_envelope_are_declared_backward():
    assert declared_mode("inputs/harvest.recorded.v1.json") is BACKWARD
    assert declared_mode("inputs/InputMessage.v1.json") is BACKWARD


def test_receipts_are_declared_forward_in_every_version():
    assert declared_mode("inputs/Receipt.v1.json") is FORWARD
    assert declared_mode("inputs/Receipt.v2.json") is FORWARD


def test_a_per_file_override_wins_over_a_per_schema_one_and_over_the_default(monkeypatch):
    monkeypatch.setitem(schemas.MODE_OVERRIDES, "OfferOpened", BACKWARD)
    monkeypatch.setitem(schemas.MODE_OVERRIDES, "OfferOpened.v2.json", FORWARD)
    assert declared_mode("OfferOpened.v1.json") is BACKWARD
    assert declared_mode("OfferOpened.v2.json") is FORWARD
    assert declared_mode("OfferClosed.v1.json") is FULL


def test_full_is_backward_and_forward():
    assert FULL.halves == (BACKWARD, FORWARD) and BACKWARD.halves == (BACKWARD,) and FORWARD.halves == (FORWARD,)


# ---------------------------------------------------------------- committed files against the models


@pytest.mark.parametrize("name", sorted(PUBLISHED))
def test_every_published_schema_keeps_its_declared_mode_against_its_current_model(name):
    breaking = breaking_changes({name: PUBLISHED[name]}, model_schemas())
    if breaking:
        pytest.fail(breaking_change_report(name, breaking[name]))


@pytest.mark.parametrize("name", sorted(CURRENT))
def test_the_committed_schema_equals_the_model(name):
    path = SCHEMA_DIR / name
    if not path.exists():
        pytest.fail(f"{name} is not committed: run `farmlink contracts export` and commit contracts/schemas/{name}")
    committed_text = path.read_text(encoding="utf-8")
    if committed_text != render(CURRENT[name]):
        pytest.fail(_advice(name, json.loads(committed_text), CURRENT[name]))


@pytest.mark.parametrize("name", sorted(input_schemas()))
def test_the_committed_input_schema_equals_the_model(name):
    path = INPUT_SCHEMA_DIR / name
    assert path.exists(), f"{name} is not committed: run `farmlink contracts export` and commit contracts/schemas/inputs/{name}"
    committed_text = path.read_text(encoding="utf-8")
    if committed_text != render(input_schemas()[name]):
        pytest.fail(_advice(f"inputs/{name}", json.loads(committed_text), input_schemas()[name]))


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


def test_no_committed_input_schema_names_an_unknown_input():
    assert {path.name for path in INPUT_SCHEMA_DIR.glob("*.json")} == set(input_schemas())


def test_a_schema_file_is_named_by_event_type_and_version():
    assert schema_file_name("HarvestRecorded", 2) == "HarvestRecorded.v2.json"


def test_a_rendered_schema_has_sorted_keys_non_ascii_as_is_and_one_trailing_newline():
    text = render({"b": 1, "a": "沿河"})
    assert text == '{\n  "a": "沿河",\n  "b": 1\n}\n'


def test_every_current_model_is_fully_compatible_with_itself():
    for name, schema in model_schemas().items():
        assert compatibility_problems(schema, schema, FULL) == [], name


# ---------------------------------------------------------------- published versus current: which files are compared


def obj(properties: dict, required: list[str] = (), **more) -> dict:
    return {"type": "object", "properties": properties, "required": list(required), **more}


def closed(properties: dict, required: list[str] = (), **more) -> dict:
    return obj(properties, required, additionalProperties=False, **more)


STRING = {"type": "string"}
INTEGER = {"type": "integer"}
GRADE = {"type": "string", "enum": ["A", "B", "C"]}
LOT = closed({"lot_id": STRING, "grade": GRADE}, ["lot_id", "grade"])
LOT_WITHOUT_C = closed({"lot_id": STRING, "grade": {"type": "string", "enum": ["A", "B"]}}, ["lot_id", "grade"])


def test_a_new_version_or_input_type_without_a_published_predecessor_is_not_a_breaking_change():
    published = {"Lot.v1.json": LOT}
    current = {"Lot.v1.json": LOT, "Lot.v2.json": LOT_WITHOUT_C, "inputs/lot.graded.v1.json": LOT_WITHOUT_C}
    assert breaking_changes(published, current) == {}


def test_a_published_version_whose_model_is_gone_is_history_and_accepted():
    assert breaking_changes({"Lot.v1.json": LOT, "Lot.v2.json": LOT_WITHOUT_C}, {"Lot.v2.json": LOT_WITHOUT_C}) == {}


def test_a_breaking_change_to_a_published_event_names_the_file_path_mode_and_a_new_version_with_an_upcaster():
    breaking = breaking_changes({"Lot.v1.json": LOT}, {"Lot.v1.json": LOT_WITHOUT_C})
    assert breaking == {"Lot.v1.json": ['$.grade: enum value "C" removed [breaks BACKWARD]']}
    report = breaking_change_report("Lot.v1.json", breaking["Lot.v1.json"])
    assert report.startswith(
        "contracts/schemas/Lot.v1.json: the current model breaks the published schema under its declared mode FULL"
    )
    assert '  - $.grade: enum value "C" removed [breaks BACKWARD]' in report
    assert "publish a new version with an upcaster (Lot v2 as a new model, and an upcaster from v1" in report


def test_a_breaking_change_to_a_published_input_names_an_optional_field_or_a_new_input_type():
    wider = closed({"lot_id": STRING, "grade": {"type": "string", "enum": ["A", "B", "C", "D"]}}, ["lot_id", "grade"])
    name = "inputs/lot.graded.v1.json"
    assert breaking_changes({name: LOT}, {name: wider}) == {}, "an input only has to stay BACKWARD compatible"
    breaking = breaking_changes({name: LOT}, {name: LOT_WITHOUT_C})
    report = breaking_change_report(name, breaking[name])
    assert "contracts/schemas/inputs/lot.graded.v1.json" in report and "declared mode BACKWARD" in report
    assert '$.grade: enum value "C" removed [breaks BACKWARD]' in report
    assert "add an optional field or add a new input type instead" in report


def test_a_breaking_change_to_the_receipt_fails_forward():
    with_reason = closed({"status": STRING, "reason": STRING}, ["status"])
    name = "inputs/Receipt.v1.json"
    assert breaking_changes({name: with_reason}, {name: closed({"status": STRING}, ["status"])}) == {}
    breaking = breaking_changes({name: closed({"status": STRING}, ["status"])}, {name: with_reason})
    assert list(breaking) == [name] and all("[breaks FORWARD]" in problem for problem in breaking[name])
    assert "Receipt v2" in breaking_change_report(name, breaking[name])


def test_the_mismatch_advice_says_export_when_the_difference_keeps_the_declared_mode():
    described = {**LOT, "description": "a graded lot"}
    assert "run `farmlink contracts export`" in _advice("Lot.v1.json", LOT, described)
    assert "upcaster" in _advice("Lot.v1.json", LOT, LOT_WITHOUT_C)


def test_export_writes_every_schema_into_an_empty_directory(tmp_path):
    written = export(tmp_path)
    assert {path.relative_to(tmp_path).as_posix() for path in written} == set(model_schemas())
    assert (tmp_path / "inputs" / "Receipt.v1.json").read_text(encoding="utf-8") == render(input_schemas()["Receipt.v1.json"])


def test_export_refuses_to_overwrite_a_published_schema_with_one_that_breaks_its_mode(tmp_path):
    published = json.loads(json.dumps(CURRENT["HarvestRecorded.v1.json"]))
    published["properties"]["grade"]["enum"].append("D")
    (tmp_path / "HarvestRecorded.v1.json").write_text(render(published), encoding="utf-8")
    with pytest.raises(BreakingSchemaChange) as refused:
        export(tmp_path)
    assert "contracts/schemas/HarvestRecorded.v1.json" in str(refused.value)
    assert '$.grade: enum value "D" removed [breaks BACKWARD]' in str(refused.value)
    assert (tmp_path / "HarvestRecorded.v1.json").read_text(encoding="utf-8") == render(published)
    assert sorted(path.name for path in tmp_path.iterdir()) == ["HarvestRecorded.v1.json"], "nothing written"
    export(tmp_path, allow_breaking=True)
    assert (tmp_path / "HarvestRecorded.v1.json").read_text(encoding="utf-8") == render(CURRENT["HarvestRecorded.v1.json"])


def test_export_overwrites_a_published_schema_with_a_compatible_one(tmp_path):
    published = {**CURRENT["HarvestRecorded.v1.json"], "description": "an older description"}
    (tmp_path / "HarvestRecorded.v1.json").write_text(render(published), encoding="utf-8")
    export(tmp_path)
    assert (tmp_path / "HarvestRecorded.v1.json").read_text(encoding="utf-8") == render(CURRENT["HarvestRecorded.v1.json"])


# ---------------------------------------------------------------- the issue's examples, on small hand-written schemas


def problems(old: dict, new: dict, mode: Mode) -> list[str]:
    return compatibility_problems(old, new, mode)


def test_an_added_enum_value_breaks_forward_and_not_backward():
    new = closed({"lot_id": STRING, "grade": {"type": "string", "enum": ["A", "B", "C", "D"]}}, ["lot_id", "grade"])
    assert problems(LOT, new, BACKWARD) == []
    assert problems(LOT, new, FORWARD) == ['$.grade: enum value "D" added [breaks FORWARD]']
    assert problems(LOT, new, FULL) == ['$.grade: enum value "D" added [breaks FORWARD]']


def test_a_tightened_max_length_breaks_backward_and_not_forward():
    old, new = closed({"county": {"type": "string", "maxLength": 200}}), closed({"county": {"type": "string", "maxLength": 100}})
    assert problems(old, new, BACKWARD) == ["$.county: maxLength tightened from 200 to 100 [breaks BACKWARD]"]
    assert problems(old, new, FORWARD) == []


def test_a_new_field_in_a_closed_schema_breaks_forward_and_not_backward():
    new = closed({**LOT["properties"], "village": STRING}, LOT["required"])
    assert problems(LOT, new, BACKWARD) == []
    assert problems(LOT, new, FORWARD) == [
        "$.village: field added, and the old schema is closed (additionalProperties false): "
        "its readers reject data that holds it [breaks FORWARD]"
    ]


def test_a_new_optional_field_in_an_open_schema_is_forward_compatible_and_breaks_backward_as_in_schema_registry():
    # Old data under an open schema may already hold "village" with any value, which the new "village" rejects
    # (Schema Registry: PROPERTY_ADDED_TO_OPEN_CONTENT_MODEL).
    old = obj({"lot_id": STRING}, ["lot_id"])
    new = obj({"lot_id": STRING, "village": STRING}, ["lot_id"])
    assert problems(old, new, FORWARD) == []
    assert problems(old, new, BACKWARD) == [
        "$.village: field added to an open schema (additionalProperties not false): "
        "data written under the old schema may already hold it with any value [breaks BACKWARD]"
    ]


def test_a_new_optional_field_in_an_open_schema_is_fully_compatible_when_it_accepts_what_the_old_schema_let_in():
    old = obj({"lot_id": STRING}, ["lot_id"], additionalProperties=STRING)
    assert problems(old, obj({"lot_id": STRING, "village": STRING}, ["lot_id"], additionalProperties=STRING), FULL) == []
    assert problems(obj({"lot_id": STRING}), obj({"lot_id": STRING, "note": {}}), FULL) == []


def test_full_reports_both_halves_each_with_its_mode():
    old, new = closed({"note": {"type": "string", "pattern": "^a"}}), closed({"note": {"type": "string", "pattern": "^b"}})
    found = problems(old, new, FULL)
    assert [problem.rsplit(" ", 1)[-1] for problem in found] == ["BACKWARD]", "FORWARD]"]
    assert all(problem.startswith('$.note: cannot prove compatible: pattern changed from "^a" to "^b"') for problem in found)


# ---------------------------------------------------------------- the other rules


def both(old: dict, new: dict) -> tuple[list[str], list[str]]:
    """(BACKWARD problems, FORWARD problems)."""
    return problems(old, new, BACKWARD), problems(old, new, FORWARD)


def test_an_unchanged_schema_is_fully_compatible():
    assert problems(LOT, LOT, FULL) == []


def test_changed_titles_descriptions_and_defaults_are_fully_compatible():
    old = closed({"note": {"type": "string", "title": "Note", "default": "x"}}, description="old")
    new = closed({"note": {"type": "string", "title": "Remark", "default": "y", "examples": ["z"]}}, description="new")
    assert problems(old, new, FULL) == []


def test_a_removed_enum_value_breaks_backward_and_not_forward():
    assert both(LOT, LOT_WITHOUT_C) == (['$.grade: enum value "C" removed [breaks BACKWARD]'], [])


def test_an_optional_field_becoming_required_breaks_backward_and_not_forward():
    optional = closed({"note": STRING})
    assert both(optional, closed({"note": STRING}, ["note"])) == (["$.note: field became required [breaks BACKWARD]"], [])


def test_a_required_field_becoming_optional_breaks_forward_and_not_backward():
    old, new = closed({"note": STRING}, ["note"]), closed({"note": STRING})
    assert both(old, new) == ([], ["$.note: required field became optional [breaks FORWARD]"])


def test_a_new_required_field_in_a_closed_schema_breaks_both():
    backward, forward = both(LOT, closed({**LOT["properties"], "village": STRING}, [*LOT["required"], "village"]))
    assert backward == ["$.village: new required field [breaks BACKWARD]"]
    assert forward == [
        "$.village: field added, and the old schema is closed (additionalProperties false): "
        "its readers reject data that holds it [breaks FORWARD]"
    ]


def test_a_required_field_removed_from_a_closed_schema_breaks_both():
    backward, forward = both(LOT, closed({"lot_id": STRING}, ["lot_id"]))
    assert backward == [
        "$.grade: field removed from a closed schema (additionalProperties false): "
        "data written under the old schema may hold it [breaks BACKWARD]"
    ]
    assert forward == ["$.grade: required field removed [breaks FORWARD]"]


def test_an_optional_field_removed_from_a_closed_schema_breaks_backward_and_not_forward():
    backward, forward = both(closed({"lot_id": STRING, "note": STRING}), closed({"lot_id": STRING}))
    assert backward == [
        "$.note: field removed from a closed schema (additionalProperties false): "
        "data written under the old schema may hold it [breaks BACKWARD]"
    ]
    assert forward == []


def test_closing_an_open_schema_breaks_backward_and_opening_a_closed_one_breaks_forward():
    open_lot = {key: value for key, value in LOT.items() if key != "additionalProperties"}
    assert both(open_lot, LOT) == (
        ["$.*: the old schema accepts undeclared fields, the new is closed (additionalProperties false) [breaks BACKWARD]"],
        [],
    )
    assert both(LOT, open_lot) == (
        [],
        ["$.*: the new schema accepts undeclared fields, the old is closed (additionalProperties false) [breaks FORWARD]"],
    )


def test_allowing_null_as_well_breaks_forward_and_dropping_it_breaks_backward():
    plain, nullable = closed({"note": STRING}), closed({"note": {"anyOf": [STRING, {"type": "null"}]}})
    assert both(plain, nullable) == ([], ["$.note: type null newly allowed (the old schema allows string) [breaks FORWARD]"])
    assert both(nullable, plain) == (["$.note: type null no longer allowed (the new schema allows string) [breaks BACKWARD]"], [])


def test_a_narrowed_type_breaks_backward_and_a_widened_type_breaks_forward():
    number, integer = closed({"kg": {"type": "number"}}), closed({"kg": INTEGER})
    assert both(number, integer) == (
        ["$.kg: type number no longer allowed (the new schema allows integer) [breaks BACKWARD]"],
        [],
    )
    assert both(integer, number) == ([], ["$.kg: type number newly allowed (the old schema allows integer) [breaks FORWARD]"])


def test_a_changed_type_breaks_both():
    assert both(closed({"lot_id": STRING}), closed({"lot_id": INTEGER})) == (
        ["$.lot_id: type string no longer allowed (the new schema allows integer) [breaks BACKWARD]"],
        ["$.lot_id: type integer newly allowed (the old schema allows string) [breaks FORWARD]"],
    )


def test_a_widened_max_length_breaks_forward_and_a_new_max_length_breaks_backward():
    short, long = closed({"note": {"type": "string", "maxLength": 10}}), closed({"note": {"type": "string", "maxLength": 20}})
    assert both(short, long) == ([], ["$.note: maxLength widened from 10 to 20 [breaks FORWARD]"])
    assert both(closed({"note": STRING}), short) == (["$.note: maxLength tightened from none to 10 [breaks BACKWARD]"], [])


def test_a_larger_min_length_breaks_backward_and_a_smaller_one_breaks_forward():
    one, three = closed({"note": {"type": "string", "minLength": 1}}), closed({"note": {"type": "string", "minLength": 3}})
    assert both(one, three) == (["$.note: minLength tightened from 1 to 3 [breaks BACKWARD]"], [])
    assert both(three, one) == ([], ["$.note: minLength widened from 3 to 1 [breaks FORWARD]"])


def test_a_lower_maximum_or_a_higher_minimum_breaks_backward():
    old = closed({"price": {"type": "number", "minimum": 0, "maximum": 100}})
    new = closed({"price": {"type": "number", "minimum": 1, "maximum": 50}})
    assert both(old, new) == (
        [
            "$.price: minimum tightened from >= 0 to >= 1 [breaks BACKWARD]",
            "$.price: maximum tightened from <= 100 to <= 50 [breaks BACKWARD]",
        ],
        [],
    )


def test_an_exclusive_bound_is_tighter_than_the_inclusive_one_at_the_same_value():
    inclusive, exclusive = (
        closed({"price": {"type": "number", "minimum": 0}}),
        closed({"price": {"type": "number", "exclusiveMinimum": 0}}),
    )
    assert both(inclusive, exclusive) == (["$.price: minimum tightened from >= 0 to > 0 [breaks BACKWARD]"], [])
    assert both(exclusive, inclusive) == ([], ["$.price: minimum widened from > 0 to >= 0 [breaks FORWARD]"])


def test_for_integers_greater_than_zero_is_at_least_one():
    assert (
        problems(
            closed({"n": {"type": "integer", "exclusiveMinimum": 0}}), closed({"n": {"type": "integer", "minimum": 1}}), FULL
        )
        == []
    )


def test_a_dropped_bound_breaks_forward():
    assert both(closed({"n": {"type": "integer", "maximum": 9}}), closed({"n": INTEGER})) == (
        [],
        ["$.n: maximum widened from <= 9 to none [breaks FORWARD]"],
    )


def test_a_multiple_of_must_divide_the_old_one():
    cents, tenths = closed({"x": {"type": "number", "multipleOf": 0.01}}), closed({"x": {"type": "number", "multipleOf": 0.1}})
    assert both(tenths, cents) == ([], ["$.x: multipleOf widened from 0.1 to 0.01 [breaks FORWARD]"])
    assert both(cents, tenths) == (["$.x: multipleOf tightened from 0.01 to 0.1 [breaks BACKWARD]"], [])


def test_a_pattern_added_breaks_backward_removed_breaks_forward_and_changed_cannot_be_proven_either_way():
    free, patterned = closed({"id": STRING}), closed({"id": {"type": "string", "pattern": "^[a-z]+$"}})
    assert both(free, patterned) == (
        ['$.id: pattern "^[a-z]+$" added: a value the old schema allows need not match it [breaks BACKWARD]'],
        [],
    )
    assert both(patterned, free) == (
        [],
        ['$.id: pattern "^[a-z]+$" removed: a value the new schema allows need not match it [breaks FORWARD]'],
    )
    other = closed({"id": {"type": "string", "pattern": "^[a-z]*$"}})
    backward, forward = both(patterned, other)
    assert backward == [
        '$.id: cannot prove compatible: pattern changed from "^[a-z]+$" to "^[a-z]*$" (patterns are compared '
        "as text: any change breaks both BACKWARD and FORWARD) [breaks BACKWARD]"
    ]
    assert len(forward) == 1 and forward[0].endswith("[breaks FORWARD]")


def test_a_format_added_breaks_backward():
    assert both(closed({"day": STRING}), closed({"day": {"type": "string", "format": "date"}})) == (
        ['$.day: format "date" added: a value the old schema allows need not match it [breaks BACKWARD]'],
        [],
    )


def test_a_changed_const_breaks_both():
    assert both(closed({"kind": {"const": "lot"}}), closed({"kind": {"const": "batch"}})) == (
        ['$.kind: enum value "lot" removed [breaks BACKWARD]'],
        ['$.kind: enum value "batch" added [breaks FORWARD]'],
    )


def test_an_enum_value_the_other_side_rejects_for_another_reason_is_named_with_the_reason():
    old = closed({"code": {"type": "string", "enum": ["AB", "ABC"]}})
    new = closed({"code": {"type": "string", "maxLength": 2}})
    assert both(old, new)[0] == [
        '$.code: value "ABC", allowed by the old schema, is rejected by the new: longer than maxLength 2 [breaks BACKWARD]'
    ]


def test_restricting_a_free_string_to_an_enum_breaks_backward_and_the_reverse_breaks_forward():
    free, listed = closed({"grade": STRING}), closed({"grade": GRADE})
    assert both(free, listed) == (
        ['$.grade: values restricted to ["A", "B", "C"] (the old schema allowed any string) [breaks BACKWARD]'],
        [],
    )
    assert both(listed, free) == (
        [],
        ['$.grade: restriction to ["A", "B", "C"] dropped (the new schema allows any string) [breaks FORWARD]'],
    )


def test_a_change_to_the_items_of_a_list_is_reported_at_the_items_path():
    old = closed({"tags": {"type": "array", "items": {"type": "string", "maxLength": 20}}})
    new = closed({"tags": {"type": "array", "items": {"type": "string", "maxLength": 10}, "minItems": 1}})
    assert both(old, new) == (
        [
            "$.tags: minItems tightened from none to 1 [breaks BACKWARD]",
            "$.tags[*]: maxLength tightened from 20 to 10 [breaks BACKWARD]",
        ],
        [],
    )


def test_a_change_inside_a_nested_object_behind_a_ref_is_reported_with_its_path():
    place_v1 = closed({"county": STRING, "village": STRING}, ["county"])
    place_v2 = closed({"county": STRING}, ["county"])
    old = closed({"place": {"$ref": "#/$defs/Place"}}, ["place"], **{"$defs": {"Place": place_v1}})
    new = closed({"place": {"$ref": "#/$defs/Place"}}, ["place"], **{"$defs": {"Place": place_v2}})
    assert both(old, new) == (
        [
            "$.place.village: field removed from a closed schema (additionalProperties false): "
            "data written under the old schema may hold it [breaks BACKWARD]"
        ],
        [],
    )


def test_the_values_of_an_open_map_are_compared_at_the_star_path():
    ints, bools = obj({}, additionalProperties=INTEGER), obj({}, additionalProperties={"type": "boolean"})
    assert both(ints, bools)[0] == ["$.*: type integer no longer allowed (the new schema allows boolean) [breaks BACKWARD]"]


def test_one_of_alternatives_that_may_overlap_cannot_be_proven():
    old = closed({"v": STRING})
    new = closed({"v": {"oneOf": [STRING, {"type": "string", "maxLength": 3}]}})
    assert both(old, new)[0] == [
        "$.v: cannot prove compatible: a value may match more than one oneOf alternative [breaks BACKWARD]"
    ]


def test_an_unchanged_discriminated_one_of_is_fully_compatible():
    defs = {
        "Cash": closed({"kind": {"const": "cash"}, "fen": INTEGER}, ["kind", "fen"]),
        "Goods": closed({"kind": {"const": "goods"}, "kg": INTEGER}, ["kind", "kg"]),
    }
    schema = closed({"pay": {"oneOf": [{"$ref": "#/$defs/Cash"}, {"$ref": "#/$defs/Goods"}]}}, ["pay"], **{"$defs": defs})
    assert problems(schema, json.loads(json.dumps(schema)), FULL) == []


def test_a_changed_keyword_the_check_does_not_analyse_cannot_be_proven_either_way():
    old, new = closed({"v": {"type": "string", "not": {"const": ""}}}), closed({"v": {"type": "string", "not": {"const": "-"}}})
    backward, forward = both(old, new)
    assert backward == [
        '$.v: cannot prove compatible: not changed from {"const": ""} to {"const": "-"} '
        "(not analysed: only an unchanged value is accepted) [breaks BACKWARD]"
    ]
    assert len(forward) == 1 and "cannot prove compatible: not changed" in forward[0]


def test_pydantic_decimal_constraints_are_compared_as_bounds():
    old, new = (
        closed({"kg": {"type": "string", "max_digits": 18, "gt": 0}}),
        closed({"kg": {"type": "string", "max_digits": 12, "ge": 0}}),
    )
    assert both(old, new) == (
        ["$.kg: max_digits tightened from 18 to 12 [breaks BACKWARD]"],
        ["$.kg: gt/ge widened from > 0 to >= 0 [breaks FORWARD]"],
    )


def test_a_recursive_schema_is_compared_without_looping():
    def tree(leaf: dict) -> dict:
        node = closed({"leaf": leaf, "children": {"type": "array", "items": {"$ref": "#/$defs/Node"}}})
        return {"$ref": "#/$defs/Node", "$defs": {"Node": node}}

    assert problems(tree(STRING), tree(STRING), FULL) == []
    assert both(tree(STRING), tree(INTEGER))[0] == [
        "$.leaf: type string no longer allowed (the new schema allows integer) [breaks BACKWARD]"
    ]


def test_a_reference_outside_the_schema_cannot_be_proven():
    external = closed({"v": {"$ref": "https://example.org/v.json"}})
    assert both(closed({"v": STRING}), external)[0] == [
        "$.v: cannot prove compatible: $ref https://example.org/v.json is not a local reference [breaks BACKWARD]"
    ]


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
