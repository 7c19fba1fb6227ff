"""The per-stream hash chain: anyone holding the log can recompute it and find the first broken link."""

import copy
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from uuid import UUID

import pytest

from events.hashchain import GENESIS, BrokenLink, canonical_json, hashed_content, link_hash, verify_chain

pytestmark = pytest.mark.unit

STREAM = "cooperative-co1"


def lot(lot_id: str, quantity: str = "1200") -> dict:
    return {
        "lot_id": lot_id,
        "county": "沿河",
        "product": "chili",
        "quantity": quantity,
        "contributions": [{"household_id": "h1", "quantity": quantity, "registered_poor": True}],
    }


def content(version: int, payload: dict, **changes) -> dict:
    fields = dict(
        event_id=UUID(int=version),
        event_type="HarvestRecorded",
        schema_version=1,
        stream_id=STREAM,
        stream_version=version,
        occurred_at=datetime(2020, 8, 1, 8, 0, tzinfo=timezone.utc) + timedelta(minutes=version),
        producer="cooperative:co1",
        correlation_id=f"run:{version}",
        causation_id=None,
        payload=payload,
    )
    return {**fields, **changes}


def chain(count: int = 4) -> list[dict]:
    """A good stream of `count` events, each linked to the one before, as a store would hold them."""
    events, previous = [], GENESIS
    for version in range(1, count + 1):
        fields = content(version, lot(f"L{version}"))
        digest = link_hash(previous, hashed_content(**fields))
        events.append({**fields, "global_position": 100 + version, "prev_hash": previous or None, "hash": digest})
        previous = digest
    return events


def without_links(event: dict) -> dict:
    """An event's hashed fields: everything but its position and its hashes."""
    return {key: value for key, value in event.items() if key not in ("global_position", "prev_hash", "hash")}


# ---------------------------------------------------------------- link_hash


def test_the_same_event_always_hashes_the_same():
    first = link_hash(GENESIS, hashed_content(**content(1, lot("L1"))))
    again = link_hash(GENESIS, hashed_content(**copy.deepcopy(content(1, lot("L1")))))
    assert first == again
    assert len(first) == 64 and int(first, 16) >= 0


@pytest.mark.parametrize(
    "edit",
    [
        lambda p: p.update(quantity="1201"),
        lambda p: p.update(county="德江"),
        lambda p: p["contributions"][0].update(registered_poor=False),
        lambda p: p.update(note="added"),
        lambda p: p.pop("product"),
    ],
    ids=["quantity", "county", "nested-flag", "added-key", "removed-key"],
)
def test_any_change_to_the_payload_changes_the_hash(edit):
    payload = lot("L1")
    original = link_hash(GENESIS, hashed_content(**content(1, payload)))
    edited = copy.deepcopy(payload)
    edit(edited)
    assert link_hash(GENESIS, hashed_content(**content(1, edited))) != original


@pytest.mark.parametrize(
    "change",
    [
        {"event_type": "HarvestCorrected"},
        {"schema_version": 2},
        {"stream_id": "cooperative-co2"},
        {"producer": "cooperative:co2"},
        {"correlation_id": "run:99"},
        {"causation_id": "run:0"},
        {"occurred_at": datetime(2020, 8, 1, 9, 0, tzinfo=timezone.utc)},
    ],
    ids=lambda change: next(iter(change)),
)
def test_any_change_to_the_metadata_changes_the_hash(change):
    original = link_hash(GENESIS, hashed_content(**content(1, lot("L1"))))
    assert link_hash(GENESIS, hashed_content(**content(1, lot("L1"), **change))) != original


def test_the_hash_depends_on_the_previous_hash():
    fields = hashed_content(**content(2, lot("L2")))
    assert link_hash(GENESIS, fields) != link_hash("a" * 64, fields)


def test_the_hash_does_not_depend_on_the_order_of_payload_keys():
    payload = lot("L1")
    reordered = dict(reversed(list(payload.items())))
    assert link_hash(GENESIS, hashed_content(**content(1, payload))) == link_hash(
        GENESIS, hashed_content(**content(1, reordered))
    )


def test_the_same_instant_in_another_time_zone_hashes_the_same():
    china = timezone(timedelta(hours=8))
    utc_time = hashed_content(**content(1, lot("L1"), occurred_at=datetime(2020, 8, 1, 8, 0, tzinfo=timezone.utc)))
    china_time = hashed_content(**content(1, lot("L1"), occurred_at=datetime(2020, 8, 1, 16, 0, tzinfo=china)))
    assert utc_time["occurred_at"] == china_time["occurred_at"] == "2020-08-01T08:00:00+00:00"
    assert link_hash(GENESIS, utc_time) == link_hash(GENESIS, china_time)


def test_the_hashed_content_leaves_out_position_and_hashes():
    assert set(hashed_content(**content(1, lot("L1")))) == {
        "event_id",
        "event_type",
        "schema_version",
        "stream_id",
        "stream_version",
        "occurred_at",
        "producer",
        "correlation_id",
        "causation_id",
        "payload",
    }


# ---------------------------------------------------------------- verify_chain


def test_a_good_chain_holds():
    assert verify_chain(STREAM, chain()) is None


