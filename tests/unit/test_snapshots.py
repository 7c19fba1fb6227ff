"""Snapshots of a book (matcher/snapshot.py), their rows (services/matching/snapshots.py) and the
audit's snapshot check (farmlink/audit/snapshots.py): a restored book is the book, and a snapshot
that is not is a finding."""

from __future__ import annotations

import json
import zlib
from datetime import date
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from farmlink.audit.model import AuditLog
from farmlink.audit.replay import journal_fact, market_streams, re_execute, state_hash
from farmlink.audit.snapshots import SnapshotCheck, StoredSnapshot
from farmlink.operations.bench.matcher_bench import synthetic_journal
from matcher import Book, Market, Order, Planting
from matcher.snapshot import (
    BOOK_ATTRIBUTES,
    book_from_snapshot,
    book_from_state,
    book_state,
    canonical,
    digest_of,
    snapshot_bytes,
    state_digest,
)
from services.matching.snapshots import due, snapshot_data, snapshot_row, stored_state
from tests.unit.test_audit_checks import yanhe_chili
from tests.unit.matcher_journals import PROPERTY, journals

pytestmark = pytest.mark.unit


# ================================================================ the matcher's snapshots


def _books_after(facts) -> dict[str, Book]:
    market = Market()
    for fact in facts:
        market.process(fact)
    return {product: market.book(product) for product in market.products}


def _continue(book: Book, facts) -> list:
    return [book.process(fact) for fact in facts if fact.product == book.product]


@PROPERTY
@given(journals(), st.data())
def test_a_book_restored_from_its_snapshot_is_the_book_and_decides_the_rest_of_the_journal_the_same(facts, data):
    cut = data.draw(st.integers(0, len(facts)))
    for product, book in _books_after(facts[:cut]).items():
        taken = snapshot_bytes(book)
        restored = book_from_snapshot(taken)
        assert snapshot_bytes(restored) == taken and state_digest(restored) == state_digest(book)
        assert restored.resting_lots() == book.resting_lots() and restored.open_outlets() == book.open_outlets()
        assert _continue(restored, facts[cut:]) == _continue(book, facts[cut:])
        assert snapshot_bytes(restored) == snapshot_bytes(book)


def test_a_long_journal_restored_at_many_points_decides_identically_archive_and_horizon_included():
    journal = [fact for fact in synthetic_journal(60_000) if fact.product == "chili"]
    book = Book("chili")
    archived_seen = False
    segment = 2_500
    for start in range(0, len(journal), segment):
        state = book_state(book)
        archived_seen = archived_seen or any(row[2] for row in state["orders"]["rows"])
        restored = book_from_snapshot(snapshot_bytes(book))
        assert snapshot_bytes(restored) == canonical(state)
        part = journal[start : start + segment]
        assert [restored.process(fact) for fact in part] == [book.process(fact) for fact in part]
        assert snapshot_bytes(restored) == snapshot_bytes(book)
    assert book.journal_seq > 20_000 and book.fills_so_far > 0
    assert archived_seen and book._horizon > date.min, "the journal must be long enough to move the horizon and archive outlets"


def test_equal_states_give_equal_bytes_whatever_order_they_were_reached_in():
    first, second = Book("chili"), Book("chili")
    for planting in (Planting("P1", "co1", "chili", Decimal(5)), Planting("P2", "co2", "chili", Decimal(7))):
        first.process(planting)
    for planting in (Planting("P2", "co2", "chili", Decimal(7)), Planting("P1", "co1", "chili", Decimal(5))):
        second.process(planting)
    assert snapshot_bytes(first) == snapshot_bytes(second) and state_digest(first) == state_digest(second)
    second.process(Planting("P3", "co1", "chili", Decimal(1)))
    assert state_digest(first) != state_digest(second)


def test_the_bytes_are_canonical_json_and_keep_decimal_text_exactly():
    book = Book("chili")
    order = Order("O1", "b1", "chili", "B", Decimal("12.500"), 900, date(2020, 8, 1), date(2020, 8, 31), ("Yanhe",))
    book.process(order)
    data = snapshot_bytes(book)
    assert canonical(json.loads(data)) == data and snapshot_bytes(book) == data
    [row] = json.loads(data)["orders"]["rows"]
    assert row[1] == "12.500" and row[6] == "12.500"
    assert book_from_snapshot(data).open_outlets()[0].quantity_left.as_tuple() == Decimal("12.500").as_tuple()


def test_the_snapshot_knows_every_attribute_of_a_book():
    # A new attribute in Book must be kept in the snapshot (or shown to be remade from it) before this passes.
    assert set(vars(Book("chili"))) == BOOK_ATTRIBUTES


