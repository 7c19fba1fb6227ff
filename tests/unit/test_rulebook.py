"""The rulebook (matcher/rules.py): every rule cites its clause of docs/matching-rules.md, the composites
the book calls are exactly their clauses, the shelves the index keeps are exactly what eligibility allows,
and every rules version keeps the one property the index relies on."""

from __future__ import annotations

import inspect
import re
from dataclasses import fields
from datetime import date, timedelta
from decimal import Decimal
from itertools import product
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from matcher import Commitment, Contribution, Fill, Lot, Order, rules
from matcher.rules import RULEBOOKS, VERSION_1
from matcher.state import new_fill
from tests.unit.test_rulebook_versions import VERSION_2

pytestmark = pytest.mark.unit

DOCS = (Path(__file__).resolve().parents[2] / "docs" / "matching-rules.md").read_text(encoding="utf-8")
CLAUSE = re.compile(r"§[A-Z$]\d")
DAY = date(2020, 5, 1)
PLACES = ("Yanhe", "Ketian", "Dejiang")
COOPERATIVES = ("co1", "co2")


def _lot(grade="B", county="Yanhe", township="Ketian", cooperative_id="co1", start=0, end=5, poor=False, lot_id="L1") -> Lot:
    return Lot(
        lot_id,
        cooperative_id,
        county,
        township,
        "chili",
        grade,
        Decimal(10),
        DAY + timedelta(start),
        DAY + timedelta(end),
        (Contribution("h1", Decimal(10), poor),),
    )


def _order(min_grade="B", regions=(), start=0, end=5) -> Order:
    return Order("O1", "b", "chili", min_grade, Decimal(5), 100, DAY + timedelta(start), DAY + timedelta(end), regions)


def _commitment(min_grade="B", counties=(), cooperatives=(), start=0, end=5) -> Commitment:
    return Commitment(
        "C1",
        "y",
        "chili",
        min_grade,
        100,
        "tongren",
        DAY + timedelta(start),
        DAY + timedelta(end),
        counties,
        cooperatives,
        None,
        None,
    )


# ---------------------------------------------------------------- clauses


def test_every_rule_names_the_clause_it_implements_and_the_clause_is_in_the_rules():
    functions = [
        f for name, f in inspect.getmembers(rules, inspect.isfunction) if f.__module__ == "matcher.rules" and name != "rulebook"
    ]
    assert len(functions) >= 20
    for function in functions:
        cited = CLAUSE.findall(function.__doc__ or "")
        assert cited, f"{function.__name__} names no clause of docs/matching-rules.md"
        for clause in cited:
            assert f"**{clause}" in DOCS, f"{function.__name__} cites {clause}, which docs/matching-rules.md does not label"


def test_a_rulebook_is_made_of_the_rules_of_its_version_and_says_what_changed():
    assert RULEBOOKS == {1: VERSION_1}
    assert VERSION_1.applies_from is None and "first published" in VERSION_1.changes
    assert {f.name for f in fields(VERSION_1)} - {"version", "changes", "applies_from"} == {
        name for name in vars(rules) if getattr(VERSION_1, name, None) is getattr(rules, name)
    }


@given(
    st.sampled_from("ABC"),
    st.sampled_from("ABC"),
    st.integers(-3, 8),
    st.integers(0, 6),
    st.integers(-3, 8),
    st.integers(0, 6),
    st.sampled_from(((), ("Yanhe",), ("Ketian", "Dejiang"), ("Dejiang",))),
    st.sampled_from(PLACES),
    st.sampled_from(PLACES),
    st.sampled_from(COOPERATIVES),
    st.sampled_from(((), ("co2",))),
)
def test_the_composites_the_book_calls_are_exactly_their_clauses(
    grade, minimum, start, length, outlet_start, outlet_length, regions, county, township, cooperative, cooperatives
):
    lot = _lot(grade, county, township, cooperative, start, start + length)
    order = _order(minimum, regions, outlet_start, outlet_start + outlet_length)
    commitment = _commitment(minimum, regions, cooperatives, outlet_start, outlet_start + outlet_length)
    overlap = rules.windows_overlap(lot.available_from, lot.expires_on, order.deliver_from, order.deliver_to)
    assert rules.order_takes(lot, order) == (
        rules.grade_meets(grade, minimum) and overlap and rules.in_regions(county, township, regions)
    )
    assert rules.commitment_takes(lot, commitment, frozenset(regions), frozenset(cooperatives)) == (
        rules.grade_meets(grade, minimum) and overlap and rules.in_eligibility(county, cooperative, regions, cooperatives)
    )


