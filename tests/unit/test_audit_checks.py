"""The audit's core checks over a log recorded the way the live services record it, honest and tampered."""

from __future__ import annotations

import dataclasses
import uuid
from datetime import datetime, timedelta, timezone
from decimal import Decimal

import pytest

from contracts.buyer import CommitmentMade, OrderCancelled, OrderPlaced
from contracts.cooperative import Contribution, HarvestRecorded, PlantingRecorded
from contracts.inputs import PaymentReport
from contracts.market import MarketPriceObserved
from contracts.model import Contract
from contracts.settlement import DeliveryConfirmed, PaymentMade
from events.hashchain import GENESIS, hashed_content, link_hash
from farmlink.audit.asof import OpenOutletState, RestingOffer, market_as_of
from farmlink.audit.checks import check_hash_chains, check_invariants, check_unique_event_ids
from farmlink.audit.model import AuditLog, Finding, Record
from farmlink.audit.replay import fill_line_of, journal_fact, re_execute, state_hash, streams_of
from matcher.book import Book, Market
from matcher.facts import Fill
from matcher.journal import JOURNALED_TYPES, fact_from
from matcher.output import fill_line
from services.matching.outcomes import journal_entry, outcome_event
from services.settlement.domain import FillAccount, make_payment

pytestmark = pytest.mark.unit

D = Decimal
START = datetime(2020, 8, 1, 8, 0, tzinfo=timezone.utc)
TEST_NAMESPACE = uuid.UUID("0b6f0a4e-3c1d-4d7e-9a55-2f1c7e0d9b31")
MARKET = "沿河市场"
HASHED = (
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
)


# ================================================================ recording like the live services