def test_a_snapshot_of_another_format_or_layout_is_refused():
    state = book_state(Book("chili"))
    with pytest.raises(ValueError, match="format"):
        book_from_state({**state, "format": 2})
    with pytest.raises(ValueError, match="columns"):
        book_from_state({**state, "orders": {"columns": ["seq"], "rows": []}})


# ================================================================ the service's rows


def test_a_row_is_due_every_n_entries_and_holds_compressed_bytes_with_their_digest():
    book = Book("chili")
    for n in range(1, 5):
        book.process(Planting(f"P{n}", "co1", "chili", Decimal(n)))
        assert due(book, every=2) == (n % 2 == 0)
    assert not due(book, every=0)
    row = snapshot_row(book, 4)
    assert (row["product"], row["journal_seq"], row["stream_version"]) == ("chili", 4, 4)
    assert snapshot_data(row["state"]) == snapshot_bytes(book) and row["digest"] == state_digest(book)


# ================================================================ the audit's snapshot check


def snapshot_at(log: AuditLog, product: str, seq: int) -> dict:
    """The row the matching service writes after journal entry `seq` of the product: the book replayed
    from the recorded journal, at the stream version where the entry's decisions end."""
    book, version = Book(product), 0
    for record in market_streams(log)[product]:
        if record.event_type == "InputJournaled":
            if book.journal_seq == seq:
                break
            book.process(journal_fact(record))
        version = record.stream_version
    return snapshot_row(book, version)


def stored(row: dict, **changes) -> StoredSnapshot:
    row = {**row, **changes}
    return StoredSnapshot.of(row["product"], row["journal_seq"], row["stream_version"], row["state"], row["digest"])


def check(log: AuditLog, *snapshots: StoredSnapshot, states=None):
    probe = SnapshotCheck(snapshots)
    reexecution = re_execute(log, probe)
    return reexecution, probe.findings(states or {})


def test_snapshots_that_agree_with_the_re_execution_give_no_finding_and_leave_the_state_hash_alone():
    log = yanhe_chili().log
    rows = [snapshot_at(log, "chili", seq) for seq in (1, 3, 5, 7)]
    reexecution, findings = check(log, *map(stored, rows))
    assert findings == [] and reexecution.findings == []
    assert state_hash(reexecution) == state_hash(re_execute(log))


def tampered(row: dict, change) -> dict:
    """A forger edits a snapshot's state and writes the digest that goes with it."""
    state = json.loads(snapshot_data(row["state"]))
    change(state)
    data = canonical(state)
    return {**row, "state": stored_state(data), "digest": digest_of(data)}


def test_a_tampered_snapshot_is_a_finding_naming_product_journal_seq_and_what_differs():
    log = yanhe_chili().log
    honest = snapshot_at(log, "chili", 6)

    def more_on_offer(state):
        state["lots"]["rows"][0][1] = "800.000"  # L2 had 700 left after journal entry 6

    forged = tampered(honest, more_on_offer)
    _, [finding] = check(log, stored(forged), states={("chili", 6): forged["state"]})
    assert finding.check == "snapshot" and finding.stream_id == "market-chili"
    assert "product chili, journal_seq 6" in finding.where
    assert "snapshot of chili at journal_seq 6: disagrees with the re-executed book" in finding.message
    assert "differs in lots" in finding.message and '"800.000"' in finding.message
    assert finding.stream_version == honest["stream_version"]


def test_a_snapshot_whose_state_or_digest_was_changed_alone_is_a_finding():
    log = yanhe_chili().log
    honest = snapshot_at(log, "chili", 4)
    _, [finding] = check(log, stored(honest, digest="0" * 64))
    assert "journal_seq 4" in finding.where and "does not match its digest" in finding.message
    other = snapshot_at(log, "chili", 3)
    _, findings = check(log, stored(honest, state=other["state"]))
    assert {("does not match its digest" in f.message, "disagrees" in f.message) for f in findings} == {
        (True, False),
        (False, True),
    }


def test_a_snapshot_out_of_place_unreadable_or_past_the_journal_is_a_finding():
    log = yanhe_chili().log
    honest = snapshot_at(log, "chili", 5)
    _, [finding] = check(log, stored(honest, stream_version=honest["stream_version"] - 1))
    assert "journal_seq 5" in finding.where and "stream_version" in finding.message
    _, [finding] = check(log, stored(honest, state=b"not zlib"))
    assert "cannot be decompressed" in finding.message
    _, [finding] = check(log, stored(honest, journal_seq=99))
    assert "journal_seq 99" in finding.where and "never reached journal entry 99" in finding.message
    _, [finding] = check(log, stored(honest, product="tea_leaf"))
    assert "product tea_leaf" in finding.where and "never reached" in finding.message


def test_the_state_column_is_zlib_of_the_snapshot_bytes():
    book = Book("chili")
    assert zlib.decompress(snapshot_row(book, 0)["state"]) == snapshot_bytes(book)
