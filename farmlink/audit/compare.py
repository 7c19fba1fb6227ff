"""Comparing a recorded payload with a re-executed one: type-strict JSON equality and the fields that differ."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import orjson

_ABSENT = "<absent>"
FILL_MADE = "FillMade"


def _equal(recorded: Any, expected: Any) -> bool:
    """JSON equality that keeps types apart (true is not 1, 1.0 is not 1)."""
    if type(recorded) is not type(expected):
        return False
    if isinstance(expected, dict):
        if recorded.keys() != expected.keys():
            return False
        for key, value in expected.items():
            if not _equal(recorded[key], value):
                return False
        return True
    if isinstance(expected, list):
        return len(recorded) == len(expected) and all(map(_equal, recorded, expected))
    return recorded == expected


def _same(recorded: Any, expected: Any) -> bool:
    """`_equal`, quicker for the usual case: equal canonical JSON bytes mean equal values of equal types
    (true, 1 and 1.0 are written differently); anything else is decided by `_equal` itself."""
    try:
        if orjson.dumps(recorded, option=orjson.OPT_SORT_KEYS) == orjson.dumps(expected, option=orjson.OPT_SORT_KEYS):
            return True
    except (TypeError, orjson.JSONEncodeError):
        pass
    return _equal(recorded, expected)


def differences(recorded: dict[str, Any], expected: dict[str, Any], prefix: str = "") -> Iterator[tuple[str, Any, Any]]:
    """(field, recorded value, re-executed value) for every field that differs; nested dicts by dotted path."""
    for key, value in expected.items():
        path = f"{prefix}{key}"
        if key not in recorded:
            yield path, _ABSENT, value
        elif isinstance(value, dict) and isinstance(recorded[key], dict):
            yield from differences(recorded[key], value, f"{path}.")
        elif not _equal(recorded[key], value):
            yield path, recorded[key], value
    for key in recorded.keys() - expected.keys():
        yield f"{prefix}{key}", recorded[key], _ABSENT


def describe(event_type: str, payload: dict[str, Any]) -> str:
    """A short business description of a matching event: which lot went where, how much."""
    if event_type == FILL_MADE:
        return (
            f"fill of {payload.get('quantity')} of lot {payload.get('lot_id')} to {payload.get('outlet_kind')} "
            f"{payload.get('outlet_id')} at {payload.get('unit_price_fen')} fen"
        )
    return f"{event_type} of lot {payload.get('lot_id')}"
