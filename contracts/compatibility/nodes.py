"""Plain facts about one JSON Schema node: the keywords the check knows, its types and values, its numeric
bounds, how to render them in a message, and the node with every local $ref inlined."""

import json
import math
import re
from fractions import Fraction
from typing import Any

ANNOTATIONS = frozenset(
    {
        "title",
        "description",
        "default",
        "examples",
        "$comment",
        "deprecated",
        "readOnly",
        "writeOnly",
        "$schema",
        "$id",
        "$anchor",
        "$defs",
        "definitions",
        "discriminator",
    }
)
"""Keywords that do not decide whether an instance is valid."""

_ANALYSED = frozenset(
    {
        "$ref",
        "allOf",
        "anyOf",
        "oneOf",
        "type",
        "enum",
        "const",
        "maxLength",
        "minLength",
        "pattern",
        "format",
        "minimum",
        "maximum",
        "exclusiveMinimum",
        "exclusiveMaximum",
        "multipleOf",
        "items",
        "minItems",
        "maxItems",
        "uniqueItems",
        "properties",
        "required",
        "additionalProperties",
        "minProperties",
        "maxProperties",
    }
)
_PYDANTIC_LOWER = {"gt": True, "ge": False}  # keyword: exclusive
_PYDANTIC_UPPER = {"lt": True, "le": False}
_PYDANTIC_LIMITS = ("max_digits", "decimal_places")
_PYDANTIC = frozenset({*_PYDANTIC_LOWER, *_PYDANTIC_UPPER, *_PYDANTIC_LIMITS})
_KNOWN = ANNOTATIONS | _ANALYSED | _PYDANTIC

_WIDEN_OBJECTS = ("patternProperties",)  # exempt names from additionalProperties
_WIDEN_ARRAYS = ("prefixItems", "additionalItems")  # exempt positions from items
_MAX_DEPTH = 100

_TYPES = ("null", "boolean", "object", "array", "number", "integer", "string")
_UPPER_LIMITS = ("maxLength", "maxItems", "maxProperties")
_LOWER_LIMITS = ("minLength", "minItems", "minProperties")
_FAMILY = {"string": ("string",), "number": ("number", "integer"), "array": ("array",), "object": ("object",)}

Bound = tuple[Fraction, bool]
"""A numeric bound: its value and whether it is exclusive."""


def _constrains(node: Any) -> bool:
    """Whether a schema rejects anything at all."""
    return node is False or (isinstance(node, dict) and any(key not in ANNOTATIONS for key in node))


def _has_ref(node: Any) -> bool:
    return '"$ref"' in json.dumps(node)


def _number(value: Any) -> Fraction | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return Fraction(str(value)) if isinstance(value, float) else Fraction(value)


def _value_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int) or (isinstance(value, float) and value.is_integer()):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    return "array" if isinstance(value, list) else "object"


def _type_allowed(kind: str, types: set[str] | None) -> bool:
    return types is None or kind in types or (kind == "integer" and "number" in types)


def _same_json(a: Any, b: Any) -> bool:
    """JSON equality (1 and true differ; 1 and 1.0 do not)."""
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same_json(a[key], b[key]) for key in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_same_json(x, y) for x, y in zip(a, b))
    number_a, number_b = _number(a), _number(b)
    if number_a is not None and number_b is not None:
        return number_a == number_b
    return type(a) is type(b) and bool(a == b)


def _values(node: dict[str, Any]) -> list[Any] | None:
    """The values a node allows, when it lists them (const or enum)."""
    if "const" in node:
        return [node["const"]]
    enum = node.get("enum")
    return list(enum) if isinstance(enum, list) else None


def _declared_types(node: dict[str, Any]) -> set[str] | None:
    """The JSON types a plain node allows (None: any)."""
    kind = node.get("type")
    if isinstance(kind, str):
        return {kind}
    if isinstance(kind, list):
        return {str(item) for item in kind}
    values = _values(node)
    return {_value_type(value) for value in values} if values is not None else None


def _render_types(types: set[str] | None) -> str:
    return "any" if types is None else "|".join(sorted(types)) or "nothing"


def _render(value: Any) -> str:
    return "none" if value is None else json.dumps(value, ensure_ascii=False)


def _render_bound(bound: Bound | None, lower: bool) -> str:
    if bound is None:
        return "none"
    value, exclusive = bound
    shown = str(value.numerator) if value.denominator == 1 else str(float(value))
    return f"{'>' if lower else '<'}{'' if exclusive else '='} {shown}"


def _child(path: str, name: str) -> str:
    return f"{path}.{name}" if re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name) else f"{path}[{json.dumps(name)}]"


class _NotInlined(Exception):
    pass


_SUBSCHEMA_MAPS = ("properties", "patternProperties", "dependentSchemas", "$defs", "definitions")
_SUBSCHEMA_LISTS = ("allOf", "anyOf", "oneOf", "prefixItems")
_SUBSCHEMAS = (
    "items",
    "additionalProperties",
    "additionalItems",
    "not",
    "if",
    "then",
    "else",
    "contains",
    "propertyNames",
    "unevaluatedProperties",
    "unevaluatedItems",
)
_INLINE_LIMIT = 20_000


