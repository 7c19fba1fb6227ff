"""The compatibility check says which change breaks which readers, at which path: the issue's examples and every
other rule, on small hand-written schemas."""

import json

import pytest

from tests.unit.schema_builders import (
    BACKWARD,
    FORWARD,
    FULL,
    GRADE,
    INTEGER,
    LOT,
    LOT_WITHOUT_C,
    STRING,
    both,
    closed,
    obj,
    problems,
)

pytestmark = pytest.mark.unit


# ---------------------------------------------------------------- the issue's examples, on small hand-written schemas


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
