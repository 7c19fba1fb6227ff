"""Reading a scenario file: JSON Lines of `{"type": ..., "payload": {...}}`, checked line by line
with the same models the services use, so a bad line is named before anything is sent."""

import json
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

from pydantic import ValidationError

from contracts.inputs import INPUT_TYPES
from contracts.model import Contract


@dataclass(frozen=True)
class ScenarioLine:
    """A valid line: its number, type, raw payload (as JSON-ready data) and validated model."""

    line_no: int
    type: str
    payload: dict
    model: Contract


@dataclass(frozen=True)
class LineError:
    """A line that failed validation: its number, the field, and why."""

    line_no: int
    field: str
    reason: str

    def __str__(self) -> str:
        return f"line {self.line_no}: {self.field}: {self.reason}"


def parse_line(line_no: int, text: str) -> ScenarioLine | LineError:
    """Check one line; decimals stay exact (JSON numbers become Decimal, never float)."""
    try:
        data = json.loads(text, parse_float=Decimal)
    except json.JSONDecodeError as error:
        return LineError(line_no, "(line)", f"not valid JSON: {error.msg} at column {error.colno}")
    if not isinstance(data, dict):
        return LineError(line_no, "(line)", 'expected an object {"type": ..., "payload": {...}}')
    unknown = sorted(set(data) - {"type", "payload"})
    if unknown:
        return LineError(line_no, unknown[0], "unknown field; a line has only type and payload")
    kind = data.get("type")
    if kind not in INPUT_TYPES:
        return LineError(line_no, "type", f"unknown type {kind!r}; known: {', '.join(INPUT_TYPES)}")
    payload = data.get("payload")
    if not isinstance(payload, dict):
        return LineError(line_no, "payload", "must be an object")
    try:
        model = INPUT_TYPES[kind].model_validate(payload)
    except ValidationError as error:
        first = error.errors()[0]
        where = ".".join(str(part) for part in first["loc"])
        return LineError(line_no, f"payload.{where}" if where else "payload", first["msg"])
    return ScenarioLine(line_no, kind, model.model_dump(mode="json"), model)


def read_scenario(path: Path) -> list[ScenarioLine | LineError]:
    """Every non-blank line of a scenario file, checked (blank lines and lines starting with # are skipped)."""
    results: list[ScenarioLine | LineError] = []
    with path.open(encoding="utf-8") as handle:
        for line_no, text in enumerate(handle, start=1):
            stripped = text.strip()
            if stripped and not stripped.startswith("#"):
                results.append(parse_line(line_no, stripped))
    return results
