"""What the matcher's outcomes are recorded as: each outcome's event type, its derived id and its JSON payload.

One mapping, used twice: the matching service turns each record into its contract model and appends it
(`services.matching.outcomes.outcome_event`), and the audit re-executes the journal and compares these
records with what the log holds (`farmlink/audit/replay.py`). Ids are uuid5 over the parts that make a
thing unique, never random, so a re-execution names every decision as the live service did. Pure: plain
values only (text, integers, dicts), no contract model.
"""

from __future__ import annotations

import hashlib
import uuid
from typing import Any

from matcher.facts import Fill, OfferClosed, OfferOpened, OfferShrunk, Outcome

FARMLINK_NAMESPACE = uuid.UUID("6f1d3c52-8f0e-4f38-9a57-1e3b2a7c9d10")
"""The uuid5 namespace of every id farmlink derives (journal entries, fills, offer events, rules adoptions)."""

_NAMESPACE = FARMLINK_NAMESPACE.bytes

Record = tuple[str, str, dict[str, Any]]
"""(event type, event id as text, JSON payload) of one recorded outcome."""


def derived_id(*parts: object) -> uuid.UUID:
    """A stable id from the parts that make a thing unique (uuid5 over the parts joined by "/")."""
    return uuid.uuid5(FARMLINK_NAMESPACE, "/".join(str(part) for part in parts))


def derived_text(*parts: object) -> str:
    """`str(derived_id(*parts))` (uuid5, RFC 4122) without building a UUID object: a third of the audit's
    re-execution went on them."""
    digest = bytearray(hashlib.sha1(_NAMESPACE + "/".join(map(str, parts)).encode("utf-8")).digest()[:16])
    digest[6] = (digest[6] & 0x0F) | 0x50
    digest[8] = (digest[8] & 0x3F) | 0x80
    text = digest.hex()
    return f"{text[:8]}-{text[8:12]}-{text[12:16]}-{text[16:20]}-{text[20:]}"


def fill_text(fill: Fill) -> str:
    """A fill is named by its lot, its outlet and its place in the product's output order."""
    return derived_text("fill", fill.product, fill.lot_id, fill.outlet_kind, fill.outlet_id, fill.position)


def fill_id(fill: Fill) -> uuid.UUID:
    """`fill_text` as a UUID."""
    return derived_id("fill", fill.product, fill.lot_id, fill.outlet_kind, fill.outlet_id, fill.position)


def _fill(fill: Fill) -> Record:
    fill_id = fill_text(fill)
    payload = {
        "fill_id": fill_id,
        "product": fill.product,
        "position": fill.position,
        "journal_seq": fill.journal_seq,
        "lot_id": fill.lot_id,
        "cooperative_id": fill.cooperative_id,
        "grade": fill.grade,
        "outlet_kind": fill.outlet_kind,
        "outlet_id": fill.outlet_id,
        "buyer_id": fill.buyer_id,
        "quantity": str(fill.quantity),
        "unit_price_fen": fill.unit_price_fen,
        "price_basis": fill.price_basis,
        "revenue_fen": fill.revenue_fen,
        "household_income_fen": dict(fill.household_income_fen),
        "floor_price_fen": fill.floor_price_fen,
        "market_price_fen": fill.market_price_fen,
        "price_as_of": None if fill.price_as_of is None else fill.price_as_of.isoformat(),
    }
    return "FillMade", fill_id, payload


def _offer(outcome: OfferOpened | OfferShrunk | OfferClosed, index: int) -> Record:
    event_id = derived_text("offer", outcome.product, outcome.journal_seq, index)
    payload: dict[str, Any]
    if isinstance(outcome, OfferOpened):
        payload = {
            "lot_id": outcome.lot_id,
            "product": outcome.product,
            "grade": outcome.grade,
            "cooperative_id": outcome.cooperative_id,
            "county": outcome.county,
            "township": outcome.township,
            "quantity_left": str(outcome.quantity_left),
            "available_from": outcome.available_from.isoformat(),
            "expires_on": outcome.expires_on.isoformat(),
            "journal_seq": outcome.journal_seq,
        }
        return "OfferOpened", event_id, payload
    if isinstance(outcome, OfferShrunk):
        payload = {
            "lot_id": outcome.lot_id,
            "product": outcome.product,
            "quantity_left": str(outcome.quantity_left),
            "journal_seq": outcome.journal_seq,
        }
        return "OfferShrunk", event_id, payload
    payload = {"lot_id": outcome.lot_id, "product": outcome.product, "journal_seq": outcome.journal_seq}
    return "OfferClosed", event_id, payload


def outcome_record(outcome: Outcome, index: int) -> Record:
    """(event type, event id, JSON payload) recording the matcher's outcome number `index` of one input.

    Raises TypeError for anything that is not an outcome."""
    if isinstance(outcome, Fill):
        return _fill(outcome)
    if isinstance(outcome, OfferOpened | OfferShrunk | OfferClosed):
        return _offer(outcome, index)
    raise TypeError(f"unknown outcome {outcome!r}")
