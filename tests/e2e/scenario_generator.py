"""Random but reproducible scenarios: the end-to-end tests publish ones no test has seen before, drawn from the one
workload generator (farmlink/operations/workload.py)."""

import json

from farmlink.operations.workload import Workload

PRODUCTS = ("chili", "oil_tea_fruit", "live_pig")
"""Two of the generated products and livestock in whole head: few, so a short scenario makes fills."""
MIX = {
    "lot": 30,
    "order": 25,
    "commitment": 8,
    "price": 15,
    "planting": 10,
    "cancel": 4,
    "cancel_by_another_buyer": 1,
    "lot_of_nobody": 4,
    "order_of_a_stranger": 2,
}
"""The inputs of a scenario, a few the services must reject among them (no plans: the desk's plans are the demo's)."""
PARTIES = ("cooperative.registered", "buyer.registered")
"""The registrations a scenario carries (`farmlink publish` registers the price feeds and the desk it uses)."""


def generate(seed: int, lines: int = 120, prefix: str = "") -> list[str]:
    """A scenario of four cooperatives, three buyers and `lines` more lines: plantings, lots, orders, commitments,
    prices, cancellations, and a few lines the services must reject. `prefix` starts every id (buyers' too), so
    scenarios of different prefixes can be published into one system."""
    workload = Workload(
        prefix.rstrip("-") or "e2e",
        seed,
        cooperatives=4,
        products=PRODUCTS,
        mix=MIX,
        buyer_prefix=prefix,
        rich_commitments=True,
    )
    registrations = [(kind, payload) for kind, payload in workload.registrations() if kind in PARTIES]
    inputs = registrations + [workload.next_input() for _ in range(lines)]
    return [json.dumps({"type": kind, "payload": payload}, ensure_ascii=False) for kind, payload in inputs]
