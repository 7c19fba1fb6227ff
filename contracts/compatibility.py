"""Whether data valid under one JSON Schema is valid under another: Schema Registry's BACKWARD, FORWARD and FULL.

The modes mean what they mean in Confluent Schema Registry, between a published (old) schema and
its replacement (new):

- BACKWARD: a reader on the new schema reads everything written under the old one, so every
  instance the old schema accepts, the new one accepts (old ⊆ new). Breaks it: a field newly
  required, an enum value removed, a tighter bound (smaller maxLength or maximum, larger
  minLength or minimum), a pattern or format added, a type narrowed, a field removed from a
  closed schema (additionalProperties false) that old data may hold, a field added to an open
  schema (old data may already hold that name with any value: Schema Registry's
  PROPERTY_ADDED_TO_OPEN_CONTENT_MODEL).
- FORWARD: a reader on the old schema reads everything written under the new one (new ⊆ old).
  Breaks it: an enum value added, a wider bound, a new field in a closed old schema, a required
  field made optional or removed, a type widened (null allowed as well, say).
- FULL: both.

The check is conservative: what it cannot prove safe is reported as breaking, worded "cannot
prove compatible: ...". Patterns are compared as text (any change breaks both directions), as
are keywords it does not analyse (`not`, `if`, `patternProperties`, ...) when the reader has them.
Annotations (title, description, default, examples) are ignored. pydantic's own constraint
keywords that JSON Schema validators ignore but the models enforce (`gt`, `ge`, `lt`, `le`,
`max_digits`, `decimal_places`) are compared as bounds.

Every problem names the instance path (`$.contributions[*].quantity`) and the mode it breaks:
`$.grade: enum value 'D' added [breaks FORWARD]`.
"""

import json
import math
import re
from collections.abc import Iterable
from enum import StrEnum
from fractions import Fraction
from typing import Any


class Mode(StrEnum):
    """A compatibility mode, as Schema Registry names it."""

    BACKWARD = "BACKWARD"
    """A reader on the new schema reads data written under the old."""
    FORWARD = "FORWARD"
    """A reader on the old schema reads data written under the new."""
    FULL = "FULL"
    """Both."""

    @property
    def halves(self) -> tuple["Mode", ...]:
        """The one-way checks the mode is made of."""
        return (Mode.BACKWARD, Mode.FORWARD) if self is Mode.FULL else (self,)


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


def compatibility_problems(old: Any, new: Any, mode: Mode | str = Mode.FULL) -> list[str]:
    """Why `new` is not `mode`-compatible with `old` (empty: it is), each naming a path and the mode it breaks.

    `old` and `new` are whole JSON Schemas (their `$ref`s point into their own `$defs`).
    """
    problems: list[str] = []
    for half in Mode(mode).halves:
        writer, reader = (old, new) if half is Mode.BACKWARD else (new, old)
        problems += _Check(writer, reader, half).run()
    return problems


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