class Services:
    """What the services would record for a run of inputs, without Kafka or PostgreSQL: each schema's
    streams with hash links, and the matching service's journal entries and outcomes through the
    same `journal_entry` / `outcome_event` mapping the live service uses."""

    def __init__(self) -> None:
        self.log = AuditLog(source="test")
        self.heads: dict[tuple[str, str], tuple[int, str]] = {}
        self.positions: dict[str, int] = {}
        self.books: dict[str, Book] = {}
        self.fills: dict[tuple[str, str], FillAccount] = {}
        self.contributions: dict[str, dict[str, Decimal]] = {}
        self.minute = 0

    def append(
        self,
        schema: str,
        stream_id: str,
        events: list[tuple[Contract, uuid.UUID | None]],
        at: datetime,
        correlation_id: str,
        causation_id: str | None = None,
    ) -> list[Record]:
        """Append to a stream the way events/store.py does: next versions, next positions, hash links."""
        version, prev_hash = self.heads.get((schema, stream_id), (0, GENESIS))
        records = []
        for model, event_id in events:
            version += 1
            position = self.positions[schema] = self.positions.get(schema, 0) + 1
            fields = dict(
                event_id=str(event_id or uuid.uuid5(TEST_NAMESPACE, f"{schema}/{stream_id}/{version}")),
                event_type=model.event_type,  # type: ignore[attr-defined]
                schema_version=model.schema_version,  # type: ignore[attr-defined]
                stream_id=stream_id,
                stream_version=version,
                occurred_at=at,
                producer=f"service:{schema}",
                correlation_id=correlation_id,
                causation_id=causation_id,
                payload=model.model_dump(mode="json"),
            )
            digest = link_hash(prev_hash, hashed_content(**fields))
            records.append(Record(schema=schema, global_position=position, **fields, prev_hash=prev_hash, hash=digest))
            prev_hash = digest
        self.heads[(schema, stream_id)] = (version, prev_hash)
        self.log.by_schema.setdefault(schema, []).extend(records)
        return records

    def record(self, schema: str, stream_id: str, model: Contract) -> Record:
        """A service records an input's event; the matching service journals it and records what the matcher decided."""
        self.minute += 1
        at = START + timedelta(minutes=self.minute)
        [source] = self.append(schema, stream_id, [(model, None)], at, correlation_id=f"run:{self.minute}")
        if source.event_type in JOURNALED_TYPES:
            self._journal(source)
        return source

    def _journal(self, source: Record) -> None:
        product = source.payload["product"]
        book = self.books.setdefault(product, Book(product))
        outcomes = book.process(fact_from(source.event_type, source.payload))
        at = source.occurred_at
        new_events = [
            journal_entry(
                product, book.journal_seq, source.event_id, source.event_type, source.schema_version, source.payload, at
            ),
            *(outcome_event(outcome, index, at) for index, outcome in enumerate(outcomes)),
        ]
        records = self.append(
            "matching",
            f"market-{product}",
            [(event.payload, event.event_id) for event in new_events],
            at,
            correlation_id=source.correlation_id,
            causation_id=source.event_id,
        )
        for record in records:
            if record.event_type == "FillMade":
                p = record.payload
                self.fills[(p["lot_id"], p["outlet_id"])] = FillAccount(
                    p["lot_id"],
                    p["outlet_id"],
                    p["buyer_id"],
                    p["product"],
                    p["cooperative_id"],
                    D(p["quantity"]),
                    p["revenue_fen"],
                    D(0),
                    0,
                )

    # -- inputs, as the cooperative, buyer and market services record them

    def planting(self, planting_id: str, area_mu: str, cooperative_id: str = "co1") -> Record:
        event = PlantingRecorded(
            planting_id=planting_id,
            cooperative_id=cooperative_id,
            county="沿河",
            township="官舟",
            product="chili",
            area_mu=area_mu,
            expected_yield="5000",
            expected_harvest_from="2020-08-01",
            expected_harvest_to="2020-09-30",
            household_ids=("h1",),
        )
        return self.record("cooperative", f"planting-{planting_id}", event)

    def harvest(self, lot_id: str, grade: str, contributions: list[tuple[str, str, bool]], cooperative_id: str = "co1") -> Record:
        quantity = sum((D(q) for _, q, _ in contributions), D(0))
        event = HarvestRecorded(
            lot_id=lot_id,
            cooperative_id=cooperative_id,
            county="沿河",
            township="官舟",
            village="白果",
            product="chili",
            grade=grade,
            quantity=quantity,
            available_from="2020-08-05",
            expires_on="2020-08-20",
            contributions=tuple(Contribution(household_id=h, quantity=q, registered_poor=poor) for h, q, poor in contributions),
        )
        self.contributions[lot_id] = {h: D(q) for h, q, _ in contributions}
        return self.record("cooperative", f"lot-{lot_id}", event)

    def order(self, order_id: str, quantity: str, limit_price_fen: int, min_grade: str = "B") -> Record:
        event = OrderPlaced(
            order_id=order_id,
            buyer_id=f"buyer-{order_id}",
            product="chili",
            min_grade=min_grade,
            quantity=quantity,
            limit_price_fen=limit_price_fen,
            deliver_from="2020-08-01",
            deliver_to="2020-08-31",
            regions=(),
        )
        return self.record("buyer", f"order-{order_id}", event)

    def cancel(self, order_id: str) -> Record:
        return self.record(
            "buyer", f"order-{order_id}", OrderCancelled(order_id=order_id, buyer_id=f"buyer-{order_id}", product="chili")
        )

    def commitment(self, commitment_id: str, floor_price_fen: int, cap: str | None, per_mu: str | None) -> Record:
        event = CommitmentMade(
            commitment_id=commitment_id,
            buyer_id="yuping",
            product="chili",
            min_grade="B",
            floor_price_fen=floor_price_fen,
            reference_market=MARKET,
            valid_from="2020-08-01",
            valid_to="2020-09-30",
            eligible_counties=(),
            eligible_cooperatives=(),
            cap_quantity=cap,
            max_quantity_per_mu=per_mu,
        )
        return self.record("buyer", f"commitment-{commitment_id}", event)

    def price(self, grade: str, price_fen: int, observed_on: str) -> Record:
        event = MarketPriceObserved(product="chili", grade=grade, market=MARKET, price_fen=price_fen, observed_on=observed_on)
        return self.record("market", "market-price-chili", event)

    def pay(self, lot_id: str, outlet_id: str, amount_fen: int) -> Record:
        """The settlement service records a payment, split by the lot's contributions (services/settlement/domain.py)."""
        fill = self.fills[(lot_id, outlet_id)]
        payment = make_payment(
            PaymentReport(lot_id=lot_id, outlet_id=outlet_id, amount_fen=amount_fen), fill, self.contributions[lot_id]
        )
        self.fills[(lot_id, outlet_id)] = dataclasses.replace(fill, paid_fen=fill.paid_fen + amount_fen)
        self.minute += 1
        [record] = self.append(
            "settlement",
            f"settlement-{lot_id}-{outlet_id}",
            [(payment, None)],
            START + timedelta(minutes=self.minute),
            correlation_id=f"run:{self.minute}",
        )
        return record


