"""Hypothesis journals of matcher facts for the property tests: a week of one market, few ids, so inputs meet."""

from datetime import date, timedelta
from decimal import Decimal
from functools import lru_cache
from math import prod

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

from matcher import LIVESTOCK, Commitment, Contribution, Lot, MarketPrice, Order, OrderCancellation, Planting

PROPERTY = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])

PRODUCTS = ("chili", "live_pig")
START = date(2020, 5, 1)
COOPERATIVES = ("co1", "co2", "co3")
COUNTIES = ("Yanhe", "Dejiang")
TOWNSHIPS = ("Ketian", "Tangba", "Tongjing")
MARKETS = ("tongren", "tongren", "tongren", "yuping")  # mostly one market, so prices apply

# Facts are built by plain functions that draw from hypothesis directly, and each
# draw picks several discrete choices at once: draws, not matching, were the slow part.
# Each draw's range stays within 256 values, which hypothesis draws evenly; wider
# ranges lean towards small numbers and would starve the later choices.
WEEK = tuple(START + timedelta(days=n) for n in range(7))
GRADES = ("A", "B", "C")
LOT_IDS = ("L1", "L2", "L3", "L4", "L5", "L6")
ORDER_IDS = ("O1", "O2", "O3", "O4")
COMMITMENT_IDS = ("C1", "C2", "C3")
PLANTING_IDS = ("P1", "P2", "P3", "P4")
HOUSEHOLDS = ("h1", "h2", "h3", "h4")
KINDS = ("lot", "lot", "lot", "order", "order", "commitment", "commitment", "price", "planting", "cancellation")
# Prices in 10-fen steps make equal prices (and so the tie-breaks) common; floors sit
# lower so that markets above the floor are common too.
PRICE = st.integers(10, 150).map(lambda tens: tens * 10)
FLOOR = st.integers(10, 100).map(lambda tens: tens * 10)
GRAMS = st.integers(1, 12_000)
HEADS = st.integers(1, 12)
JOURNAL_LENGTH = st.integers(0, 40)


@lru_cache(maxsize=None)
def _below(size):
    return st.integers(0, size - 1)


def _choose(draw, *options):
    """One pick from each tuple of options, from a single draw; shrinks towards the first options."""
    number = draw(_below(prod(len(choices) for choices in options)))
    picks = []
    for choices in options:
        number, index = divmod(number, len(choices))
        picks.append(choices[index])
    return picks


def _quantity(draw, product):
    if product in LIVESTOCK:
        return Decimal(draw(HEADS))
    return Decimal(draw(GRAMS)).scaleb(-3)


def _subset(options, mask):
    return tuple(option for bit, option in enumerate(options) if mask >> bit & 1)


def _lot(draw, product):
    lot_id, cooperative_id, county, township = _choose(draw, LOT_IDS, COOPERATIVES, COUNTIES, TOWNSHIPS)
    grade, first, second = _choose(draw, GRADES, WEEK, WEEK)
    [contributors] = _choose(draw, (1, 2, 3))
    contributions = []
    for _ in range(contributors):
        household_id, poor = _choose(draw, HOUSEHOLDS, (False, True))
        contributions.append(Contribution(household_id, _quantity(draw, product), poor))
    available_from, expires_on = sorted((first, second))
    return Lot(
        lot_id,
        cooperative_id,
        county,
        township,
        product,
        grade,
        _quantity(draw, product),
        available_from,
        expires_on,
        tuple(contributions),
    )


def _order(draw, product):
    order_id, buyer_id, grade, regions = _choose(draw, ORDER_IDS, ("canteen", "market"), GRADES, (0, 1, 2, 4, 8, 16, 5, 10, 24))
    first, second = _choose(draw, WEEK, WEEK)
    deliver_from, deliver_to = sorted((first, second))
    return Order(
        order_id,
        buyer_id,
        product,
        grade,
        _quantity(draw, product),
        draw(PRICE),
        deliver_from,
        deliver_to,
        _subset(COUNTIES + TOWNSHIPS, regions),
    )


def _commitment(draw, product):
    commitment_id, grade, market, counties = _choose(draw, COMMITMENT_IDS, GRADES, MARKETS, (0, 0, 1, 2))
    first, second = _choose(draw, WEEK, WEEK)
    cooperatives, cap_kind, per_mu = _choose(
        draw, (0, 0, 1, 2, 4, 3, 6), ("some", "some", "none", "zero"), (None, None, "0.4", "1", "2.5", "7.333")
    )
    cap = {"none": None, "zero": Decimal(0)}.get(cap_kind) if cap_kind != "some" else _quantity(draw, product)
    valid_from, valid_to = sorted((first, second))
    return Commitment(
        commitment_id,
        "yuping",
        product,
        grade,
        draw(FLOOR),
        market,
        valid_from,
        valid_to,
        _subset(COUNTIES, counties),
        _subset(COOPERATIVES, cooperatives),
        cap,
        None if per_mu is None else Decimal(per_mu),
    )


def _price(draw, product):
    grade, market, observed_on = _choose(draw, GRADES, MARKETS, WEEK)
    return MarketPrice(product, grade, market, draw(PRICE), observed_on)


def _planting(draw, product):
    planting_id, cooperative_id, area = _choose(draw, PLANTING_IDS, COOPERATIVES, ("0", "0.3", "1", "2.25", "5"))
    return Planting(planting_id, cooperative_id, product, Decimal(area))


def _cancellation(draw, product):
    [order_id] = _choose(draw, ORDER_IDS)
    return OrderCancellation(order_id, product)


BUILDERS = {
    "lot": _lot,
    "order": _order,
    "commitment": _commitment,
    "price": _price,
    "planting": _planting,
    "cancellation": _cancellation,
}


OPENING_PRICES = st.integers(0, 8)


@st.composite
def journals(draw):
    """A random journal: two products (kg and head), one week of dates, small id sets so ids
    collide. It opens with a few market prices so that commitments often meet a market price."""
    facts = []
    for _ in range(draw(OPENING_PRICES)):
        [product] = _choose(draw, PRODUCTS)
        facts.append(_price(draw, product))
    for _ in range(draw(JOURNAL_LENGTH)):
        kind, product = _choose(draw, KINDS, PRODUCTS)
        facts.append(BUILDERS[kind](draw, product))
    return facts
