"""The money in fills, their output, the matcher's purity, and the facts that refuse what cannot be matched."""

import ast
import sys
from datetime import datetime
from decimal import ROUND_UP, localcontext
from pathlib import Path

import pytest

from matcher import Contribution, Lot, Market, MarketPrice, Order, fill_line, fill_record, quantity_text
from tests.unit.matcher_facts import D, commitment, day, fills, lot, only_fill, order, planting, price, run

pytestmark = pytest.mark.unit


# ---------------------------------------------------------------- money in fills


def test_fill_revenue_rounds_half_to_even_to_whole_fen():
    # 0.001 kg at 500 fen = 0.5 fen -> 0;  0.003 kg -> 1.5 fen -> 2;  0.005 kg -> 2.5 fen -> 2
    outcomes = run(order("O1", "0.001", 500), order("O2", "0.003", 500), order("O3", "0.005", 500), lot(quantity="1"))
    assert [f.revenue_fen for f in fills(outcomes)] == [0, 2, 2]


def test_fill_revenue_is_split_to_households_by_contributed_quantity():
    households = (Contribution("h1", D("1"), False), Contribution("h2", D("2"), True))
    the_fill = only_fill(lot(quantity="3", contributions=households), order(quantity="1", limit=100))
    assert the_fill.revenue_fen == 100
    assert the_fill.household_income_fen == (("h1", 33), ("h2", 67))


def test_household_split_follows_contributions_even_when_they_do_not_add_up_to_the_lot():
    households = (Contribution("h2", D("1"), False), Contribution("h1", D("1"), False))
    the_fill = only_fill(lot(quantity="10", contributions=households), order(quantity="1", limit=101))
    assert the_fill.household_income_fen == (("h1", 51), ("h2", 50))


# ---------------------------------------------------------------- output


def _sample_fill():
    households = (Contribution("张家", D("700"), True), Contribution("h2", D("500"), False))
    return only_fill(price(1000), lot(quantity="1200", contributions=households), commitment(floor=950))


def test_fill_record_has_exactly_the_contract_fields_in_order():
    record = fill_record(_sample_fill())
    assert list(record) == [
        "lot_id",
        "outlet_kind",
        "outlet_id",
        "buyer_id",
        "quantity",
        "unit_price_fen",
        "price_basis",
        "revenue_fen",
        "household_income_fen",
    ]
    assert record["quantity"] == "1200"
    assert record["household_income_fen"] == {"h2": 500_000, "张家": 700_000}


def test_fill_line_is_canonical_json():
    assert fill_line(_sample_fill()) == (
        '{"lot_id":"L1","outlet_kind":"commitment","outlet_id":"C1","buyer_id":"yuping","quantity":"1200",'
        '"unit_price_fen":1000,"price_basis":"market","revenue_fen":1200000,'
        '"household_income_fen":{"h2":500000,"张家":700000}}'
    )


@pytest.mark.parametrize(
    ("quantity", "text"),
    [("1200", "1200"), ("1.2E+3", "1200"), ("12.500", "12.5"), ("0.001", "0.001"), ("7.000", "7"), ("0", "0")],
)
def test_quantities_are_written_as_plain_decimals_without_trailing_zeros(quantity, text):
    assert quantity_text(D(quantity)) == text


def test_equal_fills_give_identical_lines():
    assert fill_line(_sample_fill()) == fill_line(_sample_fill())


# ---------------------------------------------------------------- purity


def _journal():
    return [
        price(1000, day(1)),
        planting("P1", "2.5"),
        lot(
            "L1",
            "33.333",
            contributions=(Contribution("h1", D("11.111"), True), Contribution("h2", D("22.222"), False)),
        ),
        commitment(per_mu="7.77"),
        order("O1", "3.001", 1333),
        lot("L2", "1.001"),
    ]


def test_results_do_not_depend_on_the_global_decimal_context():
    expected = [fill_line(f) for f in fills(Market.replay(_journal()))]
    with localcontext() as context:
        context.prec = 3
        context.rounding = ROUND_UP
        assert [fill_line(f) for f in fills(Market.replay(_journal()))] == expected


def test_matcher_imports_only_the_standard_library_and_itself():
    package = Path(__import__("matcher").__file__).parent
    for source in package.glob("*.py"):
        for node in ast.walk(ast.parse(source.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                roots = [alias.name.split(".")[0] for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                roots = [(node.module or "").split(".")[0]]
            else:
                continue
            for root in roots:
                assert root in sys.stdlib_module_names or root in ("matcher", "__future__"), (source.name, root)


# ---------------------------------------------------------------- facts refuse what cannot be matched


@pytest.mark.parametrize(
    "build",
    [
        lambda: lot(quantity="1.5", product="live_pig"),
        lambda: lot(quantity="1.0005"),
        lambda: lot(quantity="0"),
        lambda: lot(grade="D"),
        lambda: lot(available_from=day(5), expires_on=day(4)),
        lambda: lot(available_from=datetime(2020, 5, 1, 8, 0)),
        lambda: lot(contributions=()),
        lambda: Lot("L1", "co1", "Yanhe", "Ketian", "chili", "A", 1.5, day(1), day(2), lot().contributions),
        lambda: order(limit=-1),
        lambda: order(deliver_from=day(5), deliver_to=day(4)),
        lambda: Order("O1", "b", "chili", "A", D("1"), 1.5, day(1), day(2), ()),
        lambda: commitment(cap="-1"),
        lambda: commitment(per_mu="-1"),
        lambda: Contribution("h1", D("1"), "yes"),
        lambda: MarketPrice("chili", "A", "tongren", 100, datetime(2020, 5, 1)),
        lambda: planting("P1", "NaN"),
    ],
)
def test_facts_refuse_values_that_cannot_be_matched(build):
    with pytest.raises(ValueError):
        build()


def test_livestock_in_whole_head_and_kg_to_the_gram_are_accepted():
    assert lot(quantity="12", product="live_pig").quantity == D("12")
    assert lot(quantity="12.345").quantity == D("12.345")
    assert lot(quantity="12.3450").quantity == D("12.3450")
