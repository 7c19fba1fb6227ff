"""The walk of one compatibility check through $refs and combinators (allOf, anyOf, oneOf)."""

from typing import Any

from contracts.compatibility.nodes import (
    _MAX_DEPTH,
    _NotInlined,
    _TYPES,
    _constrains,
    _declared_types,
    _has_ref,
    _inline,
    _merge,
    _render_types,
    _same_json,
    _split_by_type,
    _type_allowed,
    _values,
)


class SchemaWalk:
    """One direction: is every instance the writer's schema accepts accepted by the reader's? This half walks the
    two schemas ($refs, allOf, anyOf, oneOf) down to plain nodes, which a subclass compares keyword by keyword.

    BACKWARD: the writer is the old schema, the reader the new; FORWARD the other way round.
    """

    def __init__(self, writer: Any, reader: Any, half: str, writer_is_old: bool) -> None:
        self.writer_root, self.reader_root, self.half = writer, reader, half
        self.writer_is_old = writer_is_old
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
        """Problems between two plain nodes (no $ref or combinator at the top), keyword by keyword."""
        raise NotImplementedError