def yanhe_chili() -> Services:
    """A small chili market, journal seq in brackets:
    [1] co1 plants 10 mu; [2] grade A trades at 900 fen; [3] commitment C1 (floor 800, cap 1500, 100 kg a mu);
    [4] order O1 300 kg at 1000 fen; [5] lot L1 1200 kg A -> 300 to O1 at 1000, 900 to C1 at 900 (market);
    [6] lot L2 800 kg B -> 100 to C1 at 800 (floor, per-mu room), 700 rest on offer;
    [7] order O2 200 kg at 700 fen -> 200 of L2, 500 left on offer. Then two payments for L1."""
    services = Services()
    services.planting("P1", "10")
    services.price("A", 900, "2020-08-01")
    services.commitment("C1", 800, cap="1500", per_mu="100")
    services.order("O1", "300", 1000)
    services.harvest("L1", "A", [("h1", "700", True), ("h2", "500", False)])
    services.harvest("L2", "B", [("h3", "800", True)])
    services.order("O2", "200", 700, min_grade="C")
    services.pay("L1", "O1", 300_000)
    services.pay("L1", "C1", 500_000)
    return services


# ================================================================ tampering with a log


def find(log: AuditLog, event_id: str) -> Record:
    return next(r for r in log.records() if r.event_id == event_id)


def recorded_fill(log: AuditLog, lot_id: str, outlet_id: str) -> Record:
    return next(
        r
        for r in log.by_schema["matching"]
        if r.event_type == "FillMade" and r.payload["lot_id"] == lot_id and r.payload["outlet_id"] == outlet_id
    )


def journal_entry_of(log: AuditLog, seq: int) -> Record:
    return next(r for r in log.by_schema["matching"] if r.event_type == "InputJournaled" and r.payload["journal_seq"] == seq)


def replace(log: AuditLog, record: Record, **changes) -> Record:
    """Overwrite one stored row (as someone with write access to the database could)."""
    rows = log.by_schema[record.schema]
    new = dataclasses.replace(record, **changes)
    rows[rows.index(record)] = new
    return new


def edit_payload(log: AuditLog, record: Record, **fields) -> Record:
    return replace(log, record, payload={**record.payload, **fields})


def delete(log: AuditLog, record: Record) -> None:
    log.by_schema[record.schema].remove(record)


def reseal(log: AuditLog) -> None:
    """Recompute every stream's hash chain over what the rows now hold: a forger who covers their tracks."""
    for schema, rows in log.by_schema.items():
        resealed: dict[int, Record] = {}
        for stream in streams_of(rows).values():
            prev_hash = GENESIS
            for record in stream:
                digest = link_hash(prev_hash, hashed_content(**{key: getattr(record, key) for key in HASHED}))
                resealed[id(record)] = dataclasses.replace(record, prev_hash=prev_hash, hash=digest)
                prev_hash = digest
        log.by_schema[schema] = [resealed[id(record)] for record in rows]


def insert_after(log: AuditLog, after: Record, event_type: str, payload: dict) -> str:
    """Slip a forged event into a stream right after `after`, renumbering what follows, and reseal."""
    rows = log.by_schema[after.schema]
    moved = []
    for record in rows:
        if record.global_position > after.global_position:
            version = record.stream_version + (record.stream_id == after.stream_id)
            record = dataclasses.replace(record, global_position=record.global_position + 1, stream_version=version)
        moved.append(record)
    forged_id = str(uuid.uuid4())
    forged = dataclasses.replace(
        after,
        event_id=forged_id,
        event_type=event_type,
        stream_version=after.stream_version + 1,
        global_position=after.global_position + 1,
        payload=payload,
    )
    log.by_schema[after.schema] = sorted([*moved, forged], key=lambda r: r.global_position)
    reseal(log)
    return forged_id


