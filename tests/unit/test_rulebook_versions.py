"""Versioned rules: a version 2 of one rule (registered-poor lots before earlier-expiring ones) ships beside
version 1, a journal adopts it at a recorded position, the matching service's own handler journals inputs
under v1 and then v2, and the audit re-executes each entry under its version and finds nothing; a fill
re-executed under the wrong version, or an entry naming the wrong one, is a finding."""

from __future__ import annotations

import dataclasses
import uuid
from datetime import date, timedelta
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st
from typer.testing import CliRunner

from contracts.cooperative import Contribution, HarvestRecorded
from events.consumer import Delivery
from events.store import StoredEvent, envelope_bytes
from events.unit import MemoryUnitOfWork
from events.handling import decide_one
from events.upcasting import decode
from farmlink.audit.checks import check_invariants
from farmlink.audit.model import AuditLog, Record
from farmlink.audit.replay import re_execute
from farmlink.audit.views import check_journal_complete
from farmlink.cli.rules import rules_app
from matcher import Book, Lot, Market, RulesAdoption
from matcher.journal import fact_from
from matcher.reference import reference_fills, reference_view
from matcher.rules import (
    RULEBOOKS,
    VERSION_1,
    Rulebook,
    ShelfKey,
    lot_shelf_keys,
    lot_shelves_for_commitment,
    lot_shelves_for_order,
)
from matcher.snapshot import book_from_snapshot, book_state, snapshot_bytes
from matcher.versions import ADOPTION_TYPE, due_adoption, entry_rules_version, version_for_day
from services.matching import app as matching
from tests.unit.test_audit_checks import START, Services
from tests.unit.matcher_journals import PROPERTY, journals

pytestmark = pytest.mark.unit

D = Decimal
ADOPTED_ON = date(2020, 8, 2)


# ================================================================ version 2 of one rule


def poor_first(lot: Lot, journal_seq: int) -> tuple:
    """§M2, version 2: lots with a registered-poor contribution before all others, then earliest expiry."""
    return (0 if lot.has_registered_poor else 1, lot.expires_on, journal_seq, lot.lot_id)


def _band(lot: Lot) -> str:
    return "registered_poor" if lot.has_registered_poor else "other"


def _banded(keys: list[ShelfKey]) -> list[ShelfKey]:
    return [(*key, band) for key in keys for band in ("registered_poor", "other")]


VERSION_2 = dataclasses.replace(
    VERSION_1,
    version=2,
    changes="an arriving outlet takes lots with a registered-poor contribution before earlier-expiring ones",
    applies_from=ADOPTED_ON,
    lot_priority=poor_first,
    # The index skips lots by expiry on a shelf, so lots sit apart by the new first criterion.
    lot_shelf_keys=lambda lot: tuple((*key, _band(lot)) for key in lot_shelf_keys(lot)),
    lot_shelves_for_order=lambda order: _banded(lot_shelves_for_order(order)),
    lot_shelves_for_commitment=lambda commitment: _banded(lot_shelves_for_commitment(commitment)),
)


@pytest.fixture
def version_2(monkeypatch: pytest.MonkeyPatch) -> Rulebook:
    monkeypatch.setitem(RULEBOOKS, 2, VERSION_2)
    return VERSION_2


# ================================================================ recording through the matching service's handler


class ServicesWithTheMatchingHandler(Services):
    """The test log of test_audit_checks, but each journaled input goes through the matching service's own
    handler (services/matching/app.py `handle`) on an in-memory unit of work, as `farmlink simulate` runs it."""

    def __init__(self) -> None:
        super().__init__()
        self.matching = MemoryUnitOfWork("matching", "service:matching", lambda envelope: None)

    def next_day(self) -> None:
        self.minute += 24 * 60

    def _journal(self, source: Record) -> None:
        stored = StoredEvent(
            **{f.name: getattr(source, f.name) for f in dataclasses.fields(StoredEvent) if f.name not in ("event_id",)},
            event_id=uuid.UUID(source.event_id),
        )
        events, accepted = decide_one(
            self.matching, matching.CONSUMER, Delivery("test", 0, source.global_position, None, envelope_bytes(stored), [])
        )
        assert accepted
        recorded = [(_Payload(e.event_type, e.schema_version, e.payload), e.event_id) for e in events]
        self.append(
            "matching",
            events[0].stream_id,
            recorded,
            source.occurred_at,  # type: ignore[arg-type]
            correlation_id=source.correlation_id,
            causation_id=source.event_id,
        )

    def lot(self, lot_id: str, expires_on: str, poor: bool, quantity: str = "100") -> Record:
        event = HarvestRecorded(
            lot_id=lot_id,
            cooperative_id="co1",
            county="沿河",
            township="官舟",
            village="白果",
            product="chili",
            grade="A",
            quantity=quantity,
            available_from="2020-08-05",
            expires_on=expires_on,
            contributions=(Contribution(household_id="h1", quantity=quantity, registered_poor=poor),),
        )
        return self.record("cooperative", f"lot-{lot_id}", event)


