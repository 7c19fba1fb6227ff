"""Coverage, defined once (contracts/coverage.py): registered-poor households that industry income reached, per village."""

import pytest

from contracts.coverage import Household, county_coverage, covered, village_coverage

pytestmark = pytest.mark.unit

SEASON = [
    Household("Yanhe", "Ketian", "Nanzhuang", True, 24_000),
    Household("Yanhe", "Ketian", "Nanzhuang", True, 0),
    Household("Yanhe", "Ketian", "Nanzhuang", False, 16_000),
    Household("Yanhe", "Tangba", "Shuitian", True, 0),
    Household("Yuping", "Tianping", "Xinzhai", True, 500),
]


def test_a_registered_poor_household_is_covered_once_any_income_reached_it():
    assert covered(True, 1)
    assert not covered(True, 0)
    assert not covered(False, 16_000)  # income, but not a registered-poor household


def test_villages_count_the_covered_and_the_uncovered_and_every_households_pay():
    assert village_coverage(SEASON) == [
        {
            "county": "Yanhe",
            "township": "Ketian",
            "village": "Nanzhuang",
            "registered_poor": 2,
            "with_income": 1,
            "without_income": 1,
            "paid_fen": 40_000,
        },
        {
            "county": "Yanhe",
            "township": "Tangba",
            "village": "Shuitian",
            "registered_poor": 1,
            "with_income": 0,
            "without_income": 1,
            "paid_fen": 0,
        },
        {
            "county": "Yuping",
            "township": "Tianping",
            "village": "Xinzhai",
            "registered_poor": 1,
            "with_income": 1,
            "without_income": 0,
            "paid_fen": 500,
        },
    ]


def test_counties_sum_their_villages_in_the_order_they_first_come():
    assert county_coverage(village_coverage(reversed(SEASON))) == [
        {"county": "Yanhe", "registered_poor": 3, "with_income": 1, "without_income": 2, "paid_fen": 40_000},
        {"county": "Yuping", "registered_poor": 1, "with_income": 1, "without_income": 0, "paid_fen": 500},
    ]


def test_no_households_no_villages():
    assert village_coverage([]) == [] and county_coverage([]) == []