def of(check: str, findings: list[Finding]) -> list[Finding]:
    return [finding for finding in findings if finding.check == check]


def messages(findings: list[Finding]) -> list[str]:
    return [finding.message for finding in findings]


def audit(log: AuditLog) -> list[Finding]:
    reexecution = re_execute(log)
    return [
        *check_hash_chains(log),
        *check_unique_event_ids(log),
        *reexecution.findings,
        *check_invariants(log, reexecution),
    ]


# ================================================================ an honest log


def test_an_honestly_recorded_log_has_no_findings():
    log = yanhe_chili().log
    assert audit(log) == []


def test_re_execution_counts_the_inputs_and_gives_the_fills_in_the_order_the_market_made_them():
    reexecution = re_execute(yanhe_chili().log)
    assert (reexecution.input_count, reexecution.fill_count) == (7, 4)
    assert [(f["lot_id"], f["outlet_id"], f["quantity"], f["unit_price_fen"], f["price_basis"]) for f in reexecution.fills] == [
        ("L1", "O1", "300", 1000, "order_limit"),
        ("L1", "C1", "900", 900, "market"),
        ("L2", "C1", "100.000", 800, "floor"),  # cut down to whole grams of per-mu room
        ("L2", "O2", "200", 700, "order_limit"),
    ]
    assert reexecution.fills[1]["household_income_fen"] == {"h1": 472_500, "h2": 337_500}


def test_the_re_executed_fill_lines_are_the_matchers_canonical_fill_lines():
    log = yanhe_chili().log
    entries = [r for r in log.by_schema["matching"] if r.event_type == "InputJournaled"]
    offline = [fill_line(o) for o in Market.replay(journal_fact(e) for e in entries) if isinstance(o, Fill)]
    assert [fill_line_of(payload) for payload in re_execute(log).fills] == offline


def test_a_market_price_journaled_after_a_fill_does_not_count_for_it_and_the_later_of_two_on_a_date_wins():
    services = Services()
    services.commitment("C1", 800, cap=None, per_mu=None)
    services.harvest("L1", "A", [("h1", "100", True)])  # no price known yet: floor
    services.price("A", 900, "2020-08-01")
    services.price("A", 950, "2020-08-01")  # same date, later in the journal: this one counts
    services.harvest("L2", "A", [("h1", "100", True)])
    log = services.log
    assert [(f["lot_id"], f["unit_price_fen"], f["price_basis"]) for f in re_execute(log).fills] == [
        ("L1", 800, "floor"),
        ("L2", 950, "market"),
    ]
    assert audit(log) == []


# ================================================================ hash chains


def test_an_edited_payload_breaks_the_hash_chain_at_that_event():
    log = yanhe_chili().log
    harvest = next(r for r in log.by_schema["cooperative"] if r.stream_id == "lot-L1")
    edit_payload(log, harvest, quantity="1300")
    [finding] = check_hash_chains(log)
    assert (finding.check, finding.schema, finding.stream_id, finding.stream_version) == (
        "hash_chain",
        "cooperative",
        "lot-L1",
        1,
    )
    assert (finding.global_position, finding.event_id) == (harvest.global_position, harvest.event_id)
    assert "edited" in finding.message
    assert f"lot-L1@1 (position {harvest.global_position}, event {harvest.event_id})" in str(finding)


def test_an_edited_fill_breaks_its_stream_at_that_fill_and_no_earlier():
    log = yanhe_chili().log
    fill = recorded_fill(log, "L1", "C1")
    edit_payload(log, fill, unit_price_fen=950)
    [finding] = check_hash_chains(log)
    assert (finding.stream_id, finding.stream_version, finding.event_id) == ("market-chili", fill.stream_version, fill.event_id)


