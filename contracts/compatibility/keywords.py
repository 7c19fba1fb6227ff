"""One compatibility check compares two plain schema nodes keyword by keyword."""

from collections.abc import Iterable
from typing import Any

from contracts.compatibility.nodes import (
    _ANALYSED,
    _FAMILY,
    _KNOWN,
    _MAX_DEPTH,
    _PYDANTIC_LIMITS,
    _PYDANTIC_LOWER,
    _PYDANTIC_UPPER,
    _TYPES,
    _WIDEN_ARRAYS,
    _WIDEN_OBJECTS,
    _bound,
    _child,
    _constrains,
    _declared_types,
    _has_ref,
    _number,
    _render,
    _render_bound,
    _render_types,
    _same_json,
    _string_violation,
    _tightest,
    _type_allowed,
    _value_type,
    _values,
    _within,
)
from contracts.compatibility.walk import SchemaWalk


class SchemaCheck(SchemaWalk):
    """One direction of a compatibility check, down to the keywords of plain nodes: types, listed values, string,
    number, array and object constraints, pydantic's own constraints and keywords the check does not analyse."""

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
        problems += self.required_fields(writer, reader, path)
        for name in [*writer_props, *(name for name in reader_props if name not in writer_props)]:
            if name in writer_props:
                mine = writer_props[name]
            elif writer_closed:
                continue  # the writer never holds it
            else:
                mine = writer_more
            theirs = reader_props[name] if name in reader_props else reader_more
            problems += self.field(name in writer_props, mine, theirs, _child(path, name), depth)
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

    def required_fields(self, writer: dict[str, Any], reader: dict[str, Any], path: str) -> list[tuple[str, str]]:
        """Fields the reader requires that the writer may leave out."""
        problems = []
        writer_props: dict[str, Any] = writer.get("properties", {})
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
        return problems

    def field(self, declared: bool, mine: Any, theirs: Any, where: str, depth: int) -> list[tuple[str, str]]:
        """One field the writer may hold (`declared` in its properties, or else under its additionalProperties
        `mine`) against what the reader says of it (`theirs`: its property schema or its additionalProperties)."""
        if theirs is False:
            if self.writer_is_old:
                return [
                    (
                        where,
                        "field removed from a closed schema (additionalProperties false): "
                        "data written under the old schema may hold it",
                    )
                ]
            return [
                (
                    where,
                    "field added, and the old schema is closed (additionalProperties false): "
                    "its readers reject data that holds it",
                )
            ]
        if (
            not declared
            and not _constrains(self.resolve(mine, self.writer_root)[0])
            and _constrains(self.resolve(theirs, self.reader_root)[0])
        ):
            if self.writer_is_old:
                return [
                    (
                        where,
                        "field added to an open schema (additionalProperties not false): data written "
                        "under the old schema may already hold it with any value",
                    )
                ]
            return [
                (
                    where,
                    "field removed from an open schema (additionalProperties not false): data "
                    "written under the new schema may hold it with any value",
                )
            ]
        return self.fits(mine, theirs, where, depth + 1)

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
