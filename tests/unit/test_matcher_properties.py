"""Properties of the matcher over random journals: nothing overfilled, every fen accounted for,
every price as the contract says, the same journal always gives the same bytes.

The checks recompute what they need straight from the journal, independently of the
engine; the last one compares the engine with the reference model (matcher/reference.py),
the rules read literally.
"""

from collections import defaultdict
from decimal import ROUND_DOWN, Decimal, localcontext
from fractions import Fraction

import pytest
from hypothesis import given

from matcher import (
    LIVESTOCK,
    Commitment,
    Fill,
    Lot,
    Market,
    MarketPrice,
    Order,
    OrderCancellation,
    Planting,
    fill_line,
    grade_at_least,
)
from matcher.reference import reference_fills, reference_view
from tests.unit.matcher_journals import PROPERTY, journals

pytestmark = pytest.mark.unit


# ---------------------------------------------------------------- reading the journal independently


class Journal:
    """The journal as the contract describes it: per product, numbered inputs; the first of each id counts."""

    def __init__(self, facts):
        self.by_product = defaultdict(list)  # product -> [fact], index = journal_seq - 1
        for fact in facts:
            self.by_product[fact.product].append(fact)

    def first(self, product, kind, key, value):
        """The first fact of `kind` whose `key` is `value`, and its journal number."""
        for seq, fact in enumerate(self.by_product[product], start=1):
            if isinstance(fact, kind) and getattr(fact, key) == value:
                return fact, seq
        raise AssertionError(f"no {kind.__name__} {value} in {product}")

    def before(self, product, seq):
        """The facts journaled before input `seq`, with their numbers."""
        return list(enumerate(self.by_product[product][: seq - 1], start=1))

    def lot(self, fill):
        return self.first(fill.product, Lot, "lot_id", fill.lot_id)[0]

    def outlet(self, fill):
        if fill.outlet_kind == "order":
            return self.first(fill.product, Order, "order_id", fill.outlet_id)[0]
        return self.first(fill.product, Commitment, "commitment_id", fill.outlet_id)[0]

    def planted_mu(self, product, cooperative_id, before_seq):
        first_of_each_id = {}
        for _, fact in self.before(product, before_seq):
            if isinstance(fact, Planting):
                first_of_each_id.setdefault(fact.planting_id, fact)
        plantings = first_of_each_id.values()
        return sum((p.area_mu for p in plantings if p.cooperative_id == cooperative_id), Decimal(0))

    def market_price(self, product, grade, market, as_of, before_seq):
        observations = [
            (fact.observed_on, seq, fact.price_fen)
            for seq, fact in self.before(product, before_seq)
            if isinstance(fact, MarketPrice) and (fact.grade, fact.market) == (grade, market) and fact.observed_on <= as_of
        ]
        return max(observations)[2] if observations else None


def all_fills(facts):
    return [outcome for outcome in Market.replay(facts) if isinstance(outcome, Fill)]


def half_even(value: Fraction) -> int:
    return round(value)  # round() of a Fraction is half-to-even


# ---------------------------------------------------------------- properties


@PROPERTY
@given(journals())
def test_no_lot_or_outlet_is_ever_overfilled(facts):
    journal = Journal(facts)
    sold = defaultdict(Decimal)
    with localcontext() as context:
        context.prec = 60
        for fill in all_fills(facts):
            assert fill.quantity > 0
            lot, outlet = journal.lot(fill), journal.outlet(fill)
            sold["lot", fill.product, fill.lot_id] += fill.quantity
            assert sold["lot", fill.product, fill.lot_id] <= lot.quantity
            sold[fill.outlet_kind, fill.product, fill.outlet_id] += fill.quantity
            if isinstance(outlet, Order):
                assert sold["order", fill.product, fill.outlet_id] <= outlet.quantity
            else:
                if outlet.cap_quantity is not None:
                    assert sold["commitment", fill.product, fill.outlet_id] <= outlet.cap_quantity
                key = ("per_mu", fill.product, fill.outlet_id, fill.cooperative_id)
                sold[key] += fill.quantity
                if outlet.max_quantity_per_mu is not None:
                    planted = journal.planted_mu(fill.product, fill.cooperative_id, fill.journal_seq)
                    assert sold[key] <= planted * outlet.max_quantity_per_mu


@PROPERTY
@given(journals())
def test_fills_are_in_whole_units_of_the_product(facts):
    for fill in all_fills(facts):
        quantum = Decimal(1) if fill.product in LIVESTOCK else Decimal("0.001")
        assert fill.quantity == fill.quantity.quantize(quantum, rounding=ROUND_DOWN)


@PROPERTY
@given(journals())
def test_revenue_is_rounded_half_even_and_household_shares_add_up_to_it(facts):
    journal = Journal(facts)
    for fill in all_fills(facts):
        assert fill.revenue_fen == half_even(Fraction(fill.quantity) * fill.unit_price_fen)
        assert sum(fen for _, fen in fill.household_income_fen) == fill.revenue_fen
        households = [household for household, _ in fill.household_income_fen]
        assert households == sorted({c.household_id for c in journal.lot(fill).contributions})
        assert all(fen >= 0 for _, fen in fill.household_income_fen)