def test_a_deleted_event_breaks_the_hash_chain_where_it_was():
    log = yanhe_chili().log
    fill = recorded_fill(log, "L1", "O1")
    delete(log, fill)
    [finding] = check_hash_chains(log)
    assert (finding.stream_id, finding.stream_version) == ("market-chili", fill.stream_version + 1)
    assert "missing" in finding.message
    [missing] = re_execute(log).findings
    assert missing.event_id == journal_entry_of(log, 5).event_id
    assert missing.message.startswith(f"missing decision: re-execution of journal entry 5 decided FillMade {fill.event_id}")


def test_a_deleted_last_decision_leaves_the_chain_whole_but_re_execution_misses_it():
    log = yanhe_chili().log
    last = log.by_schema["matching"][-1]
    assert last.event_type == "OfferShrunk"
    delete(log, last)
    assert check_hash_chains(log) == []
    [missing] = re_execute(log).findings
    assert missing.event_id == journal_entry_of(log, 7).event_id
    assert "OfferShrunk" in missing.message


def swap_versions(log: AuditLog, first: Record, second: Record) -> None:
    replace(log, first, stream_version=second.stream_version)
    replace(log, find(log, second.event_id), stream_version=first.stream_version)


def swap_positions(log: AuditLog, first: Record, second: Record) -> None:
    replace(log, first, global_position=second.global_position)
    replace(log, find(log, second.event_id), global_position=first.global_position)
    log.by_schema["matching"].sort(key=lambda r: r.global_position)


def swap_payloads(log: AuditLog, first: Record, second: Record) -> None:
    replace(log, first, payload=second.payload)
    replace(log, find(log, second.event_id), payload=first.payload)


@pytest.mark.parametrize("swap", [swap_versions, swap_positions, swap_payloads], ids=["versions", "positions", "payloads"])
def test_two_swapped_events_are_found(swap):
    log = yanhe_chili().log
    first, second = recorded_fill(log, "L1", "O1"), recorded_fill(log, "L1", "C1")
    swap(log, first, second)
    [finding] = check_hash_chains(log)
    assert (finding.check, finding.stream_id) == ("hash_chain", "market-chili")
    assert finding.stream_version in (first.stream_version, second.stream_version)


def test_events_moved_in_the_global_order_are_named_by_position():
    log = yanhe_chili().log
    first, second = recorded_fill(log, "L1", "O1"), recorded_fill(log, "L1", "C1")
    swap_positions(log, first, second)
    [finding] = check_hash_chains(log)
    assert finding.event_id == second.event_id and finding.global_position == first.global_position
    assert "events were moved" in finding.message


# ================================================================ unique events


def test_an_event_id_used_twice_is_a_duplicate_event():
    log = yanhe_chili().log
    harvest = next(r for r in log.by_schema["cooperative"] if r.event_type == "HarvestRecorded")
    payment = log.by_schema["settlement"][0]
    replace(log, payment, event_id=harvest.event_id)
    reseal(log)
    [finding] = check_unique_event_ids(log)
    assert (finding.check, finding.schema, finding.global_position) == ("duplicate_event", "settlement", payment.global_position)
    assert harvest.place in finding.message


# ================================================================ re-execution


def test_a_forged_fill_with_a_recomputed_chain_is_found_by_re_execution():
    log = yanhe_chili().log
    offer = next(r for r in log.by_schema["matching"] if r.event_type == "OfferOpened")
    genuine = recorded_fill(log, "L2", "C1").payload
    forged_id = insert_after(
        log,
        offer,
        "FillMade",
        {**genuine, "fill_id": "forged", "quantity": "50", "revenue_fen": 40_000, "household_income_fen": {"h3": 40_000}},
    )
    assert check_hash_chains(log) == []
    [finding] = re_execute(log).findings
    assert (finding.check, finding.event_id) == ("re_execution", forged_id)
    assert finding.message.startswith("extra event: re-execution of journal entry 6 decided no FillMade")
    per_mu = [f for f in of("invariant", check_invariants(log, re_execute(log))) if "per-mu room" in f.message]
    assert [f.event_id for f in per_mu] == [forged_id]


