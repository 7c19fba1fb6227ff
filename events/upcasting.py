"""Upcasting: read an old version of an event as the current one.

A published event version never changes; a change is a new version plus an upcaster
from the previous one. Readers call `upcast` before validating a stored payload.
"""

from collections.abc import Callable
from typing import Any

from contracts.registry import LATEST_VERSION, MODELS_BY_TYPE
from contracts.model import Contract

Upcaster = Callable[[dict[str, Any]], dict[str, Any]]

UPCASTERS: dict[tuple[str, int], Upcaster] = {}
"""(event type, from version) -> function turning that version's payload into the next version's."""


def register(event_type: str, from_version: int) -> Callable[[Upcaster], Upcaster]:
    """Declare how to turn `event_type` v`from_version` into v`from_version + 1`."""

    def decorate(function: Upcaster) -> Upcaster:
        UPCASTERS[(event_type, from_version)] = function
        return function

    return decorate


def upcast(
    event_type: str,
    version: int,
    payload: dict[str, Any],
    latest: dict[str, int] = LATEST_VERSION,
    upcasters: dict[tuple[str, int], Upcaster] = UPCASTERS,
) -> tuple[int, dict[str, Any]]:
    """Apply upcasters until the payload is at the latest version; returns (version, payload)."""
    target = latest.get(event_type, version)
    while version < target:
        step = upcasters.get((event_type, version))
        if step is None:
            raise LookupError(f"no upcaster from {event_type} v{version} to v{version + 1}")
        payload = step(payload)
        version += 1
    return version, payload


def decode(event_type: str, version: int, payload: dict[str, Any]) -> Contract:
    """A stored or received payload as the current model of its event type."""
    version, payload = upcast(event_type, version, payload)
    model = MODELS_BY_TYPE.get((event_type, version))
    if model is None:
        raise LookupError(f"unknown event type {event_type} v{version}")
    return model.model_validate(payload)


def _signed_by_nobody(payload: dict[str, Any]) -> dict[str, Any]:
    """v1 -> v2 of an event from an input that was not signed yet: v2's new fields (`signed_input`, and
    for settlement's `desk_id`) are optional, so the payload reads as it is."""
    return payload


for _event_type in ("MarketPriceObserved", "PlanRecorded", "DeliveryConfirmed", "PaymentMade"):
    UPCASTERS[(_event_type, 1)] = _signed_by_nobody

UPCASTERS[("SupervisionRoundHeld", 1)] = _signed_by_nobody  # v2 adds the optional `cutoff`: a v1 round had none
UPCASTERS[("PairingRegistered", 1)] = _signed_by_nobody  # v2 adds the optional `registered_on`: a v1 pairing named none
