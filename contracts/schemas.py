"""JSON Schema export of every event type and version, and the backward-compatibility check.

A published version never changes: `farmlink contracts export` writes
`contracts/schemas/<EventType>.v<N>.json`; tests fail when a committed schema differs
from the models, and say whether the change would break readers of the old version.
"""

import json
from pathlib import Path
from typing import Any

from contracts.inputs import INPUT_KINDS, InputMessage, Receipt
from contracts.registry import MODELS_BY_TYPE

SCHEMA_DIR = Path(__file__).parent / "schemas"
INPUT_SCHEMA_DIR = SCHEMA_DIR / "inputs"


def schema_file_name(event_type: str, version: int) -> str:
    """Where one event type and version's schema is kept."""
    return f"{event_type}.v{version}.json"


def current_schemas() -> dict[str, dict[str, Any]]:
    """The JSON Schema of every event model as the code defines it now, by file name."""
    return {
        schema_file_name(event_type, version): model.model_json_schema(mode="validation")
        for (event_type, version), model in sorted(MODELS_BY_TYPE.items())
    }


def render(schema: dict[str, Any]) -> str:
    """The committed text of a schema: stable key order, one trailing newline."""
    return json.dumps(schema, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def input_schemas() -> dict[str, dict[str, Any]]:
    """What producers send and get back: the input envelope, each input type's payload (as the owning
    service accepts it: validation mode) and the receipt, by file name under contracts/schemas/inputs/."""
    schemas = {"InputMessage.v1.json": InputMessage.model_json_schema(mode="validation"),
               "Receipt.v1.json": Receipt.model_json_schema(mode="serialization")}
    schemas |= {f"{kind.type}.v1.json": kind.model.model_json_schema(mode="validation") for kind in INPUT_KINDS}
    return schemas


def export(directory: Path = SCHEMA_DIR) -> list[Path]:
    """Write every schema file (events, then inputs and receipts under inputs/); returns the files written."""
    written = []
    for folder, schemas in ((directory, current_schemas()), (directory / "inputs", input_schemas())):
        folder.mkdir(parents=True, exist_ok=True)
        for name, schema in schemas.items():
            path = folder / name
            path.write_text(render(schema), encoding="utf-8")
            written.append(path)
    return written


def committed_schemas(directory: Path = SCHEMA_DIR) -> dict[str, dict[str, Any]]:
    """The schemas as committed, by file name."""
    return {path.name: json.loads(path.read_text(encoding="utf-8")) for path in sorted(directory.glob("*.json"))}


def _resolve(schema: dict[str, Any], node: dict[str, Any]) -> dict[str, Any]:
    ref = node.get("$ref")
    if isinstance(ref, str) and ref.startswith("#/$defs/"):
        resolved: dict[str, Any] = schema.get("$defs", {})[ref.removeprefix("#/$defs/")]
        return resolved
    return node


def _options(schema: dict[str, Any], node: dict[str, Any]) -> list[dict[str, Any]]:
    """The alternatives a node allows, references resolved (one for a plain node)."""
    node = _resolve(schema, node)
    alternatives = node.get("anyOf", []) + node.get("oneOf", [])
    if not alternatives:
        return [node]
    return [option for alternative in alternatives for option in _options(schema, alternative)]


def _types(schema: dict[str, Any], node: dict[str, Any]) -> set[str]:
    found: set[str] = set()
    for option in _options(schema, node):
        kind = option.get("type", "object" if "properties" in option else None)
        if kind is not None:
            found |= {kind} if isinstance(kind, str) else set(kind)
    return found


def _shape(schema: dict[str, Any], node: dict[str, Any], kind: str) -> dict[str, Any] | None:
    """The object (kind "object") or the list items (kind "array") a node allows, if any."""
    for option in _options(schema, node):
        if kind == "object" and "properties" in option:
            return option
        items = option.get("items")
        if kind == "array" and option.get("type") == "array" and isinstance(items, dict):
            return items
    return None


def _nested(schema: dict[str, Any], node: dict[str, Any]) -> dict[str, Any] | None:
    """The object a field holds, directly, optionally, or as the items of a list."""
    items = _shape(schema, node, "array")
    return _shape(schema, items if items is not None else node, "object")


def compatibility_problems(old: dict[str, Any], new: dict[str, Any], path: str = "") -> list[str]:
    """Why data written under `old` or readers of it would break under `new` (empty: compatible).

    Breaking: a field removed, a field newly required, a field's JSON type changed, an
    enum value removed, a nested object changing the same ways.
    """
    problems: list[str] = []
    old_props = old.get("properties", {})
    new_props = new.get("properties", {})
    for name in old_props:
        if name not in new_props:
            problems.append(f"{path}{name}: field removed")
    for name in set(new.get("required", [])) - set(old.get("required", [])):
        problems.append(f"{path}{name}: field newly required")
    for name, old_field in old_props.items():
        if name not in new_props:
            continue
        old_node, new_node = _resolve(old, old_field), _resolve(new, new_props[name])
        old_types, new_types = _types(old, old_node), _types(new, new_node)
        if old_types and new_types and not old_types <= new_types:
            problems.append(f"{path}{name}: type changed from {sorted(old_types)} to {sorted(new_types)}")
        removed = set(old_node.get("enum", [])) - set(new_node.get("enum", old_node.get("enum", [])))
        if removed:
            problems.append(f"{path}{name}: values removed {sorted(removed)}")
        old_object, new_object = _nested(old, old_node), _nested(new, new_node)
        if old_object is not None and new_object is not None:
            nested_old = {**old_object, "$defs": old.get("$defs", {})}
            nested_new = {**new_object, "$defs": new.get("$defs", {})}
            problems += compatibility_problems(nested_old, nested_new, f"{path}{name}.")
    return problems