def test_a_changed_fill_price_is_found_by_re_execution_naming_the_field_and_by_the_invariants():
    log = yanhe_chili().log
    fill = recorded_fill(log, "L1", "C1")
    edit_payload(log, fill, unit_price_fen=950)
    reseal(log)
    assert check_hash_chains(log) == []
    reexecution = re_execute(log)
    assert [(f.event_id, f.message) for f in reexecution.findings] == [
        (fill.event_id, "unit_price_fen: recorded 950, re-executed 900")
    ]
    invariants = check_invariants(log, reexecution)
    assert {f.event_id for f in invariants} == {fill.event_id}
    assert any(
        m.startswith("commitment fill priced 950 fen (market); the rule gives 900 fen (market)") for m in messages(invariants)
    )
    assert any(m.startswith("revenue_fen 810000, but 900 x 950 fen") for m in messages(invariants))


def test_a_nested_household_share_difference_is_named_by_its_path():
    log = yanhe_chili().log
    fill = recorded_fill(log, "L1", "O1")
    edit_payload(log, fill, household_income_fen={"h1": 175_001, "h2": 124_999})
    reseal(log)
    assert messages(re_execute(log).findings) == [
        "household_income_fen.h1: recorded 175001, re-executed 175000",
        "household_income_fen.h2: recorded 124999, re-executed 125000",
    ]
    assert messages(check_invariants(log, re_execute(log))) == [
        "household shares h1: recorded 175001, split gives 175000, h2: recorded 124999, split gives 125000 "
        "are not the largest-remainder split of 300000 fen"
    ]


def test_a_journal_number_out_of_sequence_is_found():
    log = yanhe_chili().log
    entry = journal_entry_of(log, 7)
    edit_payload(log, entry, journal_seq=8)
    reseal(log)
    found = messages(re_execute(log).findings)
    assert "journal_seq 8 where 7 was due: an input is missing, repeated or out of place" in found


def test_a_journal_entry_the_matcher_cannot_read_is_found_and_its_recorded_outcomes_are_extra():
    log = yanhe_chili().log
    entry = journal_entry_of(log, 7)
    edit_payload(log, entry, fact={**entry.payload["fact"], "min_grade": "Z"})  # no such grade: the matcher cannot read it
    reseal(log)
    findings = re_execute(log).findings
    assert findings[0].event_id == entry.event_id and "cannot be re-executed" in findings[0].message
    assert [f.message.split(":")[0] for f in findings[1:]] == ["extra event", "extra event"]


# ================================================================ invariants


def forge_fill(log: AuditLog, lot_id: str, outlet_id: str, quantity: str, unit_price_fen: int, shares: dict[str, int]) -> Record:
    fill = recorded_fill(log, lot_id, outlet_id)
    revenue = int((D(quantity) * unit_price_fen).to_integral_value())
    forged = edit_payload(
        log, fill, quantity=quantity, unit_price_fen=unit_price_fen, revenue_fen=revenue, household_income_fen=shares
    )
    reseal(log)
    return find(log, forged.event_id)


def test_an_overfilled_lot_is_an_invariant_violation():
    log = yanhe_chili().log
    forged = forge_fill(log, "L1", "C1", "1000", 900, {"h1": 525_000, "h2": 375_000})
    findings = check_invariants(log, re_execute(log))
    assert finding_for(findings, forged) == ["lot L1 overfilled: its fills add up to 1300, more than its quantity 1200"]
    assert any(f.check == "re_execution" and f.message.startswith("quantity:") for f in re_execute(log).findings)


def test_an_overfilled_order_is_an_invariant_violation():
    log = yanhe_chili().log
    forged = forge_fill(log, "L2", "O2", "250", 700, {"h3": 175_000})
    assert finding_for(check_invariants(log, re_execute(log)), forged) == [
        "order O2 overfilled: its fills add up to 250, more than its quantity 200"
    ]


