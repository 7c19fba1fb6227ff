"""JSON Schema export of every event type and version and of the inputs, and the compatibility each
published schema keeps.

`farmlink contracts export` writes `contracts/schemas/<EventType>.v<N>.json` and, under
`contracts/schemas/inputs/`, the input envelope, each input type's payload and the receipt. A
committed file is published: buyers' and auditors' validators, producers and the services read
by it. Each published schema has a declared compatibility mode (`declared_mode`, Schema
Registry's BACKWARD, FORWARD or FULL, checked by contracts/compatibility/) that the current
model of the same file must keep; tests/unit/test_schema_files.py fails CI when it does not, and
`export` refuses to overwrite a published schema with one that breaks its mode.
"""

import json
import re
from pathlib import Path
from typing import Any

from contracts.compatibility import Mode, compatibility_problems
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
    schemas = {
        "InputMessage.v1.json": InputMessage.model_json_schema(mode="validation"),
        "Receipt.v1.json": Receipt.model_json_schema(mode="serialization"),
    }
    schemas |= {f"{kind.type}.v1.json": kind.model.model_json_schema(mode="validation") for kind in INPUT_KINDS}
    return schemas


def committed_schemas(directory: Path = SCHEMA_DIR) -> dict[str, dict[str, Any]]:
    """The schemas as committed, by file name."""
    return {path.name: json.loads(path.read_text(encoding="utf-8")) for path in sorted(directory.glob("*.json"))}


# ---------------------------------------------------------------- what each published schema promises

EVENT_MODE = Mode.FULL
"""Events: buyer systems and auditors validate them with the schema they were published under (closed
schemas, additionalProperties false), and new code reads old events: both directions must hold. Any
other change is a new event version with an upcaster."""

INPUT_MODE = Mode.BACKWARD
"""Input payloads and the input envelope: the services read what producers wrote under the published
schema (a producer upgrades when it likes), so the new schema must accept all of it; a new optional
field, which producers adopt at will, is compatible."""

MODE_OVERRIDES: dict[str, Mode] = {
    "inputs/Receipt": Mode.FORWARD,  # producers read receipts with the schema they have: new receipts must fit it
}
"""Per-schema modes that differ from the defaults above: keyed by the schema's path under
contracts/schemas/ without `.v<N>.json` (every version, "inputs/Receipt") or with it (one file,
"inputs/Receipt.v1.json"; the exact file wins)."""

_PUBLISHED_NAME = re.compile(r"^(?P<stem>(?:inputs/)?(?P<type>[^/]+))\.v(?P<version>\d+)\.json$")


def declared_mode(name: str) -> Mode:
    """The compatibility mode the schema at `name` (its path under contracts/schemas/, e.g.
    "HarvestRecorded.v1.json" or "inputs/harvest.recorded.v1.json") keeps.

    | published schema                                 | mode     | who reads it with the published schema    |
    |--------------------------------------------------|----------|--------------------------------------------|
    | `<EventType>.v<N>.json` (events)                 | FULL     | buyers' and auditors' validators; new code |
    | `inputs/<input type>.v<N>.json` (input payloads) | BACKWARD | the services, reading old producers' input |
    | `inputs/InputMessage.v<N>.json` (envelope)       | BACKWARD | the services                               |
    | `inputs/Receipt.v<N>.json` (receipts)            | FORWARD  | producers, reading new services' receipts  |
    """
    match = _PUBLISHED_NAME.match(name)
    stem = match["stem"] if match else name
    if name in MODE_OVERRIDES:
        return MODE_OVERRIDES[name]
    if stem in MODE_OVERRIDES:
        return MODE_OVERRIDES[stem]
    return INPUT_MODE if name.startswith("inputs/") else EVENT_MODE


_MODE_MEANS = {
    Mode.BACKWARD: "a reader on the current model must read everything written under the published schema",
    Mode.FORWARD: "a reader on the published schema must read everything written under the current model",
    Mode.FULL: "both: readers on the published schema read new data, and readers on the current model read old data",
}


def what_to_do(name: str) -> str:
    """How to make a change that the published schema at `name` cannot take."""
    match = _PUBLISHED_NAME.match(name)
    kind, version = (match["type"], int(match["version"])) if match else (name, 1)
    if name.startswith("inputs/Receipt"):
        return (
            "Producers read receipts with the published schema: keep this change out of it, or publish "
            f"Receipt v{version + 1} as a new schema that producers opt into."
        )
    if name.startswith("inputs/"):
        instead = f"publish InputMessage v{version + 1}" if kind == "InputMessage" else "add a new input type"
        return (
            f"The services must keep accepting what producers send under the published {kind} schema: "
            f"add an optional field or {instead} instead, then run `farmlink contracts export`."
        )
    return (
        f"A published event version never changes incompatibly: publish a new version with an upcaster "
        f"({kind} v{version + 1} as a new model, and an upcaster from v{version} registered with "
        "events.upcasting.register), then run `farmlink contracts export`."
    )


def breaking_change_report(name: str, problems: list[str]) -> str:
    """The message a breaking change fails with: the file, its mode, each problem's path and mode, what to do."""
    mode = declared_mode(name)
    lines = [
        f"contracts/schemas/{name}: the current model breaks the published schema under its declared mode "
        f"{mode} ({_MODE_MEANS[mode]}):"
    ]
    lines += [f"  - {problem}" for problem in problems]
    lines.append(what_to_do(name))
    return "\n".join(lines)


def published_schemas(directory: Path = SCHEMA_DIR) -> dict[str, dict[str, Any]]:
    """Every committed schema, events and inputs, by its path under `directory` ("inputs/..." for inputs)."""
    inputs = committed_schemas(directory / "inputs") if (directory / "inputs").is_dir() else {}
    return committed_schemas(directory) | {f"inputs/{name}": schema for name, schema in inputs.items()}


def model_schemas() -> dict[str, dict[str, Any]]:
    """Every schema as the code defines it now, by the path it is published under."""
    return current_schemas() | {f"inputs/{name}": schema for name, schema in input_schemas().items()}


def breaking_changes(published: dict[str, dict[str, Any]], current: dict[str, dict[str, Any]]) -> dict[str, list[str]]:
    """The problems of each published schema whose current model breaks its declared mode (an empty dict: none).

    Only a schema both published and still modelled is compared: a new version or input type has no
    published predecessor, and a published version whose model is gone is history, kept as it is.
    """
    found = {}
    for name in sorted(published.keys() & current.keys()):
        problems = compatibility_problems(published[name], current[name], declared_mode(name))
        if problems:
            found[name] = problems
    return found


class BreakingSchemaChange(Exception):
    """`export` would have overwritten a published schema with one that breaks its declared mode."""


def export(directory: Path = SCHEMA_DIR, *, allow_breaking: bool = False) -> list[Path]:
    """Write every schema file (events, then inputs and receipts under inputs/); returns the files written.

    Refuses (BreakingSchemaChange, nothing written) when a file already there would be replaced by a
    schema that breaks its declared mode, unless `allow_breaking`.
    """
    current = model_schemas()
    if not allow_breaking:
        breaking = breaking_changes(published_schemas(directory), current)
        if breaking:
            raise BreakingSchemaChange("\n\n".join(breaking_change_report(name, problems) for name, problems in breaking.items()))
    written = []
    for name, schema in current.items():
        path = directory / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(render(schema), encoding="utf-8")
        written.append(path)
    return written