@PROPERTY
@given(journals())
def test_every_commitment_fill_pays_the_greater_of_floor_and_market_as_of(facts):
    journal = Journal(facts)
    for fill in all_fills(facts):
        if fill.outlet_kind != "commitment":
            continue
        lot, commitment = journal.lot(fill), journal.outlet(fill)
        as_of = max(lot.available_from, commitment.valid_from)
        market = journal.market_price(fill.product, lot.grade, commitment.reference_market, as_of, fill.journal_seq)
        if market is not None and market > commitment.floor_price_fen:
            expected = (market, "market")
        else:
            expected = (commitment.floor_price_fen, "floor")
        assert (fill.unit_price_fen, fill.price_basis) == expected
        assert (fill.market_price_fen, fill.floor_price_fen, fill.price_as_of) == (
            market,
            commitment.floor_price_fen,
            as_of,
        )


@PROPERTY
@given(journals())
def test_every_order_fill_pays_the_order_limit(facts):
    journal = Journal(facts)
    for fill in all_fills(facts):
        if fill.outlet_kind == "order":
            assert (fill.unit_price_fen, fill.price_basis) == (journal.outlet(fill).limit_price_fen, "order_limit")


@PROPERTY
@given(journals())
def test_every_fill_joins_an_eligible_lot_and_outlet(facts):
    journal = Journal(facts)
    for fill in all_fills(facts):
        lot, outlet = journal.lot(fill), journal.outlet(fill)
        assert grade_at_least(lot.grade, outlet.min_grade)
        if isinstance(outlet, Order):
            start, end = outlet.deliver_from, outlet.deliver_to
            assert not outlet.regions or lot.county in outlet.regions or lot.township in outlet.regions
            cancelled = [
                seq
                for seq, fact in journal.before(fill.product, fill.journal_seq)
                if isinstance(fact, OrderCancellation) and fact.order_id == outlet.order_id
            ]
            order_seq = journal.first(fill.product, Order, "order_id", outlet.order_id)[1]
            assert not [seq for seq in cancelled if seq > order_seq]
        else:
            start, end = outlet.valid_from, outlet.valid_to
            assert (
                not (outlet.eligible_counties or outlet.eligible_cooperatives)
                or lot.county in outlet.eligible_counties
                or lot.cooperative_id in outlet.eligible_cooperatives
            )
        assert lot.available_from <= end and start <= lot.expires_on


@PROPERTY
@given(journals())
def test_replaying_the_same_journal_gives_byte_identical_fills(facts):
    first = [fill_line(fill) for fill in all_fills(facts)]
    second = [fill_line(fill) for fill in all_fills(list(facts))]
    assert first == second
    assert Market.replay(facts) == Market.replay(facts)


@PROPERTY
@given(journals())
def test_fill_positions_run_from_one_to_n_per_product(facts):
    positions = defaultdict(list)
    for fill in all_fills(facts):
        positions[fill.product].append(fill.position)
    for product_positions in positions.values():
        assert product_positions == list(range(1, len(product_positions) + 1))


@PROPERTY
@given(journals())
def test_after_every_input_no_resting_lot_could_still_fill_an_open_order_or_unlimited_commitment(facts):
    # A per-mu commitment is left out: a planting can give room to a pair that waits,
    # by rule, for the next arriving lot or outlet.
    market = Market()
    for fact in facts:
        market.process(fact)
        book = market.book(fact.product)
        for resting in book.resting_lots():
            lot = resting.lot
            for view in book.open_outlets():
                outlet = view.outlet
                if not grade_at_least(lot.grade, outlet.min_grade):
                    continue
                if isinstance(outlet, Order):
                    overlap = lot.available_from <= outlet.deliver_to and outlet.deliver_from <= lot.expires_on
                    in_region = not outlet.regions or lot.county in outlet.regions or lot.township in outlet.regions
                    assert not (overlap and in_region), (lot.lot_id, outlet.order_id)
                elif outlet.max_quantity_per_mu is None:
                    overlap = lot.available_from <= outlet.valid_to and outlet.valid_from <= lot.expires_on
                    eligible = (
                        not (outlet.eligible_counties or outlet.eligible_cooperatives)
                        or lot.county in outlet.eligible_counties
                        or lot.cooperative_id in outlet.eligible_cooperatives
                    )
                    assert not (overlap and eligible), (lot.lot_id, outlet.commitment_id)


# ---------------------------------------------------------------- the reference model


@PROPERTY
@given(journals())
def test_engine_makes_exactly_the_fills_of_the_reference_model(facts):
    assert reference_view(Market.replay(facts)) == reference_fills(facts)