def test_a_cooperative_selling_beyond_its_per_mu_room_is_an_invariant_violation():
    log = yanhe_chili().log
    forged = forge_fill(log, "L2", "C1", "150", 800, {"h3": 120_000})
    assert finding_for(check_invariants(log, re_execute(log)), forged) == [
        "cooperative co1 sold 1050 under commitment C1, more than its per-mu room 1000 (10 mu planted before this fill x 100 per mu)"
    ]


def test_a_commitment_filled_over_its_cap_is_an_invariant_violation():
    log = yanhe_chili().log
    entry = journal_entry_of(log, 3)
    edit_payload(log, entry, fact={**entry.payload["fact"], "cap_quantity": "950"})
    reseal(log)
    second = recorded_fill(log, "L2", "C1")
    assert finding_for(check_invariants(log, re_execute(log)), second) == [
        "commitment C1 over its cap: its fills add up to 1000, more than 950"
    ]


def test_an_order_fill_not_at_its_limit_price_is_an_invariant_violation():
    log = yanhe_chili().log
    forged = forge_fill(log, "L2", "O2", "200", 650, {"h3": 130_000})
    assert finding_for(check_invariants(log, re_execute(log)), forged) == [
        "order fill priced 650 fen (order_limit); the rule gives its limit price 700 fen (order_limit)"
    ]


def test_a_payment_split_that_does_not_add_up_is_an_invariant_violation():
    log = yanhe_chili().log
    payment = log.by_schema["settlement"][0]
    edit_payload(log, payment, household_income_fen={"h1": 175_000, "h2": 125_001})
    reseal(log)
    [finding] = check_invariants(log, re_execute(log))
    assert (finding.check, finding.event_id) == ("invariant", payment.event_id)
    assert finding.message == "household shares add up to 300001 fen, not the amount paid 300000 fen"


def test_a_payment_split_not_by_contribution_is_an_invariant_violation():
    log = yanhe_chili().log
    payment = log.by_schema["settlement"][0]
    edit_payload(log, payment, household_income_fen={"h1": 150_000, "h2": 150_000})
    reseal(log)
    assert messages(check_invariants(log, re_execute(log))) == [
        "household shares h1: recorded 150000, split gives 175000, h2: recorded 150000, split gives 125000 "
        "are not the largest-remainder split of 300000 fen"
    ]


def test_payments_beyond_the_fills_revenue_are_an_invariant_violation():
    services = yanhe_chili()
    extra = PaymentMade(
        lot_id="L1",
        outlet_id="O1",
        buyer_id="buyer-O1",
        product="chili",
        cooperative_id="co1",
        amount_fen=7,
        household_income_fen={"h1": 4, "h2": 3},
    )
    [forged] = services.append("settlement", "settlement-L1-O1", [(extra, None)], START, correlation_id="forger")
    assert messages(check_invariants(services.log, re_execute(services.log))) == [
        "payments for lot L1 to O1 add up to 300007 fen, more than the fill's revenue 300000 fen"
    ]
    assert check_invariants(services.log, re_execute(services.log))[0].event_id == forged.event_id


def test_a_payment_for_a_fill_never_made_is_an_invariant_violation():
    services = yanhe_chili()
    ghost = PaymentMade(
        lot_id="L2",
        outlet_id="O1",
        buyer_id="buyer-O1",
        product="chili",
        cooperative_id="co1",
        amount_fen=800,
        household_income_fen={"h3": 800},
    )
    services.append("settlement", "settlement-L2-O1", [(ghost, None)], START, correlation_id="forger")
    assert messages(check_invariants(services.log, re_execute(services.log))) == [
        "PaymentMade for lot L2 to outlet O1, for which no fill is recorded"
    ]


def test_deliveries_beyond_the_fills_quantity_are_an_invariant_violation():
    services = yanhe_chili()
    for quantity in ("250", "60"):
        delivered = DeliveryConfirmed(lot_id="L1", outlet_id="O1", buyer_id="buyer-O1", product="chili", quantity=quantity)
        [last] = services.append("settlement", "settlement-L1-O1", [(delivered, None)], START, correlation_id="desk")
    [finding] = check_invariants(services.log, re_execute(services.log))
    assert (finding.event_id, finding.message) == (
        last.event_id,
        "deliveries for lot L1 to O1 add up to 310, more than the fill's 300",
    )


