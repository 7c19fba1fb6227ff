"""The chaos run's workload: a seeded, reproducible stream of signed inputs (registrations first, then harvests,
orders, cancellations, prices, plantings, commitments and plans), the payments that follow the fills, and how
each input is encoded for Kafka as `farmlink publish` would send it.
"""

from __future__ import annotations

import random
from datetime import date, timedelta
from decimal import Decimal

from contracts.inputs import INPUT_OWNER, SERVICE_INPUT_TOPIC
from contracts.parties import DEFAULT_DESK
from farmlink.producers.keyring import Keyring
from farmlink.operations.places import COUNTIES, MARKETS, PRODUCTS
from farmlink.producers.publisher import input_message, key_of


BUYERS = ("tongren-mart", "zunyi-canteen", "guiyang-foods")
FLOOR_BUYER = "yuping-buyer"
INPUT_SERVICES = ("cooperative", "buyer", "market", "settlement")


# ---------------------------------------------------------------------------------------------
# The workload


class Workload:
    """A seeded stream of valid-looking inputs; a few are rejected by the rules, which is an outcome too."""

    def __init__(self, run_id: str, seed: int, cooperatives: int = 40):
        self.run_id = run_id
        self.rng = random.Random(seed)
        self.n = 0
        self.cooperatives: list[tuple[str, list[str]]] = []
        self.orders: list[tuple[str, str]] = []
        self.cooperative_count = cooperatives

    def _day(self, start: int = 0, span: int = 40) -> date:
        return date(2020, 9, 1) + timedelta(days=self.rng.randint(start, start + span))

    def _quantity(self, low: int, high: int) -> str:
        return f"{self.rng.randint(low, high)}.{self.rng.randint(0, 999):03d}"

    def message_id(self, n: int) -> str:
        return f"{self.run_id}-{n:07d}"

    def registrations(self) -> list[tuple[str, dict]]:
        """Every party of the run joins first (their keys are registered with them): the markets' price feeds,
        the settlement desk, the buyers and the cooperatives."""
        out: list[tuple[str, dict]] = [
            ("price_feed.registered", {"market": market, "name": f"{market} market"}) for market in MARKETS
        ]
        out.append(("settlement_desk.registered", {"desk_id": DEFAULT_DESK, "name": "county settlement desk"}))
        out += [("buyer.registered", {"buyer_id": buyer_id, "name": buyer_id}) for buyer_id in (*BUYERS, FLOOR_BUYER)]
        for c in range(self.cooperative_count):
            county = self.rng.choice(sorted(COUNTIES))
            households = [f"{self.run_id}-h{c}-{h}" for h in range(self.rng.randint(1, 5))]
            cooperative_id = f"{self.run_id}-coop{c}"
            self.cooperatives.append((cooperative_id, households))
            out.append(
                (
                    "cooperative.registered",
                    {
                        "cooperative_id": cooperative_id,
                        "name": f"cooperative {c}",
                        "county": county,
                        "township": self.rng.choice(COUNTIES[county]),
                        "village": f"village {c}",
                        "households": [{"household_id": h, "registered_poor": self.rng.random() < 0.6} for h in households],
                    },
                )
            )
        return out

    def next_input(self) -> tuple[str, dict]:
        """One input of the stream (never a payment: those follow the fills, see `payment`)."""
        self.n += 1
        kind = self.rng.choices(["lot", "order", "price", "planting", "commitment", "cancel", "plan"], [34, 34, 12, 8, 3, 6, 3])[
            0
        ]
        product = self.rng.choice(PRODUCTS)
        if kind == "cancel" and not self.orders:
            kind = "order"
        make = {
            "lot": self._lot,
            "order": self._order,
            "cancel": self._cancellation,
            "price": self._price,
            "planting": self._planting,
            "commitment": self._commitment,
            "plan": self._plan,
        }[kind]
        return make(self.n, product)

    def _lot(self, n: int, product: str) -> tuple[str, dict]:
        rng = self.rng
        cooperative_id, households = rng.choice(self.cooperatives)
        members = rng.sample(households, rng.randint(1, len(households)))
        parts = [self._quantity(1, 300) for _ in members]
        start = self._day()
        return "harvest.recorded", {
            "lot_id": f"{self.run_id}-lot{n}",
            "cooperative_id": cooperative_id,
            "product": product,
            "grade": rng.choice("ABC"),
            "quantity": str(sum(Decimal(p) for p in parts)),
            "available_from": start.isoformat(),
            "expires_on": (start + timedelta(days=rng.randint(5, 30))).isoformat(),
            "contributions": [{"household_id": m, "quantity": p} for m, p in zip(members, parts, strict=True)],
        }

    def _order(self, n: int, product: str) -> tuple[str, dict]:
        rng = self.rng
        start = self._day()
        order_id, buyer_id = f"{self.run_id}-order{n}", rng.choice(BUYERS)
        self.orders.append((order_id, buyer_id))
        return "order.placed", {
            "order_id": order_id,
            "buyer_id": buyer_id,
            "product": product,
            "min_grade": rng.choice("ABC"),
            "quantity": self._quantity(1, 500),
            "limit_price_fen": rng.randint(300, 900),
            "deliver_from": start.isoformat(),
            "deliver_to": (start + timedelta(days=rng.randint(5, 30))).isoformat(),
            "regions": rng.choice([[], [], ["Yanhe"], ["Yanhe", "Yuping"]]),
        }

    def _cancellation(self, n: int, product: str) -> tuple[str, dict]:
        order_id, buyer_id = self.orders.pop(self.rng.randrange(len(self.orders)))
        return "order.cancelled", {"order_id": order_id, "buyer_id": buyer_id}

    def _price(self, n: int, product: str) -> tuple[str, dict]:
        rng = self.rng
        return "market_price.observed", {
            "product": product,
            "grade": rng.choice("ABC"),
            "market": rng.choice(MARKETS),
            "price_fen": rng.randint(250, 900),
            "observed_on": self._day(-10).isoformat(),
        }

    def _planting(self, n: int, product: str) -> tuple[str, dict]:
        rng = self.rng
        cooperative_id, households = rng.choice(self.cooperatives)
        start = self._day(-60)
        return "planting.recorded", {
            "planting_id": f"{self.run_id}-planting{n}",
            "cooperative_id": cooperative_id,
            "product": product,
            "area_mu": f"{rng.randint(1, 30)}.{rng.randint(0, 99):02d}",
            "expected_yield": self._quantity(10, 900),
            "expected_harvest_from": start.isoformat(),
            "expected_harvest_to": (start + timedelta(days=30)).isoformat(),
            "household_ids": [households[0]],
        }

    def _commitment(self, n: int, product: str) -> tuple[str, dict]:
        rng = self.rng
        start = self._day(0, 10)
        return "commitment.made", {
            "commitment_id": f"{self.run_id}-commitment{n}",
            "buyer_id": FLOOR_BUYER,
            "product": product,
            "min_grade": rng.choice("ABC"),
            "floor_price_fen": rng.randint(300, 700),
            "reference_market": "Tongren",
            "valid_from": start.isoformat(),
            "valid_to": (start + timedelta(days=rng.randint(10, 60))).isoformat(),
            "eligible_counties": rng.choice([[], ["Yanhe"]]),
            "eligible_cooperatives": [],
            "cap_quantity": rng.choice([None, self._quantity(100, 3000)]),
            "max_quantity_per_mu": None,
        }

    def _plan(self, n: int, product: str) -> tuple[str, dict]:
        rng = self.rng
        county = rng.choice(sorted(COUNTIES))
        return "plan.recorded", {
            "plan_id": f"{self.run_id}-plan{n}",
            "county": county,
            "township": rng.choice(COUNTIES[county]),
            "product": product,
            "area_mu": f"{rng.randint(100, 3000)}",
            "target_household_income_fen": rng.randint(100_000, 2_000_000),
        }


def payment(lot_id: str, outlet_id: str, amount_fen: int) -> tuple[str, dict]:
    return "payment.made", {"lot_id": lot_id, "outlet_id": outlet_id, "amount_fen": amount_fen}


def encode(message_id: str, input_type: str, payload: dict, correlation_id: str, keyring: Keyring) -> tuple[str, bytes, bytes]:
    """(topic, key, value) of one input, as `farmlink publish` would send it: signed by its producer."""
    message = input_message(input_type, payload, correlation_id, keyring, message_id=message_id)
    return SERVICE_INPUT_TOPIC[INPUT_OWNER[input_type]], key_of(input_type, payload).encode(), message.model_dump_json().encode()
