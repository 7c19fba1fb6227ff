"""Hypothesis strategies derived from the input models themselves (their JSON Schema in
validation mode), so property tests cover the whole contract: every field, every bound, names
with spaces and Chinese text, the longest allowed values, boundary decimals, optional fields
present and absent. A change to a model changes what is drawn, with no list to keep in step."""

import re
from datetime import date
from decimal import Decimal
from typing import Any

from hypothesis import strategies as st

from contracts.inputs import INPUT_KINDS, INPUT_TYPES

_NO_SPACE_OR_CONTROL = re.escape(r"^[^\s\x00-\x1f]+$")
_TEXT = st.characters(codec="utf-8", exclude_categories=("Cs",))
_ID_TEXT = st.characters(codec="utf-8", exclude_categories=("Cs", "Cc", "Zs", "Zl", "Zp"))
_CHINESE = st.characters(min_codepoint=0x4E00, max_codepoint=0x9FA5)


def _text(schema: dict) -> st.SearchStrategy[str]:
    low, high = schema.get("minLength", 0), schema.get("maxLength", 64)
    pattern = schema.get("pattern")
    alphabet = _ID_TEXT if pattern else st.one_of(_TEXT, _CHINESE, st.just(" "))
    sized = st.one_of(st.text(alphabet, min_size=low, max_size=min(high, 40)), st.text(alphabet, min_size=high, max_size=high))
    if pattern:
        compiled = re.compile(pattern)
        sized = sized.filter(lambda text: compiled.fullmatch(text) is not None)
    return sized


def _decimal(schema: dict) -> st.SearchStrategy[Any]:
    places = schema.get("decimal_places", 3)
    digits = schema.get("max_digits", 18)
    step = Decimal(1).scaleb(-places)
    low = Decimal(schema["gt"]) + step if "gt" in schema else Decimal(schema.get("ge", 0))
    high = Decimal(10) ** (digits - places) - step
    values = st.one_of(st.decimals(min_value=low, max_value=high, places=places), st.sampled_from([low, high, Decimal(1)]))
    # On the wire a decimal is a string (exact); a whole number may also be a JSON integer.
    return values.flatmap(
        lambda value: st.sampled_from([str(value), int(value)] if value == value.to_integral() else [str(value)])
    )


def _integer(schema: dict) -> st.SearchStrategy[int]:
    low = schema["exclusiveMinimum"] + 1 if "exclusiveMinimum" in schema else schema.get("minimum", -(10**6))
    high = schema["exclusiveMaximum"] - 1 if "exclusiveMaximum" in schema else schema.get("maximum", 10**6)
    return st.one_of(st.integers(low, high), st.sampled_from([low, high]))


def from_schema(schema: dict, defs: dict | None = None) -> st.SearchStrategy[Any]:
    """Values a JSON Schema of our models describes (the subset pydantic writes for contracts/)."""
    defs = defs if defs is not None else schema.get("$defs", {})
    if "$ref" in schema:
        return from_schema(defs[schema["$ref"].rsplit("/", 1)[-1]], defs)
    if "decimal_places" in schema or "max_digits" in schema:
        return _decimal(schema)
    if "anyOf" in schema:
        return st.one_of([from_schema(option, defs) for option in schema["anyOf"]])
    if "enum" in schema:
        return st.sampled_from(schema["enum"])
    if "const" in schema:
        return st.just(schema["const"])
    kind = schema.get("type")
    if kind == "object":
        return _object(schema, defs)
    if kind == "array":
        low = schema.get("minItems", 0)
        return st.lists(from_schema(schema.get("items", {}), defs), min_size=low, max_size=max(low, schema.get("maxItems", 4)))
    if kind == "string" and schema.get("format") == "date":
        return st.dates(min_value=date(1, 1, 1), max_value=date(9999, 12, 31)).map(date.isoformat)
    if kind == "string":
        return _text(schema)
    if kind == "integer":
        return _integer(schema)
    if kind == "boolean":
        return st.booleans()
    if kind == "null":
        return st.none()
    raise ValueError(f"no strategy for the schema {schema!r}")


def _object(schema: dict, defs: dict) -> st.SearchStrategy[dict]:
    required = set(schema.get("required", ()))
    fields = {name: from_schema(field, defs) for name, field in schema.get("properties", {}).items()}
    optional = sorted(set(fields) - required)
    return st.fixed_dictionaries(
        {name: fields[name] for name in fields if name in required},
        optional={name: fields[name] for name in optional},
    )


def payloads(input_type: str) -> st.SearchStrategy[dict]:
    """Payloads of one input type, as its model's JSON Schema describes them."""
    return from_schema(INPUT_TYPES[input_type].model_json_schema(mode="validation"))


INPUT_TYPE_NAMES = [kind.type for kind in INPUT_KINDS]

inputs = st.sampled_from(INPUT_TYPE_NAMES).flatmap(lambda input_type: st.tuples(st.just(input_type), payloads(input_type)))
"""(input type, payload) pairs over every input type."""
