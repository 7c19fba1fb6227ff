"""How fast the pure matcher is, and how much it holds, over a long synthetic journal.

The journal is synthetic but shaped like seasons of the county: a few products, business
dates that move forward with the journal, lots and orders most of the time, some floor
commitments, market prices, plantings, cancellations, and a few duplicate ids. Lots of a
grade or region nobody asks for, and orders nobody can supply, stay on the book: by rule
nothing leaves it by date, so the book grows through the journal.

Only `Market.process` is timed; building the journal is not. Fills are checked against
the reference model (matcher/reference.py: matching-rules.md read literally, the oracle of the
property tests too) on a shorter journal of the same shape.
"""

from __future__ import annotations

import gc
import random
import sys
import time
import tracemalloc
from collections.abc import Callable, Iterable
from datetime import date
from decimal import Decimal
from typing import Any

from matcher import (
    LIVESTOCK,
    Commitment,
    Contribution,
    Fact,
    Lot,
    Market,
    MarketPrice,
    Order,
    OrderCancellation,
    Planting,
)
from farmlink.operations import workload
from matcher.reference import ReferenceFill, reference_fills, reference_view

GOAL_INPUTS_PER_S = 100_000
GOAL_BYTES_PER_RESTING = 1024
GOAL_RESTING = 10_000

PRODUCTS = ("chili", "tea_leaf", "live_pig", "sorghum")
PRODUCT_WEIGHTS = (4, 3, 2, 1)
BASE_PRICE_FEN = {"chili": 900, "tea_leaf": 4000, "live_pig": 180_000, "sorghum": 300}
COUNTIES = {**workload.COUNTIES, **workload.NEIGHBOURING_COUNTIES}
MARKETS = workload.MARKETS
FIRST_DAY = date(2020, 3, 1).toordinal()
INPUTS_PER_DAY = 1_000
"""Business dates move one day per this many inputs: a million inputs span about three seasons."""

KINDS = ("lot", "order", "price", "commitment", "cancellation", "planting")
KIND_WEIGHTS = (44, 38, 8, 0.6, 6, 3.4)


