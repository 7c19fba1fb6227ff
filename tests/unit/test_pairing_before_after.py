"""`farmlink pairings` shows, per pairing, the helped area's fills and household income recorded before the pairing
was registered and since."""

from datetime import datetime, timedelta, timezone

import pytest

from farmlink.pairings import before_and_after

pytestmark = pytest.mark.unit

T0 = datetime(2020, 3, 1, tzinfo=timezone.utc)


def at(day: int) -> datetime:
    return T0 + timedelta(days=day)


def cooperative(cooperative_id: str, village: str, households: list[str]) -> tuple[str, datetime, dict]:
    payload = {
        "cooperative_id": cooperative_id,
        "village": village,
        "township": "Ketian",
        "households": [{"household_id": h, "registered_poor": True} for h in households],
    }
    return ("CooperativeRegistered", at(0), payload)


def pairing(pairing_id: str, day: int, helped: str, kind: str = "village") -> tuple[str, datetime, dict]:
    payload = {"pairing_id": pairing_id, "helped_kind": kind, "helped": helped, "helped_township": "Ketian"}
    return ("PairingRegistered", at(day), payload)


def fill(day: int, cooperative_id: str) -> tuple[str, datetime, dict]:
    return ("FillMade", at(day), {"cooperative_id": cooperative_id})


def payment(day: int, shares: dict[str, int]) -> tuple[str, datetime, dict]:
    return ("PaymentMade", at(day), {"household_income_fen": shares})


def test_fills_and_income_count_before_or_after_the_day_the_pairing_was_registered():
    facts = [
        cooperative("fengjia", "Fengjia", ["fj-1"]),
        fill(2, "fengjia"),
        payment(3, {"fj-1": 30000}),
        pairing("tongxin-fengjia", 5, "Fengjia"),
        fill(8, "fengjia"),
        fill(9, "fengjia"),
        payment(10, {"fj-1": 90000}),
    ]
    [area] = before_and_after(facts).values()
    assert (area.fills, area.income_fen) == ([1, 2], [30000, 90000])


def test_only_the_helped_villages_fills_and_households_count_and_a_helped_township_takes_them_all():
    facts = [
        cooperative("fengjia", "Fengjia", ["fj-1"]),
        cooperative("other", "Other", ["ot-1"]),
        pairing("tongxin-fengjia", 1, "Fengjia"),
        pairing("dejiang-ketian", 1, "Ketian", kind="township"),
        fill(2, "other"),
        payment(3, {"fj-1": 100, "ot-1": 200}),
    ]
    areas = before_and_after(facts)
    assert (areas["tongxin-fengjia"].fills, areas["tongxin-fengjia"].income_fen) == ([0, 0], [0, 100])
    assert (areas["dejiang-ketian"].fills, areas["dejiang-ketian"].income_fen) == ([0, 1], [0, 300])
