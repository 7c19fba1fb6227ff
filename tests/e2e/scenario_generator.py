"""Random but reproducible scenarios: the end-to-end tests publish ones no test has seen before."""

import json
import random
from datetime import date, timedelta

from farmlink.operations.places import COUNTIES

PRODUCTS = ("chili", "oil_tea_fruit", "live_pig")
"""Two of the generated products (farmlink/operations/places.py) and livestock in whole head: few, so a short
scenario makes fills."""


def _day(rng: random.Random, start: int = 0, span: int = 40) -> date:
    return date(2020, 9, 1) + timedelta(days=rng.randint(start, start + span))


def _quantity(rng: random.Random, product: str, low: int, high: int) -> str:
    whole = rng.randint(low, high)
    if product == "live_pig":
        return str(whole)
    return f"{whole}.{rng.randint(0, 999):03d}"


def generate(seed: int, lines: int = 120, prefix: str = "") -> list[str]:
    """A scenario of about `lines` lines: cooperatives, plantings, lots, orders, commitments,
    prices, cancellations, and a few lines the services must reject."""
    rng = random.Random(seed)
    out: list[dict] = []
    cooperatives = []
    for c in range(4):
        county = rng.choice(sorted(COUNTIES))
        township = rng.choice(COUNTIES[county])
        households = [
            {"household_id": f"{prefix}h{c}-{h}", "registered_poor": rng.random() < 0.6} for h in range(rng.randint(1, 4))
        ]
        cooperative_id = f"{prefix}coop{c}"
        cooperatives.append((cooperative_id, households))
        out.append(
            {
                "type": "cooperative.registered",
                "payload": {
                    "cooperative_id": cooperative_id,
                    "name": f"cooperative {c}",
                    "county": county,
                    "township": township,
                    "village": f"village {c}",
                    "households": households,
                },
            }
        )
    buyers = [f"{prefix}{name}" for name in ("tongren-mart", "zunyi-canteen", "yuping-buyer")]
    for buyer_id in buyers:
        out.append({"type": "buyer.registered", "payload": {"buyer_id": buyer_id, "name": f"buyer {buyer_id}"}})
    orders: list[tuple[str, str]] = []
    for n in range(lines):
        kind = rng.choices(
            ["lot", "order", "commitment", "price", "planting", "cancel", "bad", "stranger"], [30, 25, 8, 15, 10, 5, 4, 2]
        )[0]
        product = rng.choice(PRODUCTS)
        grade, min_grade = rng.choice("ABC"), rng.choice("ABC")
        if kind in ("lot", "bad"):
            cooperative_id, households = rng.choice(cooperatives)
            members = rng.sample(households, rng.randint(1, len(households)))
            parts = [_quantity(rng, product, 1, 400) for _ in members]
            total = sum(__import__("decimal").Decimal(p) for p in parts)
            start = _day(rng)
            out.append(
                {
                    "type": "harvest.recorded",
                    "payload": {
                        "lot_id": f"{prefix}lot{n}",
                        "cooperative_id": cooperative_id if kind == "lot" else f"{prefix}nobody",
                        "product": product,
                        "grade": grade,
                        "quantity": str(total),
                        "available_from": start.isoformat(),
                        "expires_on": (start + timedelta(days=rng.randint(0, 20))).isoformat(),
                        "contributions": [{"household_id": m["household_id"], "quantity": p} for m, p in zip(members, parts)],
                    },
                }
            )
        elif kind in ("order", "stranger"):  # a stranger: an order from a buyer who never registered, rejected
            start = _day(rng)
            counties = sorted(COUNTIES) + [t for ts in COUNTIES.values() for t in ts]
            buyer_id = rng.choice(buyers[:2]) if kind == "order" else f"{prefix}stranger"
            orders.append((f"{prefix}order{n}", buyer_id))
            out.append(
                {
                    "type": "order.placed",
                    "payload": {
                        "order_id": f"{prefix}order{n}",
                        "buyer_id": buyer_id,
                        "product": product,
                        "min_grade": min_grade,
                        "quantity": _quantity(rng, product, 1, 600),
                        "limit_price_fen": rng.randint(300, 900),
                        "deliver_from": start.isoformat(),
                        "deliver_to": (start + timedelta(days=rng.randint(0, 30))).isoformat(),
                        "regions": rng.sample(counties, rng.randint(0, 2)),
                    },
                }
            )
        elif kind == "commitment":
            start = _day(rng, 0, 10)
            out.append(
                {
                    "type": "commitment.made",
                    "payload": {
                        "commitment_id": f"{prefix}commitment{n}",
                        "buyer_id": buyers[2],
                        "product": product,
                        "min_grade": min_grade,
                        "floor_price_fen": rng.randint(300, 700),
                        "reference_market": "Tongren",
                        "valid_from": start.isoformat(),
                        "valid_to": (start + timedelta(days=rng.randint(10, 60))).isoformat(),
                        "eligible_counties": rng.choice([[], ["Yanhe"]]),
                        "eligible_cooperatives": rng.choice([[], [f"{prefix}coop0"]]),
                        "cap_quantity": rng.choice([None, _quantity(rng, product, 100, 2000)]),
                        "max_quantity_per_mu": rng.choice([None, "50", "120.5"]),
                    },
                }
            )
        elif kind == "price":
            out.append(
                {
                    "type": "market_price.observed",
                    "payload": {
                        "product": product,
                        "grade": grade,
                        "market": rng.choice(["Tongren", "Zunyi"]),
                        "price_fen": rng.randint(250, 900),
                        "observed_on": _day(rng, -10).isoformat(),
                    },
                }
            )
        elif kind == "planting":
            cooperative_id, households = rng.choice(cooperatives)
            start = _day(rng, -60)
            out.append(
                {
                    "type": "planting.recorded",
                    "payload": {
                        "planting_id": f"{prefix}planting{n}",
                        "cooperative_id": cooperative_id,
                        "product": product,
                        "area_mu": f"{rng.randint(1, 30)}.{rng.randint(0, 99):02d}",
                        "expected_yield": _quantity(rng, product, 10, 900),
                        "expected_harvest_from": start.isoformat(),
                        "expected_harvest_to": (start + timedelta(days=30)).isoformat(),
                        "household_ids": [households[0]["household_id"]],
                    },
                }
            )
        elif kind == "cancel" and orders:
            order_id, owner = rng.choice(orders)
            # now and then another buyer tries to cancel it: rejected, the order stands
            buyer_id = owner if rng.random() < 0.8 else rng.choice(buyers)
            out.append({"type": "order.cancelled", "payload": {"order_id": order_id, "buyer_id": buyer_id}})
    return [json.dumps(line, ensure_ascii=False) for line in out]
