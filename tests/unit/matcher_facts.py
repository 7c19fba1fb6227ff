"""Matcher facts for the rule tests, each with the defaults an example leaves out, and the shortest ways to say who got what."""

from datetime import date
from decimal import Decimal

from matcher import Commitment, Contribution, Fill, Lot, Market, MarketPrice, Order, Planting

D = Decimal


def day(n: int) -> date:
    """A business day in May 2020."""
    return date(2020, 5, n)


def lot(
    lot_id="L1",
    quantity="100",
    *,
    cooperative_id="co1",
    county="Yanhe",
    township="Ketian",
    product="chili",
    grade="A",
    available_from=day(1),
    expires_on=day(20),
    poor=False,
    contributions=None,
):
    if contributions is None:
        contributions = (Contribution("h1", D(quantity), poor),)
    return Lot(lot_id, cooperative_id, county, township, product, grade, D(quantity), available_from, expires_on, contributions)


def order(
    order_id="O1",
    quantity="100",
    limit=1000,
    *,
    buyer_id="canteen",
    product="chili",
    min_grade="C",
    deliver_from=day(1),
    deliver_to=day(20),
    regions=(),
):
    return Order(order_id, buyer_id, product, min_grade, D(quantity), limit, deliver_from, deliver_to, tuple(regions))


def commitment(
    commitment_id="C1",
    floor=800,
    *,
    buyer_id="yuping",
    product="chili",
    min_grade="C",
    market="tongren",
    valid_from=day(1),
    valid_to=day(20),
    counties=(),
    cooperatives=(),
    cap=None,
    per_mu=None,
):
    return Commitment(
        commitment_id,
        buyer_id,
        product,
        min_grade,
        floor,
        market,
        valid_from,
        valid_to,
        tuple(counties),
        tuple(cooperatives),
        None if cap is None else D(cap),
        None if per_mu is None else D(per_mu),
    )


def price(price_fen, observed_on=day(1), *, grade="A", market="tongren", product="chili"):
    return MarketPrice(product, grade, market, price_fen, observed_on)


def planting(planting_id, area, *, cooperative_id="co1", product="chili"):
    return Planting(planting_id, cooperative_id, product, D(area))


def run(*facts):
    return Market.replay(facts)


def fills(outcomes):
    return [outcome for outcome in outcomes if isinstance(outcome, Fill)]


def matches(*facts):
    """(lot, outlet, quantity) of every fill, in output order: the shortest way to say who got what."""
    return [(f.lot_id, f.outlet_id, f.quantity) for f in fills(run(*facts))]


def only_fill(*facts) -> Fill:
    [the_fill] = fills(run(*facts))
    return the_fill
