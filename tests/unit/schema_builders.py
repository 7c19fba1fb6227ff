"""Small hand-written JSON Schemas and the compatibility check's answers on them, for the schema tests."""

from contracts.compatibility import Mode, compatibility_problems


BACKWARD, FORWARD, FULL = Mode.BACKWARD, Mode.FORWARD, Mode.FULL


def obj(properties: dict, required: list[str] = (), **more) -> dict:
    return {"type": "object", "properties": properties, "required": list(required), **more}


def closed(properties: dict, required: list[str] = (), **more) -> dict:
    return obj(properties, required, additionalProperties=False, **more)


STRING = {"type": "string"}
INTEGER = {"type": "integer"}
GRADE = {"type": "string", "enum": ["A", "B", "C"]}
LOT = closed({"lot_id": STRING, "grade": GRADE}, ["lot_id", "grade"])
LOT_WITHOUT_C = closed({"lot_id": STRING, "grade": {"type": "string", "enum": ["A", "B"]}}, ["lot_id", "grade"])


def problems(old: dict, new: dict, mode: Mode) -> list[str]:
    return compatibility_problems(old, new, mode)


def both(old: dict, new: dict) -> tuple[list[str], list[str]]:
    """(BACKWARD problems, FORWARD problems)."""
    return problems(old, new, BACKWARD), problems(old, new, FORWARD)
