"""`farmlink what-if`: the recorded journal replayed with changed commitment terms (farmlink/office/whatif/), beside what was:
the identity replay, each term, which commitments a key names, and the refusals."""

from __future__ import annotations

import pytest

from farmlink.audit.model import AuditLog
from farmlink.audit.replay import market_streams
from farmlink.operations.bench.synthetic import generate
from farmlink.office.whatif import ChangeError, Changes, WhatIf, recorded_fills, what_if
from tests.unit.test_rulebook_versions import two_days_of_chili, version_2  # noqa: F401 (a fixture)
from tests.unit.whatif_market import County, chili_market, differences, household, replayed, sold_to

pytestmark = pytest.mark.unit


# ================================================================ the identity check


def test_an_unchanged_replay_equals_the_recorded_incomes_exactly():
    log = chili_market()
    result = what_if(log, Changes())
    assert result.identical
    assert result.changes == ()
    assert [(h.household_id, h.recorded_fen, h.replayed_fen, h.fills_changed) for h in result.households] == [
        ("h1", 175_000 + 472_500, 175_000 + 472_500, 0),  # 700/1200 of O1's 300 000 fen and of C1's 810 000
        ("h2", 125_000 + 337_500, 125_000 + 337_500, 0),
        ("h3", 480_000 + 140_000, 480_000 + 140_000, 0),  # 600 kg at the floor, 200 kg to O2 at 700
    ]


def test_an_unchanged_replay_of_a_synthetic_season_equals_every_recorded_fill_and_income():
    log = generate(3_000).audit_log()
    result = what_if(log, Changes())
    assert result.identical
    assert result.totals.fills_recorded == result.totals.fills_replayed > 0
    assert (
        result.totals.recorded_fen
        == result.totals.replayed_fen
        == sum(f["revenue_fen"] for f in recorded_fills(market_streams(log)))
    )
    assert all(h.recorded_fen == h.replayed_fen and h.fills_changed == 0 for h in result.households)


def test_the_replay_decides_each_entry_under_the_rules_version_its_journal_adopted(version_2):  # noqa: F811
    log = two_days_of_chili().log  # v1 on day one, v2 (registered-poor lots first) from day two: O2 took P1, not E2
    replay_fills = replayed(log, Changes())
    assert [(f["outlet_id"], f["lot_id"]) for f in replay_fills] == [("O1", "E1"), ("O2", "P1")]
    assert replay_fills == recorded_fills(market_streams(log))
    assert what_if(log, Changes()).identical


# ================================================================ the floor


def test_a_higher_floor_raises_the_income_of_households_paid_at_the_floor_and_changes_nothing_else():
    result = what_if(chili_market(floor=800), Changes.parse(floor=["chili=850"]))
    assert differences(result) == {"h1": 0, "h2": 0, "h3": 600 * 50}  # L2's 600 kg at the floor; L1 was paid the market's 900
    assert [(h.household_id, h.fills_changed) for h in result.households] == [("h1", 0), ("h2", 0), ("h3", 1)]
    assert result.totals.fills_changed == 1
    assert result.totals.difference_fen == 30_000
    assert [(c.commitment_id, c.term, c.recorded, c.replayed, c.given) for c in result.changes] == [
        ("C1", "floor_price_fen", 800, 850, "--floor chili=850")
    ]


def test_a_floor_below_the_market_price_changes_nothing():
    log = chili_market(floor=800, grade_b_price=880)  # every commitment fill is paid the market price
    result = what_if(log, Changes.parse(floor=["chili=850"]))
    assert set(differences(result).values()) == {0}
    assert result.identical and result.changes  # a term was changed, and nothing followed from it


def test_a_floor_above_an_orders_limit_draws_the_lot_to_the_commitment():
    result = what_if(chili_market(floor=800), Changes.parse(floor=["chili=1100"]))
    fills = replayed(chili_market(floor=800), Changes.parse(floor=["chili=1100"]))
    # best outlet = highest unit price: C1 at 1100 before O1 at 1000; O1 is left to L2
    assert [(f["lot_id"], f["outlet_id"], f["quantity"], f["unit_price_fen"]) for f in fills] == [
        ("L1", "C1", "1200", 1100),
        ("L2", "C1", "300", 1100),
        ("L2", "O1", "300", 1000),
        ("L2", "O2", "200", 700),
    ]
    assert all(difference > 0 for difference in differences(result).values())
    assert result.totals.fills_changed == 4  # L1 to O1 gone, L2 to O1 new, both C1 fills repriced; L2 to O2 as before


# ================================================================ cap, per-mu limit, end of the window


def test_a_lower_cap_sells_less_to_the_commitment():
    log = chili_market(cap="1500")
    assert sold_to(recorded_fills(market_streams(log)), "C1") == 1500
    fills = replayed(log, Changes.parse(cap=["chili=1000"]))
    assert sold_to(fills, "C1") == 1000  # L1's 900 and only 100 of L2
    result = what_if(log, Changes.parse(cap=["chili=1000"]))
    assert differences(result) == {"h1": 0, "h2": 0, "h3": -500 * 800}  # 500 kg fewer at the floor, O2 takes 200 as before
    assert household(result, "h3").replayed_fen == 100 * 800 + 200 * 700


def test_no_cap_lets_the_commitment_take_all_it_is_offered():
    log = chili_market(cap="1500")
    fills = replayed(log, Changes.parse(cap=["chili=none"]))
    assert sold_to(fills, "C1") == 900 + 800
    result = what_if(log, Changes.parse(cap=["chili=none"]))
    assert differences(result)["h3"] == 800 * 800 - (600 * 800 + 200 * 700)
    assert [(c.recorded, c.replayed) for c in result.changes] == [("1500", None)]