def test_an_empty_stream_holds():
    assert verify_chain(STREAM, []) is None


def test_an_edited_payload_breaks_the_chain_at_that_event():
    events = chain()
    events[1]["payload"]["quantity"] = "12000"
    broken = verify_chain(STREAM, events)
    assert broken == BrokenLink(
        stream_id=STREAM,
        stream_version=2,
        global_position=102,
        event_id=str(UUID(int=2)),
        reason="hash does not match the event's content: it was edited",
    )
    assert "edited" in broken.reason


def test_edited_metadata_breaks_the_chain_at_that_event():
    events = chain()
    events[2]["producer"] = "cooperative:co9"
    broken = verify_chain(STREAM, events)
    assert (broken.stream_version, "edited" in broken.reason) == (3, True)


def test_a_deleted_middle_event_shows_as_a_version_gap():
    events = chain()
    del events[1]
    broken = verify_chain(STREAM, events)
    assert (broken.stream_version, broken.global_position, broken.event_id) == (3, 103, str(UUID(int=3)))
    assert "expected stream version 2" in broken.reason and "missing" in broken.reason


def test_a_deleted_first_event_shows_as_a_version_gap():
    broken = verify_chain(STREAM, chain()[1:])
    assert broken.stream_version == 2
    assert "expected stream version 1" in broken.reason


def test_swapped_events_break_the_chain_where_the_first_is_out_of_place():
    events = chain()
    events[1], events[2] = events[2], events[1]
    broken = verify_chain(STREAM, events)
    assert (broken.stream_version, broken.event_id) == (3, str(UUID(int=3)))
    assert "out of place" in broken.reason


def test_swapped_payloads_break_the_chain_at_the_first_of_them():
    events = chain()
    events[1]["payload"], events[2]["payload"] = events[2]["payload"], events[1]["payload"]
    broken = verify_chain(STREAM, events)
    assert broken.stream_version == 2 and "edited" in broken.reason


def test_a_forged_prev_hash_is_found():
    events = chain()
    events[2]["prev_hash"] = "0" * 64
    broken = verify_chain(STREAM, events)
    assert (broken.stream_version, broken.global_position) == (3, 103)
    assert "prev_hash" in broken.reason


def test_a_first_event_claiming_a_previous_hash_is_found():
    events = chain()
    events[0]["prev_hash"] = "0" * 64
    assert "prev_hash" in verify_chain(STREAM, events).reason


def test_an_edit_whose_hash_was_recomputed_still_breaks_the_next_link():
    events = chain()
    events[1]["payload"]["quantity"] = "12000"
    events[1]["hash"] = link_hash(events[0]["hash"], hashed_content(**without_links(events[1])))
    broken = verify_chain(STREAM, events)
    assert broken.stream_version == 3
    assert "prev_hash" in broken.reason


def test_only_the_first_broken_link_is_reported():
    events = chain()
    events[1]["payload"]["quantity"] = "1"
    events[3]["payload"]["quantity"] = "1"
    assert verify_chain(STREAM, events).stream_version == 2


def test_a_broken_link_without_a_global_position_reports_none():
    events = chain()
    del events[1]["global_position"]
    events[1]["payload"]["quantity"] = "1"
    assert verify_chain(STREAM, events).global_position is None


# ---------------------------------------------------------------- canonical_json


def test_canonical_json_sorts_keys_at_every_level_and_has_no_whitespace():
    assert canonical_json({"b": 1, "a": {"d": 2, "c": [3, {"f": 4, "e": 5}]}}) == '{"a":{"c":[3,{"e":5,"f":4}],"d":2},"b":1}'


def test_canonical_json_keeps_chinese_as_it_is():
    assert canonical_json({"county": "沿河", "village": "冯家村"}) == '{"county":"沿河","village":"冯家村"}'


def test_canonical_json_writes_decimals_as_exact_text():
    assert canonical_json({"quantity": Decimal("12.500"), "price": Decimal("0.1")}) == '{"price":"0.1","quantity":"12.500"}'


def test_canonical_json_writes_ids_dates_and_times_as_text():
    value = {
        "id": UUID(int=1),
        "day": date(2020, 8, 1),
        "at": datetime(2020, 8, 1, 16, 0, tzinfo=timezone(timedelta(hours=8))),
    }
    assert canonical_json(value) == (
        '{"at":"2020-08-01T08:00:00+00:00","day":"2020-08-01","id":"00000000-0000-0000-0000-000000000001"}'
    )


def test_canonical_json_refuses_what_it_cannot_write_exactly():
    with pytest.raises(TypeError, match="not JSON-serialisable: object"):
        canonical_json({"thing": object()})


@pytest.mark.parametrize(
    "value",
    [
        {"b": 1, "a": [True, None, "沿河", {"z": '\u2028\u001f"\\/', "y": 10**15}]},
        {"quantity": "12.500", "household_income_fen": {"h2": 1, "h1": 2}},
        [],
        {"big": 2**70},
    ],
)
def test_canonical_bytes_are_exactly_the_standard_librarys_sorted_compact_json(value):
    import json

    from events.hashchain import canonical_bytes

    expected = json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    assert canonical_bytes(value) == expected
