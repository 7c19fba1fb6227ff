"""Valid inputs for the end-to-end tests, built in ONE place.

`valid_input` is the only way the e2e tests make an input a service should accept: signed
the way `farmlink publish` signs (every input carries its party's Ed25519 signature). Prices
and settlement lines come from parties that must be registered first: `register_parties`.
"""

import asyncio
import json
import uuid
from dataclasses import dataclass

from contracts.inputs import INPUT_OWNER, SERVICE_INPUT_TOPIC
from contracts.parties import DEFAULT_DESK
from farmlink.producers.publisher import input_message, key_of, publish_lines
from farmlink.producers.scenario import parse_line
from tests.signed_inputs import KEYRING

MARKET = "Tongren"
"""The market whose price feed (registered by `register_parties`) reports the tests' valid prices."""


def register_parties(bootstrap: str) -> None:
    """Register the tests' price feed and the default settlement desk with the tests' keyring, and wait
    until both are accepted (registering again with the same key is accepted and changes nothing)."""
    lines = [
        parse_line(1, json.dumps({"type": "price_feed.registered", "payload": {"market": MARKET, "name": f"{MARKET} market"}})),
        parse_line(
            2,
            json.dumps(
                {"type": "settlement_desk.registered", "payload": {"desk_id": DEFAULT_DESK, "name": "county settlement desk"}}
            ),
        ),
    ]
    summary = asyncio.run(publish_lines(bootstrap, lines, keyring=KEYRING))
    assert summary.accepted == 2, summary.rejected


@dataclass(frozen=True)
class Record:
    """One record to publish, and what must become of it."""

    topic: str
    key: bytes | None
    value: bytes | None
    headers: tuple[tuple[str, bytes | None], ...] = ()
    reason: str | None = None  # a regex the dlq.reason must match; None: a valid input
    message_id: str | None = None
    correlation_id: str | None = None


def valid_input(input_type: str, payload: dict, *, message_id: str | None = None, correlation_id: str | None = None) -> Record:
    """THE way the e2e tests build a valid input: as `farmlink publish` does, signed by its producer's
    key (cooperative and buyer inputs; registrations carry the key), from the tests' own throwaway keyring."""
    message = input_message(
        input_type, payload, correlation_id or f"fuzz:{uuid.uuid4().hex}", KEYRING, message_id=message_id or uuid.uuid4().hex
    )
    key = key_of(input_type, payload)
    return Record(
        SERVICE_INPUT_TOPIC[INPUT_OWNER[input_type]],
        key.encode(),
        message.model_dump_json().encode(),
        message_id=message.message_id,
        correlation_id=message.correlation_id,
    )


def fresh() -> str:
    return uuid.uuid4().hex[:12]


def valid_payload(input_type: str) -> dict:
    """A payload its service accepts on its own (no earlier input needed), with fresh ids."""
    n = fresh()
    return {
        "cooperative.registered": lambda: {
            "cooperative_id": f"coop-{n}",
            "name": "Fengjia Oil-Tea Cooperative",
            "county": "Yanhe",
            "township": "Ketian",
            "village": "Fengjia",
            "households": [{"household_id": f"hh-{n}-1", "registered_poor": True}],
        },
        "buyer.registered": lambda: {"buyer_id": f"buyer-{n}", "name": "Tongren tea company"},
        "order.placed": lambda: {
            "order_id": f"order-{n}",
            "buyer_id": "tongren-tea-co",
            "product": "tea_leaf",
            "min_grade": "A",
            "quantity": "1500",
            "limit_price_fen": 3000,
            "deliver_from": "2020-03-15",
            "deliver_to": "2020-04-30",
            "regions": ["Ketian"],
        },
        "market_price.observed": lambda: {
            "product": "oil_tea_fruit",
            "grade": "A",
            "market": MARKET,
            "price_fen": 450,
            "observed_on": "2020-09-15",
        },
        "plan.recorded": lambda: {
            "plan_id": f"plan-{n}",
            "county": "Yanhe",
            "township": "Ketian",
            "product": "chili",
            "area_mu": "2000",
            "target_household_income_fen": 2400000,
        },
        # Rejected by the model before any lookup, so fine as a base for bad numbers:
        "harvest.recorded": lambda: {
            "lot_id": f"lot-{n}",
            "cooperative_id": "ketian-community-coop",
            "product": "tea_leaf",
            "grade": "A",
            "quantity": "1200.00",
            "available_from": "2020-03-20",
            "expires_on": "2020-03-27",
            "contributions": [{"household_id": "kt-01", "quantity": "1200.00"}],
        },
        "payment.made": lambda: {"lot_id": f"lot-{n}", "outlet_id": f"order-{n}", "amount_fen": 100},
    }[input_type]()


def scenario_file(path, *lines: tuple[str, dict]):
    """A scenario file of these (type, payload) lines, as `farmlink publish` reads it."""
    path.write_text("".join(json.dumps({"type": kind, "payload": payload}, ensure_ascii=False) + "\n" for kind, payload in lines))
    return path