def test_price_clauses():
    assert rules.order_price(1200) == rules.Price(1200, "order_limit")
    assert rules.as_of_date(DAY, DAY + timedelta(3)) == DAY + timedelta(3)
    observations = [(DAY, 1, 700), (DAY + timedelta(2), 2, 900), (DAY + timedelta(2), 3, 950), (DAY + timedelta(9), 4, 5)]
    assert rules.market_as_of(observations, DAY + timedelta(5)) == 950  # latest day not after, then later in the journal
    assert rules.market_as_of(observations, DAY - timedelta(1)) is None
    assert rules.commitment_price(800, 950, DAY) == rules.Price(950, "market", 800, 950, DAY)
    assert rules.commitment_price(800, 800, DAY) == rules.Price(800, "floor", 800, 800, DAY)
    assert rules.commitment_price(800, None, DAY) == rules.Price(800, "floor", 800, None, DAY)
    assert rules.per_mu_room(Decimal("2.5"), Decimal("3.3333"), Decimal(1), "chili") == Decimal("7.333")
    assert rules.fill_quantity(Decimal(3), None) == 3 and rules.fill_quantity(Decimal(3), Decimal(2)) == 2


# ---------------------------------------------------------------- the index asks the rulebook


@pytest.mark.parametrize("rulebook", [VERSION_1, VERSION_2], ids=["v1", "v2"])
def test_a_lot_sits_on_a_shelf_an_outlet_reads_exactly_when_grade_and_place_allow_it(rulebook):
    for grade, minimum, county, township, cooperative, poor in product("ABC", "ABC", PLACES, PLACES, COOPERATIVES, (False, True)):
        lot = _lot(grade, county, township, cooperative, poor=poor)
        on = set(rulebook.lot_shelf_keys(lot))
        for regions in ((), ("Yanhe",), ("Ketian", "Dejiang"), ("Dejiang",)):
            order = _order(minimum, regions)
            allowed = rules.grade_meets(grade, minimum) and rules.in_regions(county, township, regions)
            assert bool(on & set(rulebook.lot_shelves_for_order(order))) == allowed
            order_shelves = set(rulebook.order_shelves_for_lot(grade, county, township))
            assert bool(order_shelves & set(rulebook.order_shelf_keys(order))) == allowed
            for cooperatives in ((), ("co2",)):
                commitment = _commitment(minimum, regions, cooperatives)
                allowed = rules.grade_meets(grade, minimum) and rules.in_eligibility(county, cooperative, regions, cooperatives)
                assert bool(on & set(rulebook.lot_shelves_for_commitment(commitment))) == allowed
                commitment_shelves = set(rulebook.commitment_shelves_for_lot(grade, county, cooperative))
                assert bool(commitment_shelves & set(rulebook.commitment_shelf_keys(commitment))) == allowed


@pytest.mark.parametrize("rulebook", [VERSION_1, VERSION_2], ids=["v1", "v2"])
@given(st.lists(st.tuples(st.integers(0, 9), st.integers(0, 9), st.booleans(), st.sampled_from(PLACES)), min_size=2, max_size=12))
def test_on_one_lot_shelf_priority_order_is_expiry_order(rulebook, drawn):
    lots = [_lot(county=county, start=0, end=end, poor=poor, lot_id=f"L{n}") for n, (_, end, poor, county) in enumerate(drawn)]
    shelves: dict[tuple, list] = {}
    for seq, lot in enumerate(lots, start=1):
        for key in rulebook.lot_shelf_keys(lot):
            shelves.setdefault(key, []).append((rulebook.lot_priority(lot, seq), lot.expires_on))
    for shelf in shelves.values():
        expiries = [expires_on for _, expires_on in sorted(shelf)]
        assert expiries == sorted(expiries)


# ---------------------------------------------------------------- named builders


def test_a_fill_made_by_name_is_the_dataclass_fill():
    values = dict(
        position=1,
        journal_seq=2,
        product="chili",
        lot_id="L1",
        cooperative_id="co1",
        grade="A",
        outlet_kind="order",
        outlet_id="O1",
        buyer_id="b",
        quantity=Decimal("1.5"),
        unit_price_fen=100,
        price_basis="order_limit",
        revenue_fen=150,
        household_income_fen=(("h1", 150),),
        floor_price_fen=None,
        market_price_fen=None,
        price_as_of=None,
    )
    assert new_fill(**values) == Fill(**values)
    with pytest.raises(TypeError):
        new_fill(position=1)
