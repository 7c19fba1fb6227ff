"""`farmlink pairings` shows, per pairing, the helped area's fills and the household income paid for them before
the day the pairing began and since, a fill dated by the day its lot came to market."""

import pytest

from farmlink.office.pairings import before_and_after

pytestmark = pytest.mark.unit


def cooperative(cooperative_id: str, village: str, households: list[str]) -> tuple[str, dict]:
    payload = {
        "cooperative_id": cooperative_id,
        "village": village,
        "township": "Ketian",
        "households": [{"household_id": h, "registered_poor": True} for h in households],
    }
    return ("CooperativeRegistered", payload)


def pairing(pairing_id: str, registered_on: str | None, helped: str, kind: str = "village") -> tuple[str, dict]:
    payload = {
        "pairing_id": pairing_id,
        "helped_kind": kind,
        "helped": helped,
        "helped_township": "Ketian",
        "registered_on": registered_on,
    }
    return ("PairingRegistered", payload)


def lot(lot_id: str, available_from: str) -> tuple[str, dict]:
    return ("HarvestRecorded", {"lot_id": lot_id, "available_from": available_from})


def fill(lot_id: str, cooperative_id: str) -> tuple[str, dict]:
    return ("FillMade", {"lot_id": lot_id, "cooperative_id": cooperative_id})


def payment(lot_id: str, shares: dict[str, int]) -> tuple[str, dict]:
    return ("PaymentMade", {"lot_id": lot_id, "household_income_fen": shares})


def test_fills_and_their_income_count_before_or_after_the_day_the_pairing_began_by_their_lots_market_day():
    facts = [
        fill("august", "fengjia"),  # facts in any order: the lot's day decides, not when it was recorded
        cooperative("fengjia", "Fengjia", ["fj-1"]),
        lot("july", "2020-07-20"),
        lot("august", "2020-08-15"),
        lot("september", "2020-09-05"),
        fill("july", "fengjia"),
        payment("july", {"fj-1": 30000}),
        pairing("tongxin-fengjia", "2020-08-15", "Fengjia"),
        fill("september", "fengjia"),
        payment("september", {"fj-1": 90000}),
    ]
    [area] = before_and_after(facts).values()
    assert (area.fills, area.income_fen) == ([1, 2], [30000, 90000])


def test_only_the_helped_villages_fills_and_households_count_and_a_helped_township_takes_them_all():
    facts = [
        cooperative("fengjia", "Fengjia", ["fj-1"]),
        cooperative("other", "Other", ["ot-1"]),
        pairing("tongxin-fengjia", "2020-06-01", "Fengjia"),
        pairing("dejiang-ketian", "2020-06-01", "Ketian", kind="township"),
        lot("june", "2020-06-10"),
        fill("june", "other"),
        payment("june", {"fj-1": 100, "ot-1": 200}),
    ]
    areas = before_and_after(facts)
    assert (areas["tongxin-fengjia"].fills, areas["tongxin-fengjia"].income_fen) == ([0, 0], [0, 100])
    assert (areas["dejiang-ketian"].fills, areas["dejiang-ketian"].income_fen) == ([0, 1], [0, 300])


def test_a_pairing_that_names_no_day_it_began_counts_nothing_before_or_after():
    facts = [
        cooperative("fengjia", "Fengjia", ["fj-1"]),
        pairing("p", None, "Fengjia"),
        lot("l", "2020-06-10"),
        fill("l", "fengjia"),
    ]
    [area] = before_and_after(facts).values()
    assert (area.registered_on, area.fills) == (None, [0, 0])