class _Season:
    """Draws the facts of a synthetic journal, one at a time, from one seeded generator."""

    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)
        self.days: dict[int, date] = {}
        self.counter = 0
        self.cooperatives = []
        for n in range(240):
            county = self.rng.choice(sorted(COUNTIES))
            households = tuple((f"coop-{n}-h{h}", self.rng.random() < 0.3) for h in range(self.rng.randint(1, 6)))
            self.cooperatives.append((f"coop-{n}", county, self.rng.choice(COUNTIES[county]), households))
        self.order_ids: list[tuple[str, str]] = []  # (order id, product), recent ones, for cancellations
        self.used_ids: list[tuple[str, str]] = []  # (kind, id) of a sample of facts, for duplicates
        self.today = FIRST_DAY

    def day(self, offset: int) -> date:
        ordinal = self.today + offset
        found = self.days.get(ordinal)
        if found is None:
            found = self.days[ordinal] = date.fromordinal(ordinal)
        return found

    def next_id(self, kind: str) -> str:
        if self.used_ids and self.rng.random() < 0.002:
            old_kind, old_id = self.rng.choice(self.used_ids)
            if old_kind == kind:
                return old_id  # a duplicate: the book must ignore it
        self.counter += 1
        new_id = f"{kind}-{self.counter}"
        if self.counter % 97 == 0:
            self.used_ids.append((kind, new_id))
        return new_id

    def quantity(self, product: str, low: int, high: int) -> Decimal:
        """Whole head of livestock (low..high / 20), kg to the gram of everything else."""
        if product in LIVESTOCK:
            return Decimal(max(1, self.rng.randint(low, high) // 20))
        return Decimal(self.rng.randint(low * 1000, high * 1000)).scaleb(-3)

    def price(self, product: str, low: float, high: float) -> int:
        return int(BASE_PRICE_FEN[product] * self.rng.uniform(low, high)) // 10 * 10

    def grade(self) -> str:
        return self.rng.choices("ABC", (3, 4, 3))[0]

    def lot(self, product: str) -> Lot:
        cooperative_id, county, township, households = self.rng.choice(self.cooperatives)
        members = households[: self.rng.randint(1, len(households))]
        contributions = tuple(Contribution(h, self.quantity(product, 10, 600), poor) for h, poor in members)
        total = sum((c.quantity for c in contributions), Decimal(0))
        quantity = total if self.rng.random() < 0.9 else self.quantity(product, 10, 2000)
        start = self.rng.randint(0, 4)
        return Lot(
            self.next_id("lot"),
            cooperative_id,
            county,
            township,
            product,
            self.grade(),
            quantity,
            self.day(start),
            self.day(start + self.rng.randint(2, 25)),
            contributions,
        )

    def order(self, product: str) -> Order:
        county = self.rng.choice(sorted(COUNTIES))
        townships = COUNTIES[county]
        regions = self.rng.choice(
            [(), (), (), (county,), (county,), tuple(self.rng.sample(townships, 2)), (townships[0], "Yuping")]
        )
        order_id = self.next_id("order")
        self.order_ids.append((order_id, product))
        if len(self.order_ids) > 5_000:
            del self.order_ids[:1_000]
        start = self.rng.randint(0, 10)
        return Order(
            order_id,
            f"buyer-{self.rng.randint(1, 60)}",
            product,
            self.grade(),
            self.quantity(product, 20, 1200),
            self.price(product, 0.6, 1.4),
            self.day(start),
            self.day(start + self.rng.randint(3, 30)),
            regions,
        )

    def commitment(self, product: str) -> Commitment:
        cap_kind = self.rng.choices(("some", "none", "zero"), (92, 5, 3))[0]
        cap = self.quantity(product, 500, 20_000) if cap_kind == "some" else {"none": None, "zero": Decimal(0)}[cap_kind]
        # A commitment without a cap has a per-mu limit, or it would take everything in its window.
        per_mu_limits = [Decimal(40), Decimal("2.5")] if cap is None else [None, None, Decimal(400), Decimal("2.5")]
        start = self.rng.randint(0, 20)
        counties = self.rng.choice([(), (), ("Yanhe",), ("Yuping", "Dejiang")])
        cooperatives = tuple(c[0] for c in self.rng.sample(self.cooperatives, 3)) if self.rng.random() < 0.2 else ()
        return Commitment(
            self.next_id("commitment"),
            f"yuping-{self.rng.randint(1, 5)}",
            product,
            self.grade(),
            self.price(product, 0.6, 1.0),
            self.rng.choices(MARKETS, (4, 1))[0],
            self.day(start),
            self.day(start + self.rng.randint(10, 60)),
            counties,
            cooperatives,
            cap,
            self.rng.choice(per_mu_limits),
        )

    def cancellation(self, product: str) -> OrderCancellation:
        if self.order_ids and self.rng.random() < 0.9:
            order_id, product = self.rng.choice(self.order_ids)
            return OrderCancellation(order_id, product)
        return OrderCancellation(f"order-unknown-{self.rng.randint(1, 1000)}", product)

    def planting(self, product: str) -> Planting:
        cooperative_id = self.rng.choice(self.cooperatives)[0]
        area = Decimal(self.rng.randint(1, 400)).scaleb(-self.rng.randint(0, 1))
        return Planting(self.next_id("planting"), cooperative_id, product, area)

    def market_price(self, product: str) -> MarketPrice:
        return MarketPrice(
            product,
            self.grade(),
            self.rng.choices(MARKETS, (4, 1))[0],
            self.price(product, 0.7, 1.3),
            self.day(-self.rng.randint(0, 5)),
        )


def synthetic_journal(inputs: int, seed: int = 2020) -> list[Fact]:
    """A deterministic journal of `inputs` facts over all products, in journal order. A shorter
    journal with the same seed is the start of a longer one."""
    season = _Season(seed)
    facts: list[Fact] = []
    for index in range(inputs):
        season.today = FIRST_DAY + index // INPUTS_PER_DAY
        kind = season.rng.choices(KINDS, KIND_WEIGHTS)[0]
        product = season.rng.choices(PRODUCTS, PRODUCT_WEIGHTS)[0]
        facts.append(getattr(season, "market_price" if kind == "price" else kind)(product))
    return facts


# ---------------------------------------------------------------- the reference


def engine_fills(journal: Iterable[Fact]) -> dict[str, list[ReferenceFill]]:
    """Per product, the fills the engine makes, in the reference model's view."""
    return reference_view(Market.replay(journal))


# ---------------------------------------------------------------- measuring


def _resting(market: Market) -> tuple[int, int]:
    """Resting lots and open outlets over all books."""
    books = [market.book(product) for product in market.products]
    return (
        sum(len(book.resting_lots()) for book in books if book),
        sum(len(book.open_outlets()) for book in books if book),
    )


def _time_market(journal: list[Fact]) -> tuple[Market, float, float]:
    """A fresh market over the journal, and the seconds `Market.process` took in all: on the clock,
    and of CPU time of this process (less when other work shares the machine)."""
    market = Market()
    process = market.process
    gc.collect()
    started, cpu_started = time.perf_counter(), time.process_time()
    for fact in journal:
        process(fact)
    return market, time.perf_counter() - started, time.process_time() - cpu_started


def _memory_held(journal: list[Fact]) -> int:
    """Bytes a fresh market allocates over the journal and still holds at its end, by tracemalloc.
    The facts are not counted: the journal built them before and owns them."""
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        market = Market()
        for fact in journal:
            market.process(fact)
        gc.collect()
        return tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()


_ID_OF = {Lot: "lot_id", Order: "order_id", Commitment: "commitment_id", Planting: "planting_id"}


def _id_sets_size(journal: list[Fact]) -> int:
    """Bytes of sets of every lot, order, commitment and planting id per product, as the duplicate
    rule makes any book keep: they grow with the journal, not with what rests on the book."""
    ids: dict[tuple[str, type], set[str]] = {}
    for fact in journal:
        name = _ID_OF.get(type(fact))
        if name is not None:
            ids.setdefault((fact.product, type(fact)), set()).add(getattr(fact, name))
    return sum(sys.getsizeof(kind_ids) for kind_ids in ids.values())


def _verdict(met: bool) -> str:
    return "met" if met else "NOT MET"


def _memory(journal: Any, resting: int, caveat: str, say: Callable[..., Any]) -> tuple[int, int, float, float]:
    """What the market holds at the end of the journal: (bytes held, bytes of id sets, per resting item, without ids)."""
    held, id_sets = _memory_held(journal), _id_sets_size(journal)
    per_resting = held / resting if resting else float("inf")
    say(
        f"memory the market holds at the end: {held / 2**20:.1f} MiB = {per_resting:,.0f} B per resting lot or outlet"
        f"   goal <= {GOAL_BYTES_PER_RESTING:,} B: {_verdict(per_resting <= GOAL_BYTES_PER_RESTING)}{caveat}"
    )
    without_ids = (held - id_sets) / resting if resting else float("inf")
    say(
        f"  of which {id_sets / 2**20:.1f} MiB are the ids of every lot, order, commitment and planting ever seen"
        f" (duplicate rule; grows with the journal, not the book): {without_ids:,.0f} B per resting item without them"
    )
    return held, id_sets, per_resting, without_ids


def _agreement(checked: int, say: Callable[..., Any]) -> tuple[int, bool]:
    """The engine's fills against the reference model's on the first `checked` inputs: (fills, identical)."""
    check_journal = synthetic_journal(checked)
    expected = reference_fills(check_journal)
    actual = engine_fills(check_journal)
    identical = expected == actual
    check_fills = sum(len(product_fills) for product_fills in expected.values())
    say(
        f"fills on the first {checked:,} inputs: {check_fills:,} by the reference, "
        f"{'identical' if identical else 'DIFFERENT'} in the engine"
    )
    return check_fills, identical


def run_matcher_bench(inputs: int = 1_000_000, smoke: bool = False, say: Callable[..., Any] = print) -> dict[str, Any]:
    """Time the matcher over a synthetic journal of `inputs` facts, measure what it holds at the end,
    and check its fills against the reference on a shorter journal. Smoke: 20,000 inputs, checked on 2,000."""
    if smoke:
        inputs = min(inputs, 20_000)
    checked = 2_000 if smoke else 20_000
    caveat = " (a smoke run: the goals are for 1,000,000 inputs)" if smoke else ""

    started = time.perf_counter()
    journal = synthetic_journal(inputs)
    say(f"journal of {inputs:,} inputs built in {time.perf_counter() - started:.1f} s (not timed)")

    market, seconds, cpu_seconds = _time_market(journal)
    per_second = inputs / seconds
    fills = sum(book.fills_so_far for product in market.products if (book := market.book(product)))
    lots, outlets = _resting(market)
    resting = lots + outlets
    del market
    say(
        f"matched {inputs:,} inputs in {seconds:.2f} s: {per_second:,.0f} inputs/s"
        f"   goal >= {GOAL_INPUTS_PER_S:,} inputs/s: {_verdict(per_second >= GOAL_INPUTS_PER_S)}{caveat}"
    )
    say(
        f"  the process had the CPU for {cpu_seconds:.2f} s of them ({cpu_seconds / seconds:.0%}):"
        f" {inputs / cpu_seconds:,.0f} inputs per CPU second"
    )
    say(f"fills: {fills:,}")
    say(
        f"resting at the end: {lots:,} lots + {outlets:,} outlets = {resting:,}"
        f"   goal >= {GOAL_RESTING:,}: {_verdict(resting >= GOAL_RESTING)}{caveat}"
    )

    held, id_sets, per_resting, without_ids = _memory(journal, resting, caveat, say)
    del journal
    check_fills, identical = _agreement(checked, say)
    return {
        "inputs": inputs,
        "seconds": round(seconds, 3),
        "cpu_seconds": round(cpu_seconds, 3),
        "inputs_per_s": round(per_second),
        "fills": fills,
        "resting_lots": lots,
        "open_outlets": outlets,
        "resting": resting,
        "bytes_held": held,
        "bytes_per_resting": round(per_resting),
        "id_set_bytes": id_sets,
        "bytes_per_resting_without_ids": round(without_ids),
        "checked_inputs": checked,
        "checked_fills": check_fills,
        "identical_fills": identical,
        "goals": {
            "inputs_per_s": GOAL_INPUTS_PER_S,
            "bytes_per_resting": GOAL_BYTES_PER_RESTING,
            "resting": GOAL_RESTING,
        },
    }