def test_a_lower_per_mu_limit_sells_less_of_a_cooperatives_produce_to_the_commitment():
    log = chili_market(per_mu="100")  # co1 planted 10 mu: room for 1000 kg; co2 planted nothing: none
    assert sold_to(recorded_fills(market_streams(log)), "C1") == 900
    fills = replayed(log, Changes.parse(per_mu=["chili=50"]))
    assert sold_to(fills, "C1") == 500
    assert what_if(log, Changes.parse(per_mu=["chili=50"])).totals.difference_fen < 0


def test_an_earlier_end_leaves_the_commitment_without_the_lots_that_come_after_it():
    log = chili_market()
    fills = replayed(log, Changes.parse(valid_to=["chili=2020-08-04"]))  # the lots are available from 08-05
    assert sold_to(fills, "C1") == 0
    result = what_if(log, Changes.parse(valid_to=["chili=2020-08-04"]))
    assert result.totals.replayed_fen < result.totals.recorded_fen
    assert [(c.term, c.recorded, c.replayed) for c in result.changes] == [("valid_to", "2020-09-30", "2020-08-04")]


# ================================================================ which commitments a key names


def two_commitments(first: str = "C1", second: str = "C2") -> AuditLog:
    county = County()
    county.register("co1", "白果", [("h1", True)])
    county.commitment(first, 800, cap="100", per_mu=None)
    county.commitment(second, 700, cap="100", per_mu=None)
    county.harvest("L1", "A", [("h1", "300", True)])
    return county.log


def floors(result: WhatIf) -> dict[str, int]:
    return {c.commitment_id: c.replayed for c in result.changes if c.term == "floor_price_fen"}


def test_a_commitment_id_changes_that_commitment_alone():
    assert floors(what_if(two_commitments(), Changes.parse(floor=["C2=900"]))) == {"C2": 900}


def test_a_product_changes_every_commitment_of_it():
    assert floors(what_if(two_commitments(), Changes.parse(floor=["chili=900"]))) == {"C1": 900, "C2": 900}


@pytest.mark.parametrize("given", [["chili=900", "C2=950"], ["C2=950", "chili=900"]])
def test_a_commitments_own_term_wins_over_its_products_whatever_the_order(given):
    assert floors(what_if(two_commitments(), Changes.parse(floor=given))) == {"C1": 900, "C2": 950}


def test_a_name_that_is_both_a_product_and_a_commitment_id_is_the_product_unless_prefixed():
    log = two_commitments(first="chili")
    assert floors(what_if(log, Changes.parse(floor=["chili=900"]))) == {"chili": 900, "C2": 900}
    assert floors(what_if(log, Changes.parse(floor=["commitment:chili=900"]))) == {"chili": 900}


# ================================================================ refusals, naming the option and the value


@pytest.mark.parametrize(
    ("terms", "message"),
    [
        ({"floor": ["tea=460"]}, "--floor tea=460: tea is neither a product"),
        ({"floor": ["oil_tea_fruit=460"]}, "--floor oil_tea_fruit=460: the log holds no commitment for oil_tea_fruit"),
        ({"cap": ["commitment:C9=10"]}, "--cap commitment:C9=10: the log holds no commitment C9"),
        ({"floor": ["chili=800", "chili=900"]}, "--floor chili=900: --floor for chili is given twice"),
    ],
)
def test_a_key_that_names_nothing_in_the_log_or_twice_is_refused(terms, message):
    with pytest.raises(ChangeError) as refused:
        what_if(chili_market(), Changes.parse(**terms))
    assert str(refused.value).startswith(message)


@pytest.mark.parametrize(
    ("terms", "message"),
    [
        ({"floor": ["chili=0"]}, "--floor chili=0: floor_price_fen: Input should be greater than 0 (commitment C1)"),
        ({"cap": ["C1=1.2345"]}, "--cap C1=1.2345: cap_quantity: Decimal input should have no more than 3 decimal places"),
        ({"per_mu": ["chili=-5"]}, "--per-mu chili=-5: max_quantity_per_mu: Input should be greater than 0"),
        (
            {"valid_to": ["chili=2020-07-01"]},
            "--valid-to chili=2020-07-01: valid_from must not be after valid_to (commitment C1; it runs from 2020-08-01)",
        ),
        ({"valid_to": ["chili=1 Aug"]}, "--valid-to chili=1 Aug: valid_to: must be an ISO date YYYY-MM-DD"),
    ],
)
def test_a_term_the_commitment_contract_refuses_is_refused_naming_the_option_and_value(terms, message):
    with pytest.raises(ChangeError) as refused:
        what_if(chili_market(), Changes.parse(**terms))
    assert str(refused.value).startswith(message)


@pytest.mark.parametrize(
    ("option", "given", "message"),
    [
        ("floor", "chili", "--floor chili: expected KEY=VALUE"),
        ("floor", "chili=4.6", "--floor chili=4.6: the floor is whole fen per unit"),
        ("cap", "=100", "--cap =100: expected KEY=VALUE"),
    ],
)
def test_a_malformed_term_is_refused_before_the_log_is_read(option, given, message):
    with pytest.raises(ChangeError, match="^" + message.replace("+", r"\+").replace(".", r"\.")):
        Changes.parse(**{option: [given]})