@dataclasses.dataclass
class _Payload:
    """A payload the handler recorded, shaped as the test log's append takes a model."""

    event_type: str
    schema_version: int
    payload: dict

    def model_dump(self, mode: str = "json") -> dict:
        return self.payload


def two_days_of_chili() -> ServicesWithTheMatchingHandler:
    """Day one (rules v1): lots E1 (expires 08-10) and P1 (registered-poor, expires 08-20) rest; order O1 of
    100 kg takes E1, the earlier expiry. Day two (v2 applies): lots E2 and P2 alike; order O2 of 100 kg takes a
    registered-poor lot, P1, though E2 expires first."""
    services = ServicesWithTheMatchingHandler()
    services.lot("E1", "2020-08-10", poor=False)
    services.lot("P1", "2020-08-20", poor=True)
    services.order("O1", "100", 1000, min_grade="C")
    services.next_day()
    services.lot("E2", "2020-08-10", poor=False)
    services.lot("P2", "2020-08-20", poor=True)
    services.order("O2", "100", 1000, min_grade="C")
    return services


def entries(log: AuditLog) -> list[Record]:
    return [r for r in log.by_schema["matching"] if r.event_type == "InputJournaled"]


def fills(log: AuditLog) -> dict[str, str]:
    return {r.payload["outlet_id"]: r.payload["lot_id"] for r in log.by_schema["matching"] if r.event_type == "FillMade"}


def tampered(log: AuditLog, record: Record, **payload: object) -> AuditLog:
    """The log with one record's payload fields changed (the hash chain is another check's business)."""
    changed = dataclasses.replace(record, payload={**record.payload, **payload})
    return AuditLog(
        log.source, {schema: [changed if r is record else r for r in records] for schema, records in log.by_schema.items()}
    )


# ================================================================ the journal adopts version 2 and audits clean


def test_inputs_journaled_under_v1_then_v2_record_their_versions_and_the_adoption_between(version_2):
    log = two_days_of_chili().log
    journal = entries(log)
    assert [(e.payload["journal_seq"], e.payload["source_event_type"], e.payload["rules_version"]) for e in journal] == [
        (1, "HarvestRecorded", 1),
        (2, "HarvestRecorded", 1),
        (3, "OrderPlaced", 1),
        (4, ADOPTION_TYPE, 2),
        (5, "HarvestRecorded", 2),
        (6, "HarvestRecorded", 2),
        (7, "OrderPlaced", 2),
    ]
    assert journal[3].payload["fact"] == {"product": "chili", "rules_version": 2}
    assert journal[3].occurred_at.date() == ADOPTED_ON  # adopted before the first input recorded on its day
    assert fills(log) == {"O1": "E1", "O2": "P1"}  # v1: earliest expiry first; v2: registered-poor first


def test_a_journal_that_adopted_v2_audits_clean(version_2):
    log = two_days_of_chili().log
    assert re_execute(log).findings == []
    assert check_journal_complete(log) == []
    assert check_invariants(log, re_execute(log)) == []


def test_the_engine_and_the_reference_agree_on_a_journal_that_adopts_v2(version_2):
    facts = [fact_from(e.payload["source_event_type"], e.payload["fact"]) for e in entries(two_days_of_chili().log)]
    assert reference_view(Market.replay(facts)) == reference_fills(facts)


@PROPERTY
@given(journals(), st.data())
def test_the_engine_makes_the_reference_fills_when_a_random_journal_adopts_v2_anywhere(facts, data):
    RULEBOOKS[2] = VERSION_2
    try:
        cut = data.draw(st.integers(0, len(facts)))
        product = data.draw(st.sampled_from(("chili", "live_pig")))
        adopted = [*facts[:cut], RulesAdoption(product, 2), *facts[cut:]]
        assert reference_view(Market.replay(adopted)) == reference_fills(adopted)
    finally:
        del RULEBOOKS[2]


