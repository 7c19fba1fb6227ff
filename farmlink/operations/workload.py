"""The one seeded workload generator, over the one list of places, markets and products: a reproducible stream of
input payloads (registrations first, then harvests, orders, cancellations, prices, plantings, commitments and plans),
and the payments that follow the fills. A county, township, market or product added here is met by every generator.

Drawn from by the chaos run (farmlink/operations/chaos/) and the scenario benchmark (`farmlink bench scenario`) with
the default mix, and by the end-to-end tests' random scenarios (tests/e2e/scenario_generator.py: a few products with
livestock, richer commitment terms, and lines the services must reject). The synthetic audit season
(farmlink/operations/bench/synthetic.py) draws its places from these lists, and so does the matcher bench's season
(farmlink/operations/bench/matcher_bench.py, with NEIGHBOURING_COUNTIES), which keeps its own stream of matcher facts
(weighted products with base prices) because the docs quote its measured figures. Still apart: the property tests'
tiny alphabets (tests/unit/matcher_journals.py) and schema-drawn payloads (tests/strategies.py), chosen so that
hypothesis can shrink and random inputs meet.
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from datetime import date, timedelta
from decimal import Decimal

from contracts.parties import DEFAULT_DESK
from matcher import LIVESTOCK

PRODUCTS = ("chili", "oil_tea_fruit", "sorghum", "tea_leaf", "black_fungus", "sweet_potato")
"""Products of the catalogue (contracts/catalogue.py) weighed in kg, in the order generators draw from."""
COUNTIES = {"Yanhe": ("Ketian", "Tangba", "Gongzhou", "Quanba"), "Yuping": ("Tianping", "Zhujiachang")}
"""Each county and its townships."""
NEIGHBOURING_COUNTIES = {"Dejiang": ("Qinglong", "Gongxi", "Hexing")}
"""Counties beyond the pairing whose cooperatives the matcher benchmark's larger season also draws (a third county
for eligibility lists); the chaos run and the scenarios keep to COUNTIES."""
MARKETS = ("Tongren", "Zunyi")
"""The markets whose price feeds report prices."""

BUYERS = ("tongren-mart", "zunyi-canteen", "guiyang-foods")
FLOOR_BUYER = "yuping-buyer"

MIX = {"lot": 34, "order": 34, "price": 12, "planting": 8, "commitment": 3, "cancel": 6, "plan": 3}
"""How often each kind of input comes (the chaos run's and the scenario benchmark's stream)."""
REJECTED_KINDS = ("lot_of_nobody", "order_of_a_stranger", "cancel_by_another_buyer")
"""Inputs the services must reject (an unregistered cooperative's lot, an unregistered buyer's order, a cancellation
by a buyer who did not place the order): drawn only when a mix weighs them."""


class Workload:
    """A seeded stream of valid-looking inputs; a few are rejected by the rules, which is an outcome too.

    `run_id` prefixes every id of the run; `buyer_prefix` the buyers' (none by default: the chaos run wipes the data
    first); `rich_commitments` also draws eligible cooperatives and a per-mu limit for floor commitments."""

    def __init__(
        self,
        run_id: str,
        seed: int,
        cooperatives: int = 40,
        *,
        products: tuple[str, ...] = PRODUCTS,
        mix: Mapping[str, int] = MIX,
        buyer_prefix: str = "",
        rich_commitments: bool = False,
    ):
        self.run_id = run_id
        self.rng = random.Random(seed)
        self.n = 0
        self.cooperatives: list[tuple[str, list[str]]] = []
        self.orders: list[tuple[str, str]] = []
        self.cooperative_count = cooperatives
        self.products = products
        # Kinds a mix leaves out weigh 0 at the end of the list: the same draw picks the same kind.
        self.kinds = (*MIX, *REJECTED_KINDS)
        self.weights = [mix.get(kind, 0) for kind in self.kinds]
        self.buyers = tuple(f"{buyer_prefix}{buyer_id}" for buyer_id in BUYERS)
        self.floor_buyer = f"{buyer_prefix}{FLOOR_BUYER}"
        self.stranger = f"{buyer_prefix}stranger"
        self.rich_commitments = rich_commitments

    def _day(self, start: int = 0, span: int = 40) -> date:
        return date(2020, 9, 1) + timedelta(days=self.rng.randint(start, start + span))

    def _quantity(self, product: str, low: int, high: int) -> str:
        whole = self.rng.randint(low, high)
        return str(whole) if product in LIVESTOCK else f"{whole}.{self.rng.randint(0, 999):03d}"

    def message_id(self, n: int) -> str:
        return f"{self.run_id}-{n:07d}"

    def registrations(self) -> list[tuple[str, dict]]:
        """Every party of the run joins first (their keys are registered with them): the markets' price feeds,
        the settlement desk, the buyers and the cooperatives."""
        out: list[tuple[str, dict]] = [
            ("price_feed.registered", {"market": market, "name": f"{market} market"}) for market in MARKETS
        ]
        out.append(("settlement_desk.registered", {"desk_id": DEFAULT_DESK, "name": "county settlement desk"}))
        out += [("buyer.registered", {"buyer_id": buyer_id, "name": buyer_id}) for buyer_id in (*self.buyers, self.floor_buyer)]
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
        kind = self.rng.choices(self.kinds, self.weights)[0]
        product = self.rng.choice(self.products)
        if kind in ("cancel", "cancel_by_another_buyer") and not self.orders:
            kind = "order"
        make = {
            "lot": self._lot,
            "order": self._order,
            "cancel": self._cancellation,
            "price": self._price,
            "planting": self._planting,
            "commitment": self._commitment,
            "plan": self._plan,
            "lot_of_nobody": self._lot_of_nobody,
            "order_of_a_stranger": self._order_of_a_stranger,
            "cancel_by_another_buyer": self._cancellation_by_another_buyer,
        }[kind]
        return make(self.n, product)

    def _lot(self, n: int, product: str, cooperative_id: str | None = None) -> tuple[str, dict]:
        rng = self.rng
        registered, households = rng.choice(self.cooperatives)
        members = rng.sample(households, rng.randint(1, len(households)))
        parts = [self._quantity(product, 1, 300) for _ in members]
        start = self._day()
        return "harvest.recorded", {
            "lot_id": f"{self.run_id}-lot{n}",
            "cooperative_id": cooperative_id or registered,
            "product": product,
            "grade": rng.choice("ABC"),
            "quantity": str(sum(Decimal(p) for p in parts)),
            "available_from": start.isoformat(),
            "expires_on": (start + timedelta(days=rng.randint(5, 30))).isoformat(),
            "contributions": [{"household_id": m, "quantity": p} for m, p in zip(members, parts, strict=True)],
        }

    def _lot_of_nobody(self, n: int, product: str) -> tuple[str, dict]:
        return self._lot(n, product, cooperative_id=f"{self.run_id}-nobody")

    def _order(self, n: int, product: str, buyer_id: str | None = None) -> tuple[str, dict]:
        rng = self.rng
        start = self._day()
        order_id, buyer_id = f"{self.run_id}-order{n}", buyer_id or rng.choice(self.buyers)
        self.orders.append((order_id, buyer_id))
        return "order.placed", {
            "order_id": order_id,
            "buyer_id": buyer_id,
            "product": product,
            "min_grade": rng.choice("ABC"),
            "quantity": self._quantity(product, 1, 500),
            "limit_price_fen": rng.randint(300, 900),
            "deliver_from": start.isoformat(),
            "deliver_to": (start + timedelta(days=rng.randint(5, 30))).isoformat(),
            "regions": rng.choice([[], [], ["Yanhe"], ["Yanhe", "Yuping"]]),
        }

    def _order_of_a_stranger(self, n: int, product: str) -> tuple[str, dict]:
        return self._order(n, product, buyer_id=self.stranger)

    def _cancellation(self, n: int, product: str) -> tuple[str, dict]:
        order_id, buyer_id = self.orders.pop(self.rng.randrange(len(self.orders)))
        return "order.cancelled", {"order_id": order_id, "buyer_id": buyer_id}

    def _cancellation_by_another_buyer(self, n: int, product: str) -> tuple[str, dict]:
        order_id, owner = self.orders[self.rng.randrange(len(self.orders))]
        other = self.rng.choice([buyer_id for buyer_id in self.buyers if buyer_id != owner])
        return "order.cancelled", {"order_id": order_id, "buyer_id": other}

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
            "expected_yield": self._quantity(product, 10, 900),
            "expected_harvest_from": start.isoformat(),
            "expected_harvest_to": (start + timedelta(days=30)).isoformat(),
            "household_ids": [households[0]],
        }

    def _commitment(self, n: int, product: str) -> tuple[str, dict]:
        rng = self.rng
        start = self._day(0, 10)
        payload = {
            "commitment_id": f"{self.run_id}-commitment{n}",
            "buyer_id": self.floor_buyer,
            "product": product,
            "min_grade": rng.choice("ABC"),
            "floor_price_fen": rng.randint(300, 700),
            "reference_market": "Tongren",
            "valid_from": start.isoformat(),
            "valid_to": (start + timedelta(days=rng.randint(10, 60))).isoformat(),
            "eligible_counties": rng.choice([[], ["Yanhe"]]),
            "eligible_cooperatives": [],
            "cap_quantity": rng.choice([None, self._quantity(product, 100, 3000)]),
            "max_quantity_per_mu": None,
        }
        if self.rich_commitments:
            payload["eligible_cooperatives"] = rng.choice([[], [self.cooperatives[0][0]]])
            payload["max_quantity_per_mu"] = rng.choice([None, "50", "120.5"])
        return "commitment.made", payload

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