def _inline(node: Any, root: Any, refs: tuple[str, ...], size: list[int]) -> Any:
    size[0] += 1
    if size[0] > _INLINE_LIMIT:
        raise _NotInlined
    if not isinstance(node, dict):
        return node
    ref = node.get("$ref")
    if isinstance(ref, str):
        if not ref.startswith("#") or ref in refs:
            raise _NotInlined
        target: Any = root
        for part in [p for p in ref[1:].split("/") if p]:
            part = part.replace("~1", "/").replace("~0", "~")
            if not isinstance(target, dict) or part not in target:
                raise _NotInlined
            target = target[part]
        inlined = _inline(target, root, (*refs, ref), size)
        siblings = _inline({key: value for key, value in node.items() if key != "$ref"}, root, refs, size)
        return {"allOf": [inlined, siblings]} if _constrains(siblings) else inlined
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key in ANNOTATIONS:
            continue
        if key in _SUBSCHEMA_MAPS and isinstance(value, dict):
            out[key] = {name: _inline(sub, root, refs, size) for name, sub in value.items()}
        elif (key in _SUBSCHEMA_LISTS or key == "items") and isinstance(value, list):
            out[key] = [_inline(sub, root, refs, size) for sub in value]
        elif key in _SUBSCHEMAS:
            out[key] = _inline(value, root, refs, size)
        else:
            out[key] = value
    return out


def _string_violation(value: str, reader: dict[str, Any]) -> str | None:
    if "maxLength" in reader and len(value) > reader["maxLength"]:
        return f"longer than maxLength {reader['maxLength']}"
    if "minLength" in reader and len(value) < reader["minLength"]:
        return f"shorter than minLength {reader['minLength']}"
    if "pattern" in reader:
        try:
            if re.search(reader["pattern"], value) is None:
                return f"does not match pattern {_render(reader['pattern'])}"
        except re.error:
            return f"cannot prove compatible: pattern {_render(reader['pattern'])} is not checked"
    if "format" in reader:
        return f"cannot prove compatible: format {_render(reader['format'])} is not checked on a listed value"
    return None


def _merge(a: dict[str, Any], b: Any) -> Any:
    """Two schemas that both apply, as one; where both constrain the same keyword one of them is kept
    (the result allows at least what both together allow), except types, which are intersected."""
    if not isinstance(b, dict):
        return b if b is False else a
    merged = {**b, **{key: value for key, value in a.items() if key not in b}}
    if "required" in a and "required" in b:
        merged["required"] = list(dict.fromkeys([*a["required"], *b["required"]]))
    if isinstance(a.get("properties"), dict) and isinstance(b.get("properties"), dict):
        merged["properties"] = {**a["properties"], **b["properties"]}
    types_a, types_b = (
        _declared_types({"type": a["type"]}) if "type" in a else None,
        _declared_types({"type": b["type"]}) if "type" in b else None,
    )
    if types_a is not None and types_b is not None:
        both = {kind for kind in types_a if _type_allowed(kind, types_b)} | {
            kind for kind in types_b if _type_allowed(kind, types_a)
        }
        if not both:
            return False  # no type both allow: nothing is valid
        merged["type"] = sorted(both) if len(both) != 1 else next(iter(both))
    return merged


def _split_by_type(node: dict[str, Any]) -> list[dict[str, Any]]:
    """A node allowing several types, as one node per type (so each can match a different alternative)."""
    types = _declared_types(node)
    if types is None or len(types) < 2:
        return [node]
    parts = []
    values = _values(node)
    for kind in sorted(types):
        part = {**node, "type": kind}
        if values is not None:
            part.pop("const", None)
            part["enum"] = [value for value in values if _type_allowed(_value_type(value), {kind})]
        parts.append(part)
    return parts


def _bound(node: dict[str, Any], lower: bool, integer: bool) -> Bound | None:
    """A node's tightest lower (or upper) bound, from minimum/exclusiveMinimum (maximum/exclusiveMaximum)."""
    inclusive, exclusive = ("minimum", "exclusiveMinimum") if lower else ("maximum", "exclusiveMaximum")
    found: list[Bound] = []
    plain = _number(node.get(inclusive))
    if plain is not None:
        found.append((plain, node.get(exclusive) is True))  # draft 4's boolean exclusiveMinimum
    strict = _number(node.get(exclusive))
    if strict is not None:
        found.append((strict, True))
    return _normalise(_pick(found, lower), lower, integer)


def _tightest(node: dict[str, Any], keywords: dict[str, bool], lower: bool) -> Bound | None:
    found = [(value, exclusive) for keyword, exclusive in keywords.items() if (value := _number(node.get(keyword))) is not None]
    return _pick(found, lower)


def _pick(bounds: list[Bound], lower: bool) -> Bound | None:
    if not bounds:
        return None
    if lower:
        return max(bounds, key=lambda bound: (bound[0], bound[1]))
    return min(bounds, key=lambda bound: (bound[0], not bound[1]))


def _normalise(bound: Bound | None, lower: bool, integer: bool) -> Bound | None:
    """For integers, `> 0` is `>= 1` and `<= 2.5` is `<= 2`."""
    if bound is None or not integer:
        return bound
    value, exclusive = bound
    if lower:
        return (Fraction(math.floor(value) + 1 if exclusive else math.ceil(value)), False)
    return (Fraction(math.ceil(value) - 1 if exclusive else math.floor(value)), False)


def _within(mine: Bound | None, theirs: Bound | None, lower: bool) -> bool:
    """Whether every number within `mine` is within `theirs` (both lower bounds, or both upper)."""
    if theirs is None:
        return True
    if mine is None:
        return False
    (a, a_exclusive), (b, b_exclusive) = mine, theirs
    if a == b:
        return a_exclusive or not b_exclusive
    return a > b if lower else a < b