# ================================================================ the wrong version is a finding


def test_a_fill_re_executed_under_the_wrong_version_is_a_finding(version_2):
    log = two_days_of_chili().log
    adoption = entries(log)[3]
    # The adoption changed to name version 1: the journal is re-executed under v1 from there on.
    wrong = tampered(log, adoption, fact={"product": "chili", "rules_version": 1})
    messages = [f.message for f in re_execute(wrong).findings]
    assert any("lot_id: recorded 'P1', re-executed 'E2'" in m for m in messages), messages
    assert any("rules_version: recorded 2, re-executed under 1" in m for m in messages), messages


def test_an_entry_that_names_another_version_than_its_journal_adopted_is_a_finding(version_2):
    log = two_days_of_chili().log
    order = entries(log)[6]
    findings = re_execute(tampered(log, order, rules_version=1)).findings
    assert [(f.event_id, f.message) for f in findings] == [
        (order.event_id, "rules_version: recorded 1, re-executed under 2, the version its journal adopted")
    ]


def test_a_journal_cannot_be_re_executed_under_a_version_this_matcher_does_not_know():
    log = ServicesWithTheMatchingHandler()
    log.lot("E1", "2020-08-10", poor=False)
    entry = entries(log.log)[0]
    adoption = tampered(log.log, entry, source_event_type=ADOPTION_TYPE, fact={"product": "chili", "rules_version": 9})
    [finding] = re_execute(adoption).findings[:1]
    assert "rules version 9 is unknown to this matcher" in finding.message


# ================================================================ old entries, dates, snapshots, the CLI


def test_an_entry_written_before_versions_reads_as_version_1():
    payload = {
        "product": "chili",
        "journal_seq": 1,
        "source_event_id": "e",
        "source_event_type": "OrderCancelled",
        "source_schema_version": 1,
        "fact": {"order_id": "O1", "product": "chili", "buyer_id": "b"},
    }
    assert decode("InputJournaled", 1, payload).rules_version == 1  # type: ignore[attr-defined]
    assert entry_rules_version(payload) == 1


def test_a_log_whose_entries_have_no_rules_version_audits_clean():
    services = ServicesWithTheMatchingHandler()
    services.lot("E1", "2020-08-10", poor=False)
    services.order("O1", "100", 1000, min_grade="C")
    log = services.log
    for entry in entries(log):
        log = tampered(log, entry)
        log.by_schema["matching"] = [
            dataclasses.replace(r, payload={k: v for k, v in r.payload.items() if k != "rules_version"})
            if r.event_id == entry.event_id
            else r
            for r in log.by_schema["matching"]
        ]
    assert all("rules_version" not in e.payload for e in entries(log))
    assert re_execute(log).findings == []


def test_a_version_applies_from_its_day_and_a_journal_never_goes_back(version_2):
    assert version_for_day(ADOPTED_ON - timedelta(days=1)) == 1
    assert version_for_day(ADOPTED_ON) == 2
    assert due_adoption(1, ADOPTED_ON) == 2
    assert due_adoption(2, ADOPTED_ON) is None
    assert due_adoption(1, START.date()) is None


def test_a_book_under_v2_snapshots_with_its_version_and_a_v1_book_as_before(version_2):
    facts = [fact_from(e.payload["source_event_type"], e.payload["fact"]) for e in entries(two_days_of_chili().log)]
    v1_book, v2_book = Book("chili"), Book("chili")
    for fact in facts[:3]:
        v1_book.process(fact)
    for fact in facts:
        v2_book.process(fact)
    assert "rules_version" not in book_state(v1_book)
    restored = book_from_snapshot(snapshot_bytes(v2_book))
    assert restored.rules_version == 2 and snapshot_bytes(restored) == snapshot_bytes(v2_book)
    assert restored.resting_lots() == v2_book.resting_lots()


def test_farmlink_rules_lists_every_version_since_when_and_what_changed(version_2):
    result = CliRunner().invoke(rules_app, [])
    assert result.exit_code == 0, result.output
    assert "1" in result.output and "from the first journal entry" in result.output
    assert "2020-08-02" in result.output and "registered-poor" in result.output
    result = CliRunner().invoke(rules_app, ["--format", "jsonl"])
    assert result.output.splitlines()[1] == (
        '{"rules_version":2,"applies_from":"2020-08-02","changes":"an arriving outlet takes lots with a '
        'registered-poor contribution before earlier-expiring ones"}'
    )