def test_a_fill_to_a_cancelled_order_is_an_invariant_violation():
    services = yanhe_chili()
    services.order("O3", "100", 600, min_grade="A")  # no grade A lot is resting: nothing fills
    services.cancel("O3")
    log = services.log
    cancellation = journal_entry_of(log, 9)
    genuine = recorded_fill(log, "L2", "O2").payload
    forged_id = insert_after(
        log,
        cancellation,
        "FillMade",
        {
            **genuine,
            "outlet_id": "O3",
            "buyer_id": "buyer-O3",
            "quantity": "50",
            "unit_price_fen": 600,
            "revenue_fen": 30_000,
            "household_income_fen": {"h3": 30_000},
        },
    )
    assert [f.event_id for f in re_execute(log).findings] == [forged_id]
    assert finding_for(check_invariants(log, re_execute(log)), find(log, forged_id)) == [
        "fill to order O3 after it was cancelled"
    ]


def test_a_malformed_fill_payload_is_a_finding_not_a_crash():
    log = yanhe_chili().log
    fill = recorded_fill(log, "L1", "O1")
    edit_payload(log, fill, quantity="a lot")
    reseal(log)
    [message] = finding_for(check_invariants(log, re_execute(log)), fill)
    assert message.startswith("FillMade payload cannot be checked: InvalidOperation")


def finding_for(findings: list[Finding], record: Record) -> list[str]:
    return [f.message for f in findings if f.event_id == record.event_id]


# ================================================================ the market as of a moment


def test_the_market_as_of_a_middle_position_shows_the_offers_and_outlets_of_that_moment():
    log = yanhe_chili().log
    opened = next(r for r in log.by_schema["matching"] if r.event_type == "OfferOpened")  # end of L2's transaction
    chili = market_as_of(log, opened.global_position).products["chili"]
    assert chili.journal_seq == 6
    assert chili.resting_lots == (RestingOffer("L2", D("700")),)
    assert chili.open_outlets == (OpenOutletState("commitment", "C1", D("500")),)
    assert [(f.payload["lot_id"], f.payload["outlet_id"]) for f in chili.fills] == [("L1", "O1"), ("L1", "C1"), ("L2", "C1")]


def test_the_market_as_of_the_start_of_an_order_shows_it_open_and_the_end_shows_it_gone():
    log = yanhe_chili().log
    order = journal_entry_of(log, 4)
    chili = market_as_of(log, order.global_position).products["chili"]
    assert chili.resting_lots == ()
    assert chili.open_outlets == (OpenOutletState("commitment", "C1", D("1500")), OpenOutletState("order", "O1", D("300")))
    assert chili.fills == ()
    end = market_as_of(log, log.by_schema["matching"][-1].global_position).products["chili"]
    assert end.resting_lots == (RestingOffer("L2", D("500")),)
    assert end.open_outlets == (OpenOutletState("commitment", "C1", D("500")),)
    assert len(end.fills) == 4


def test_before_the_first_journal_entry_no_market_is_known():
    assert market_as_of(yanhe_chili().log, 0).products == {}


# ================================================================ the state's fingerprint


def test_the_state_hash_is_the_same_on_two_replays_and_changes_with_the_journal():
    log = yanhe_chili().log
    first, again = state_hash(re_execute(log)), state_hash(re_execute(log))
    assert first == again == state_hash(re_execute(yanhe_chili().log))
    assert len(first) == 64
    entry = journal_entry_of(log, 6)
    edit_payload(
        log,
        entry,
        fact={
            **entry.payload["fact"],
            "quantity": "900",
            "contributions": [{"household_id": "h3", "quantity": "900", "registered_poor": True}],
        },
    )
    reseal(log)
    assert state_hash(re_execute(log)) != first


def test_the_state_hash_ignores_forged_records_because_it_is_the_re_executed_state():
    log = yanhe_chili().log
    before = state_hash(re_execute(log))
    edit_payload(log, recorded_fill(log, "L1", "C1"), unit_price_fen=950)
    reseal(log)
    assert state_hash(re_execute(log)) == before