class _Check:
    """One direction: is every instance the writer's schema accepts accepted by the reader's?

    BACKWARD: the writer is the old schema, the reader the new; FORWARD the other way round.
    """

    def __init__(self, writer: Any, reader: Any, half: Mode) -> None:
        self.writer_root, self.reader_root, self.half = writer, reader, half
        self.writer_is_old = half is Mode.BACKWARD
        self.writer_name, self.reader_name = ("old", "new") if self.writer_is_old else ("new", "old")
        self.active: set[tuple[str, str]] = set()
        self.inlined: dict[int, dict[int, tuple[Any, Any]]] = {}  # keeps each node alive, so its id stays its own

    def run(self) -> list[str]:
        found = self.fits(self.writer_root, self.reader_root, "$", 0)
        unique = list(dict.fromkeys(found))
        return [f"{path}: {what} [breaks {self.half}]" for path, what in unique]

    # ------------------------------------------------------------------ wording

    def old_new(self, writer_value: Any, reader_value: Any) -> tuple[Any, Any]:
        return (writer_value, reader_value) if self.writer_is_old else (reader_value, writer_value)

    def stricter(self, keyword: str, writer_text: str, reader_text: str) -> str:
        """The reader is stricter than the writer on `keyword`: tightened (BACKWARD) or widened (FORWARD)."""
        old, new = self.old_new(writer_text, reader_text)
        return f"{keyword} {'tightened' if self.writer_is_old else 'widened'} from {old} to {new}"

    # ------------------------------------------------------------------ references and combinators

    def inline(self, node: Any, root: Any) -> Any:
        """The node with every $ref replaced by its target and annotations dropped, to recognise schemas
        that differ only in how they are split into $defs (None: a reference is recursive or not local)."""
        cache = self.inlined.setdefault(id(root), {})
        key = id(node)
        if key not in cache:
            try:
                cache[key] = (node, _inline(node, root, (), [0]))
            except _NotInlined:
                cache[key] = (node, None)
        return cache[key][1]

    def resolve(self, node: Any, root: Any) -> tuple[Any, str | None]:
        """A `$ref` followed (local JSON pointers only); keywords beside it become an allOf."""
        if not isinstance(node, dict) or not isinstance(node.get("$ref"), str):
            return node, None
        ref: str = node["$ref"]
        if not ref.startswith("#"):
            return {"$unresolved": f"$ref {ref} is not a local reference"}, ref
        target: Any = root
        for part in [p for p in ref[1:].split("/") if p]:
            part = part.replace("~1", "/").replace("~0", "~")
            if not isinstance(target, dict) or part not in target:
                return {"$unresolved": f"$ref {ref} points at nothing"}, ref
            target = target[part]
        siblings = {key: value for key, value in node.items() if key != "$ref"}
        return ({"allOf": [target, siblings]} if _constrains(siblings) else target), ref

    def writer_variants(self, node: Any, depth: int) -> list[Any]:
        """The writer's node as plain alternatives (no $ref, allOf, anyOf or oneOf at the top), each
        allowing at least what its part of the writer allows (merging may drop a constraint, never add one)."""
        if depth > _MAX_DEPTH:
            return [{"$unresolved": f"nested deeper than {_MAX_DEPTH} levels"}]
        node, _ = self.resolve(node, self.writer_root)
        if not isinstance(node, dict):
            return [node]
        if "allOf" in node:
            combined: list[Any] = [{key: value for key, value in node.items() if key != "allOf"}]
            for member in node["allOf"]:
                combined = [
                    _merge(part, variant)
                    for part in combined
                    for variant in self.writer_variants(member, depth + 1)
                    if isinstance(part, dict)
                ]
            return [variant for part in combined for variant in self.writer_variants(part, depth + 1)]
        alternatives = [*node.get("anyOf", []), *node.get("oneOf", [])]
        if not alternatives:
            return [node]
        base = {key: value for key, value in node.items() if key not in ("anyOf", "oneOf")}
        found: list[Any] = []
        for alternative in alternatives:
            for variant in self.writer_variants(alternative, depth + 1):
                found.append(_merge(base, variant) if isinstance(variant, dict) else variant)
        return found

    def fits(self, writer: Any, reader: Any, path: str, depth: int) -> list[tuple[str, str]]:
        """Problems with `path`: why an instance valid under `writer` may be invalid under `reader`."""
        if depth > _MAX_DEPTH:
            return [(path, f"cannot prove compatible: nested deeper than {_MAX_DEPTH} levels")]
        if _same_json(writer, reader) and not _has_ref(writer):
            return []
        if _has_ref(writer) or _has_ref(reader):
            inlined_writer, inlined_reader = self.inline(writer, self.writer_root), self.inline(reader, self.reader_root)
            if inlined_writer is not None and inlined_reader is not None and _same_json(inlined_writer, inlined_reader):
                return []
        pair = None
        if isinstance(writer, dict) and isinstance(reader, dict) and "$ref" in writer and "$ref" in reader:
            pair = (str(writer["$ref"]), str(reader["$ref"]))
            if pair in self.active:
                return []  # already being compared further up: assume it fits (recursive schemas)
            self.active.add(pair)
        try:
            problems: list[tuple[str, str]] = []
            for variant in self.writer_variants(writer, depth):
                problems += self.fits_reader(variant, reader, path, depth)
            return problems
        finally:
            if pair is not None:
                self.active.discard(pair)

    def fits_reader(self, writer: Any, reader: Any, path: str, depth: int) -> list[tuple[str, str]]:
        """`writer` is plain (see writer_variants); the reader may still be a $ref or a combinator."""
        if writer is False:
            return []
        reader, _ = self.resolve(reader, self.reader_root)
        if not _constrains(reader):
            return []
        if reader is False:
            return [(path, f"the {self.reader_name} schema allows nothing here")]
        if writer is True or not isinstance(reader, dict) or not isinstance(writer, dict):
            return [(path, f"cannot prove compatible: the {self.writer_name} schema allows any value here")]
        if "$unresolved" in reader or "$unresolved" in writer:
            return [(path, f"cannot prove compatible: {reader.get('$unresolved') or writer.get('$unresolved')}")]
        if "allOf" in reader:
            problems: list[tuple[str, str]] = []
            for member in reader["allOf"]:
                problems += self.fits(writer, member, path, depth + 1)
            rest = {key: value for key, value in reader.items() if key != "allOf"}
            return problems + self.fits_reader(writer, rest, path, depth + 1)
        if "anyOf" in reader or "oneOf" in reader:
            return self.fits_union(writer, reader, path, depth)
        return self.plain(writer, reader, path, depth)

    def fits_union(self, writer: dict[str, Any], reader: dict[str, Any], path: str, depth: int) -> list[tuple[str, str]]:
        base = {key: value for key, value in reader.items() if key not in ("anyOf", "oneOf")}
        problems = self.fits_reader(writer, base, path, depth + 1) if _constrains(base) else []
        exclusive = "oneOf" in reader
        options = [*reader.get("anyOf", []), *reader.get("oneOf", [])]
        for part in _split_by_type(writer):
            kinds = _declared_types(part)
            option_types = [self.reader_types(option, depth) for option in options]
            candidates = [
                index
                for index, types in enumerate(option_types)
                if kinds is None or types is None or any(_type_allowed(kind, types) for kind in kinds)
            ]
            if not candidates:
                every: set[str] = set().union(*(types or set() for types in option_types))
                problems.append((path, self.type_change(kinds, every)))
                continue
            tried = [(self.fits(part, options[index], path, depth + 1), index) for index in candidates]
            best, chosen = min(tried, key=lambda attempt: len(attempt[0]))
            problems += best
            if exclusive and not best:
                if any(not self.disjoint(part, option, depth) for index, option in enumerate(options) if index != chosen):
                    problems.append((path, "cannot prove compatible: a value may match more than one oneOf alternative"))
        return problems

    def disjoint(self, writer: dict[str, Any], option: Any, depth: int) -> bool:
        """Whether no instance of the (plain) writer node can match the reader's `option`: by type, by
        listed values, or by a required property whose listed values differ (a discriminator)."""
        option, _ = self.resolve(option, self.reader_root)
        if not isinstance(option, dict) or depth > _MAX_DEPTH or "anyOf" in option or "oneOf" in option:
            return option is False
        mine, theirs = _declared_types(writer), _declared_types(option)
        if (
            mine is not None
            and theirs is not None
            and not any(_type_allowed(kind, theirs) for kind in mine)
            and not any(_type_allowed(kind, mine) for kind in theirs)
        ):
            return True
        mine_values, their_values = _values(writer), _values(option)
        if mine_values is not None and their_values is not None:
            return not any(_same_json(a, b) for a in mine_values for b in their_values)
        shared = set(writer.get("required", [])) & set(option.get("required", []))
        for name in shared:
            mine_field = self.resolve(writer.get("properties", {}).get(name, {}), self.writer_root)[0]
            their_field = self.resolve(option.get("properties", {}).get(name, {}), self.reader_root)[0]
            if isinstance(mine_field, dict) and isinstance(their_field, dict):
                a, b = _values(mine_field), _values(their_field)
                if a is not None and b is not None and not any(_same_json(x, y) for x in a for y in b):
                    return True
        return False

    def reader_types(self, node: Any, depth: int) -> set[str] | None:
        node, _ = self.resolve(node, self.reader_root)
        if not isinstance(node, dict) or depth > _MAX_DEPTH:
            return None
        options = [*node.get("anyOf", []), *node.get("oneOf", [])]
        if not options:
            return _declared_types(node)
        found: set[str] = set()
        for option in options:
            types = self.reader_types(option, depth + 1)
            if types is None:
                return None
            found |= types
        return found

    def type_change(self, writer_types: set[str] | None, reader_types: set[str]) -> str:
        extra = sorted(kind for kind in (writer_types or set(_TYPES)) if not _type_allowed(kind, reader_types))
        verb = "no longer allowed" if self.writer_is_old else "newly allowed"
        return f"type {'|'.join(extra)} {verb} (the {self.reader_name} schema allows {_render_types(reader_types)})"

    # ------------------------------------------------------------------ plain nodes

    def plain(self, writer: dict[str, Any], reader: dict[str, Any], path: str, depth: int) -> list[tuple[str, str]]:
        if not _constrains(writer):
            return [
                (
                    path,
                    f"cannot prove compatible: the {self.writer_name} schema allows any value here, "
                    f"the {self.reader_name} does not",
                )
            ]
        problems: list[tuple[str, str]] = []
        values = _values(writer)
        if values is not None:
            own_types = _declared_types({"type": writer["type"]}) if "type" in writer else None
            for value in (value for value in values if _type_allowed(_value_type(value), own_types)):
                reason = self.violation(value, reader, depth)
                if reason is not None:
                    problems.append((path, self.value_rejected(value, reason)))
        else:
            writer_types, reader_types = _declared_types(writer), _declared_types(reader)
            kept = writer_types
            if reader_types is not None:
                if writer_types is None or not all(_type_allowed(kind, reader_types) for kind in writer_types):
                    problems.append((path, self.type_change(writer_types, reader_types)))
                kept = {kind for kind in (writer_types or set(_TYPES)) if _type_allowed(kind, reader_types)}
            reader_values = _values(reader)
            if reader_values is not None:
                if self.writer_is_old:
                    problems.append(
                        (
                            path,
                            f"values restricted to {_render(reader_values)} (the old schema allowed any {_render_types(kept)})",
                        )
                    )
                else:
                    problems.append(
                        (
                            path,
                            f"restriction to {_render(reader_values)} dropped (the new schema allows any {_render_types(kept)})",
                        )
                    )

            def may_be(family: str) -> bool:
                return kept is None or any(kind in kept for kind in _FAMILY[family])

            if may_be("string"):
                problems += self.strings(writer, reader, path)
            if may_be("number"):
                integer = kept is not None and kept <= {"integer"}
                problems += self.numbers(writer, reader, path, integer)
            if may_be("array"):
                problems += self.arrays(writer, reader, path, depth)
            if may_be("object"):
                problems += self.objects(writer, reader, path, depth)
        problems += self.pydantic_constraints(writer, reader, path)
        problems += self.unanalysed(writer, reader, path)
        return problems

    def value_rejected(self, value: Any, reason: str) -> str:
        shown = _render(value)
        if reason == "not among the allowed values":
            return f"enum value {shown} {'removed' if self.writer_is_old else 'added'}"
        return f"value {shown}, allowed by the {self.writer_name} schema, is rejected by the {self.reader_name}: {reason}"

    def limits(
        self, writer: dict[str, Any], reader: dict[str, Any], path: str, uppers: Iterable[str], lowers: Iterable[str]
    ) -> list[tuple[str, str]]:
        problems = []
        for keyword in uppers:
            bound, mine = reader.get(keyword), writer.get(keyword)
            if bound is not None and (mine is None or mine > bound):
                problems.append((path, self.stricter(keyword, _render(mine), _render(bound))))
        for keyword in lowers:
            bound, mine = reader.get(keyword, 0), writer.get(keyword, 0)
            if bound > mine:
                problems.append((path, self.stricter(keyword, _render(writer.get(keyword)), _render(reader.get(keyword)))))
        return problems

    def strings(self, writer: dict[str, Any], reader: dict[str, Any], path: str) -> list[tuple[str, str]]:
        problems = self.limits(writer, reader, path, ("maxLength",), ("minLength",))
        for keyword in ("pattern", "format"):
            mine, theirs = writer.get(keyword), reader.get(keyword)
            if theirs is None or mine == theirs:
                continue
            old, new = self.old_new(mine, theirs)
            if mine is None:
                what = f"{keyword} {_render(theirs)} {'added' if self.writer_is_old else 'removed'}"
                problems.append((path, f"{what}: a value the {self.writer_name} schema allows need not match it"))
            else:
                problems.append(
                    (
                        path,
                        f"cannot prove compatible: {keyword} changed from {_render(old)} to {_render(new)} "
                        f"({keyword}s are compared as text: any change breaks both BACKWARD and FORWARD)",
                    )
                )
        return problems

    def numbers(self, writer: dict[str, Any], reader: dict[str, Any], path: str, integer: bool) -> list[tuple[str, str]]:
        problems = []
        for lower in (True, False):
            mine, theirs = _bound(writer, lower, integer), _bound(reader, lower, integer)
            if not _within(mine, theirs, lower):
                what = "minimum" if lower else "maximum"
                problems.append((path, self.stricter(what, _render_bound(mine, lower), _render_bound(theirs, lower))))
        step = _number(reader.get("multipleOf"))
        if step is not None:
            mine_step = _number(writer.get("multipleOf"))
            if not ((mine_step is not None and (mine_step / step).denominator == 1) or (integer and (1 / step).denominator == 1)):
                problems.append(
                    (path, self.stricter("multipleOf", _render(writer.get("multipleOf")), _render(reader.get("multipleOf"))))
                )
        return problems

    def arrays(self, writer: dict[str, Any], reader: dict[str, Any], path: str, depth: int) -> list[tuple[str, str]]:
        problems = self.limits(writer, reader, path, ("maxItems",), ("minItems",))
        if reader.get("uniqueItems") is True and writer.get("uniqueItems") is not True:
            problems.append((path, self.stricter("uniqueItems", _render(writer.get("uniqueItems")), "true")))
        writer_items = writer.get("items", True)
        if any(key in writer for key in _WIDEN_ARRAYS) or isinstance(writer_items, list):
            writer_items = True
        reader_items = reader.get("items", True)
        if isinstance(reader_items, list):
            if not (_same_json(reader_items, writer.get("items")) and not _has_ref(reader_items)):
                problems.append((path, "cannot prove compatible: positional items (a list) are compared as text"))
        else:
            problems += self.fits(writer_items, reader_items, f"{path}[*]", depth + 1)
        return problems

    def objects(self, writer: dict[str, Any], reader: dict[str, Any], path: str, depth: int) -> list[tuple[str, str]]:
        problems = self.limits(writer, reader, path, ("maxProperties",), ("minProperties",))
        writer_props: dict[str, Any] = writer.get("properties", {})
        reader_props: dict[str, Any] = reader.get("properties", {})
        writer_more: Any = writer.get("additionalProperties", True)
        if any(key in writer for key in _WIDEN_OBJECTS):
            writer_more = True
        reader_more: Any = reader.get("additionalProperties", True)
        writer_closed = writer_more is False
        writer_required = set(writer.get("required", []))

        for name in [*reader.get("required", [])]:
            if name in writer_required:
                continue
            declared = name in writer_props
            if self.writer_is_old:
                what = "field became required" if declared else "new required field"
            else:
                what = "required field became optional" if declared else "required field removed"
            problems.append((_child(path, name), what))

        for name in [*writer_props, *(name for name in reader_props if name not in writer_props)]:
            where = _child(path, name)
            if name in writer_props:
                mine = writer_props[name]
            elif writer_closed:
                continue  # the writer never holds it
            else:
                mine = writer_more
            theirs = reader_props[name] if name in reader_props else reader_more
            if theirs is False:
                if self.writer_is_old:
                    problems.append(
                        (
                            where,
                            "field removed from a closed schema (additionalProperties false): "
                            "data written under the old schema may hold it",
                        )
                    )
                else:
                    problems.append(
                        (
                            where,
                            "field added, and the old schema is closed (additionalProperties false): "
                            "its readers reject data that holds it",
                        )
                    )
                continue
            if (
                name not in writer_props
                and not _constrains(self.resolve(mine, self.writer_root)[0])
                and _constrains(self.resolve(theirs, self.reader_root)[0])
            ):
                if self.writer_is_old:
                    problems.append(
                        (
                            where,
                            "field added to an open schema (additionalProperties not false): data written "
                            "under the old schema may already hold it with any value",
                        )
                    )
                else:
                    problems.append(
                        (
                            where,
                            "field removed from an open schema (additionalProperties not false): data "
                            "written under the new schema may hold it with any value",
                        )
                    )
                continue
            problems += self.fits(mine, theirs, where, depth + 1)

        if not writer_closed and _constrains(reader_more):
            if reader_more is False:
                problems.append(
                    (
                        f"{path}.*",
                        f"the {self.writer_name} schema accepts undeclared fields, "
                        f"the {self.reader_name} is closed (additionalProperties false)",
                    )
                )
            else:
                problems += self.fits(writer_more, reader_more, f"{path}.*", depth + 1)
        return problems

    def pydantic_constraints(self, writer: dict[str, Any], reader: dict[str, Any], path: str) -> list[tuple[str, str]]:
        """gt/ge/lt/le, max_digits and decimal_places: JSON Schema validators ignore them, the models enforce them."""
        problems = []
        for lower, keywords in ((True, _PYDANTIC_LOWER), (False, _PYDANTIC_UPPER)):
            mine, theirs = _tightest(writer, keywords, lower), _tightest(reader, keywords, lower)
            if not _within(mine, theirs, lower):
                what = "gt/ge" if lower else "lt/le"
                problems.append((path, self.stricter(what, _render_bound(mine, lower), _render_bound(theirs, lower))))
        problems += self.limits(writer, reader, path, _PYDANTIC_LIMITS, ())
        return problems

    def unanalysed(self, writer: dict[str, Any], reader: dict[str, Any], path: str) -> list[tuple[str, str]]:
        """A keyword the check does not understand, on the reader: only the writer's identical value is accepted."""
        problems = []
        for keyword in sorted(set(reader) - _KNOWN):
            theirs, mine = reader[keyword], writer.get(keyword)
            if keyword in writer and _same_json(mine, theirs) and not _has_ref(theirs):
                continue
            old, new = self.old_new(mine, theirs)
            problems.append(
                (
                    path,
                    f"cannot prove compatible: {keyword} changed from {_render(old)} to {_render(new)} "
                    "(not analysed: only an unchanged value is accepted)",
                )
            )
        return problems

    # ------------------------------------------------------------------ one value (an enum's or a const)

    def violation(self, value: Any, reader: Any, depth: int) -> str | None:
        """Why the reader rejects one value (None: it accepts it)."""
        reader, _ = self.resolve(reader, self.reader_root)
        if depth > _MAX_DEPTH:
            return f"cannot prove compatible: nested deeper than {_MAX_DEPTH} levels"
        if not _constrains(reader):
            return None
        if reader is False or not isinstance(reader, dict):
            return "the schema allows nothing here"
        if "$unresolved" in reader:
            return f"cannot prove compatible: {reader['$unresolved']}"
        for member in reader.get("allOf", []):
            reason = self.violation(value, member, depth + 1)
            if reason is not None:
                return reason
        options = [*reader.get("anyOf", []), *reader.get("oneOf", [])]
        if options:
            reasons = [self.violation(value, option, depth + 1) for option in options]
            matches = sum(reason is None for reason in reasons)
            if matches == 0:
                return "; ".join(dict.fromkeys(r for r in reasons if r is not None))
            if "oneOf" in reader and matches > 1:
                return "it matches more than one oneOf alternative"
        types = _declared_types({key: val for key, val in reader.items() if key in ("type",)})
        kind = _value_type(value)
        if not _type_allowed(kind, types):
            return f"type {kind} is not allowed ({_render_types(types)})"
        if "const" in reader and not _same_json(value, reader["const"]):
            return "not among the allowed values"
        if isinstance(reader.get("enum"), list) and not any(_same_json(value, item) for item in reader["enum"]):
            return "not among the allowed values"
        if isinstance(value, str):
            return _string_violation(value, reader)
        number = _number(value)
        if number is not None:
            for lower in (True, False):
                bound = _bound(reader, lower, False)
                if not _within((number, False), bound, lower):
                    return f"outside the bound {_render_bound(bound, lower)}"
            step = _number(reader.get("multipleOf"))
            if step is not None and (number / step).denominator != 1:
                return f"not a multiple of {reader['multipleOf']}"
        if isinstance(value, list | dict) and any(key in reader for key in _ANALYSED - {"type", "enum", "const"}):
            return "cannot prove compatible: a list or object value is not checked against the schema"
        return None


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
