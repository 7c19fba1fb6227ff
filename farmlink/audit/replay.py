"""Re-execution: the auditor runs the matcher again over the recorded input journal and must find,
field by field, exactly the decisions the live matching service recorded.

The live service (`services/matching/app.py`) appends, per product, an `InputJournaled` entry and
then the events `services.matching.outcomes.outcome_event` made of the matcher's outcomes, in one
transaction. Here the same pure path runs again: `fact_from` -> `Book.process` -> `outcome_event`,
so any forged, edited, missing or extra decision shows up as a difference. Pure: no I/O.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Container, Iterable, Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Protocol

import orjson

from farmlink.audit.model import AuditLog, Finding, Record, finding_at
from matcher.book import Book
from matcher.facts import Fact
from matcher.journal import fact_from
from matcher.output import quantity_text
from matcher.versions import recorded_rules_version
from services.matching.outcomes import derived_id, outcome_event

MATCHING = "matching"
JOURNAL_ENTRY = "InputJournaled"
FILL_MADE = "FillMade"
MARKET_STREAM_PREFIX = "market-"
CHECK = "re_execution"

MAX_FINDINGS_PER_STREAM = 1000
"""After this many re-execution findings in one product's stream the rest are only counted:
one early deleted input can make every later decision differ, and a million findings help no one."""

_ABSENT = "<absent>"


# ---------------------------------------------------------------- reading the log


def _stream_order(record: Record) -> tuple[int, int]:
    return (record.stream_version, record.global_position)


def streams_of(records: Iterable[Record]) -> dict[str, list[Record]]:
    """Each stream's records in the order the stream tells them (version, then global position)."""
    streams: dict[str, list[Record]] = {}
    for record in records:
        streams.setdefault(record.stream_id, []).append(record)
    for stream in streams.values():
        stream.sort(key=_stream_order)  # already sorted in an honest log: linear time
    return streams


def market_streams(log: AuditLog) -> dict[str, list[Record]]:
    """Each product's matching stream (`market-<product>`) in stream order, keyed by product, sorted by product."""
    streams = streams_of(log.by_schema.get(MATCHING, ()))
    return {
        stream_id.removeprefix(MARKET_STREAM_PREFIX): streams[stream_id]
        for stream_id in sorted(streams)
        if stream_id.startswith(MARKET_STREAM_PREFIX)
    }


def journal_fact(entry: Record) -> Fact:
    """The matcher fact a journal entry stands for, exactly as the live service read it.

    Raises KeyError, TypeError or ValueError (including decimal errors) for an entry the matcher could not have read.
    """
    payload = entry.payload
    return fact_from(payload["source_event_type"], payload["fact"])


UNREADABLE = (KeyError, TypeError, ValueError, ArithmeticError)
"""What reading a forged or damaged journal entry may raise."""


# ---------------------------------------------------------------- the result


@dataclass(frozen=True, slots=True)
class Decision:
    """One event the matcher decides for an input, as the live service would record it."""

    event_type: str
    event_id: str
    payload: dict[str, Any]


@dataclass
class ReExecution:
    """What re-executing every product's journal gave, and where it disagreed with the log."""

    findings: list[Finding]
    fills: list[dict[str, Any]]
    """Re-executed FillMade payloads in the order the market made them (by their journal entry's global position)."""
    books: dict[str, Book]
    """Each product's book after its whole journal: the market's final state."""
    streams: dict[str, list[Record]]
    """Each product's matching stream records in stream order (shared with the invariant checks)."""
    input_count: int = 0
    fill_count: int = 0
    fill_positions: list[tuple[int, int]] = field(default_factory=list)
    """(journal entry's global position, outcome index) of each fill, in the order of `fills`."""
    lines: StateLines | None = None
    """The state hash's lines when they were computed apart (by worker processes); else made from fills and books."""


def decisions_for(outcomes: list[Any], entry: Record) -> list[Decision]:
    """The events the live service records for a journal entry's outcomes: same mapping, same ids."""
    decisions = []
    for index, outcome in enumerate(outcomes):
        event = outcome_event(outcome, index, entry.occurred_at)
        model = event.payload
        decisions.append(Decision(model.event_type, str(event.event_id), model.model_dump(mode="json")))  # type: ignore[attr-defined]
    return decisions


# ---------------------------------------------------------------- comparing


def _equal(recorded: Any, expected: Any) -> bool:
    """JSON equality that keeps types apart (true is not 1, 1.0 is not 1)."""
    if type(recorded) is not type(expected):
        return False
    if isinstance(expected, dict):
        if recorded.keys() != expected.keys():
            return False
        for key, value in expected.items():
            if not _equal(recorded[key], value):
                return False
        return True
    if isinstance(expected, list):
        return len(recorded) == len(expected) and all(map(_equal, recorded, expected))
    return recorded == expected


def _same(recorded: Any, expected: Any) -> bool:
    """`_equal`, quicker for the usual case: equal canonical JSON bytes mean equal values of equal types
    (true, 1 and 1.0 are written differently); anything else is decided by `_equal` itself."""
    try:
        if orjson.dumps(recorded, option=orjson.OPT_SORT_KEYS) == orjson.dumps(expected, option=orjson.OPT_SORT_KEYS):
            return True
    except (TypeError, orjson.JSONEncodeError):
        pass
    return _equal(recorded, expected)


def differences(recorded: dict[str, Any], expected: dict[str, Any], prefix: str = "") -> Iterator[tuple[str, Any, Any]]:
    """(field, recorded value, re-executed value) for every field that differs; nested dicts by dotted path."""
    for key, value in expected.items():
        path = f"{prefix}{key}"
        if key not in recorded:
            yield path, _ABSENT, value
        elif isinstance(value, dict) and isinstance(recorded[key], dict):
            yield from differences(recorded[key], value, f"{path}.")
        elif not _equal(recorded[key], value):
            yield path, recorded[key], value
    for key in recorded.keys() - expected.keys():
        yield f"{prefix}{key}", recorded[key], _ABSENT


def describe(event_type: str, payload: dict[str, Any]) -> str:
    """A short business description of a matching event: which lot went where, how much."""
    if event_type == FILL_MADE:
        return (
            f"fill of {payload.get('quantity')} of lot {payload.get('lot_id')} to {payload.get('outlet_kind')} "
            f"{payload.get('outlet_id')} at {payload.get('unit_price_fen')} fen"
        )
    return f"{event_type} of lot {payload.get('lot_id')}"


class StateProbe(Protocol):
    """Looks at a product's re-executed book right after chosen journal entries (the snapshot check)."""

    def journal_seqs(self, product: str) -> Container[int]:
        """After which journal entries of the product to look."""
        ...

    def observe(self, product: str, entry: Record, stream_version: int, book: Book) -> None:
        """The book after `entry` and its decisions, which end at `stream_version` of the product's stream."""
        ...


# ---------------------------------------------------------------- one product


class _Findings:
    """A stream's findings, listed up to MAX_FINDINGS_PER_STREAM and counted beyond."""

    def __init__(self, product: str) -> None:
        self.product = product
        self.listed: list[Finding] = []
        self.unlisted = 0

    def add(self, record: Record, message: str) -> None:
        if len(self.listed) < MAX_FINDINGS_PER_STREAM:
            self.listed.append(finding_at(CHECK, record, message))
        else:
            self.unlisted += 1

    def all(self) -> list[Finding]:
        if not self.unlisted:
            return self.listed
        stream_id = f"{MARKET_STREAM_PREFIX}{self.product}"
        summary = Finding(
            check=CHECK,
            where=f"{MATCHING}/{stream_id}",
            message=f"{self.unlisted} more re-execution findings in this stream are not listed",
            schema=MATCHING,
            stream_id=stream_id,
        )
        return [*self.listed, summary]


class _ProductReplay:
    """Re-executes one product's journal and compares each entry's decisions with what follows it in the log."""

    def __init__(self, product: str, probe: StateProbe | None = None, book: Book | None = None) -> None:
        self.product = product
        self.book = Book(product) if book is None else book  # a book from a checkpoint resumes after its journal_seq
        self.probe = probe
        self.probe_seqs: Container[int] = () if probe is None else probe.journal_seqs(product)
        self.findings = _Findings(product)
        self.next_seq = self.book.journal_seq + 1
        self.inputs = 0
        self.fills: list[tuple[int, int, dict[str, Any]]] = []  # (entry position, outcome index, payload)
        self.entry: Record | None = None
        self.decided: dict[str, tuple[int, Decision]] = {}
        self.seen: set[str] = set()
        self.last_index = -1

    def run(self, records: list[Record]) -> None:
        for record in records:
            if record.event_type == JOURNAL_ENTRY:
                self._close_entry()
                self._open_entry(record)
            else:
                self._check_recorded(record)
        self._close_entry()

    # -- journal entries

    def _open_entry(self, entry: Record) -> None:
        """Take the next input: check its place in the journal, run the matcher, remember what it decides."""
        self.entry, self.decided, self.seen, self.last_index = entry, {}, set(), -1
        if not self._entry_in_place(entry):
            return
        try:
            outcomes = self.book.process(journal_fact(entry))
        except UNREADABLE as error:
            self.findings.add(entry, f"journal entry cannot be re-executed: the matcher could not read its fact ({error!r})")
            return
        self.inputs += 1
        if (named := recorded_rules_version(entry.payload)) != self.book.rules_version:  # matcher/versions.py
            self.findings.add(
                entry,
                f"rules_version: recorded {named!r}, re-executed under {self.book.rules_version}, the version its journal adopted",
            )
        for index, decision in enumerate(decisions_for(outcomes, entry)):
            self.decided[decision.event_id] = (index, decision)
            if decision.event_type == FILL_MADE:
                self.fills.append((entry.global_position, index, decision.payload))
        if self.probe is not None and self.book.journal_seq in self.probe_seqs:
            self.probe.observe(self.product, entry, entry.stream_version + len(outcomes), self.book)

    def _entry_in_place(self, entry: Record) -> bool:
        """The entry names this product and the next journal number (1, 2, 3, ... without gaps) and its derived id."""
        payload = entry.payload
        seq = payload.get("journal_seq") if isinstance(payload, dict) else None
        if not isinstance(seq, int) or isinstance(seq, bool):
            self.findings.add(entry, f"journal entry without a journal_seq number: {seq!r}")
            return False
        if seq != self.next_seq:
            self.findings.add(
                entry,
                f"journal_seq {seq} where {self.next_seq} was due: an input is missing, repeated or out of place",
            )
        self.next_seq = seq + 1
        if payload.get("product") != self.product:
            self.findings.add(entry, f"journal entry of product {payload.get('product')!r} in the {self.product} journal")
        expected_id = str(derived_id("journal", self.product, seq))
        if entry.event_id != expected_id:
            self.findings.add(entry, f"event_id: recorded {entry.event_id}, journal entry {seq} is named {expected_id}")
        return True

    def _close_entry(self) -> None:
        """Every decision re-execution made for the entry must be in the log."""
        if self.entry is None:
            return
        seq = self.entry.payload.get("journal_seq")
        for event_id, (index, decision) in self.decided.items():
            if event_id not in self.seen:
                self.findings.add(
                    self.entry,
                    f"missing decision: re-execution of journal entry {seq} decided {decision.event_type} {event_id} "
                    f"({describe(decision.event_type, decision.payload)}) as outcome {index + 1}, the log does not record it",
                )

    # -- recorded decisions

    def _check_recorded(self, record: Record) -> None:
        """A recorded matcher event must be one re-execution decided for the entry before it, equal in every field."""
        if self.entry is None:
            self.findings.add(
                record, f"{record.event_type} recorded before any journal entry: the matcher decides only on an input"
            )
            return
        hit = self.decided.get(record.event_id)
        if hit is None or record.event_id in self.seen:
            seq = self.entry.payload.get("journal_seq")
            self.findings.add(
                record,
                f"extra event: re-execution of journal entry {seq} decided no {record.event_type} {record.event_id} "
                f"({describe(record.event_type, record.payload)})",
            )
            return
        index, decision = hit
        self.seen.add(record.event_id)
        if index < self.last_index:
            self.findings.add(
                record, f"out of order: re-execution decided it as outcome {index + 1}, before one recorded earlier"
            )
        self.last_index = max(self.last_index, index)
        if record.event_type != decision.event_type:
            self.findings.add(record, f"event_type: recorded {record.event_type}, re-executed {decision.event_type}")
            return
        if not _same(record.payload, decision.payload):
            for name, recorded, expected in differences(record.payload, decision.payload):
                self.findings.add(record, f"{name}: recorded {recorded!r}, re-executed {expected!r}")
        if record.occurred_at != self.entry.occurred_at:
            self.findings.add(
                record,
                f"occurred_at: recorded {record.occurred_at.isoformat()}, its input's is {self.entry.occurred_at.isoformat()}",
            )


# ---------------------------------------------------------------- the whole market


def re_execute_products(
    streams: dict[str, list[Record]], probe: StateProbe | None = None, start: dict[str, Book] | None = None
) -> ReExecution:
    """Re-execute some products' streams (keyed by product): their findings, fills and final books.
    Products are independent, so each share of them can run in its own process. With `start` (a
    checkpoint's), a product resumes from its book there and its stream holds only what came after."""
    findings: list[Finding] = []
    fills: list[tuple[int, int, dict[str, Any]]] = []
    books: dict[str, Book] = {}
    inputs = 0
    for product, records in streams.items():
        replay = _ProductReplay(product, probe, (start or {}).get(product))
        replay.run(records)
        findings += replay.findings.all()
        fills += replay.fills
        books[product] = replay.book
        inputs += replay.inputs
    fills.sort(key=lambda item: (item[0], item[1]))
    payloads = [payload for _position, _index, payload in fills]
    return ReExecution(
        findings,
        payloads,
        books,
        streams,
        input_count=inputs,
        fill_count=len(payloads),
        fill_positions=[(position, index) for position, index, _payload in fills],
    )


def re_execute(log: AuditLog, probe: StateProbe | None = None) -> ReExecution:
    """Run the matcher again over every product's recorded journal and compare with every recorded decision
    (`probe`: shown each product's book after the journal entries it asks for)."""
    return re_execute_products(market_streams(log), probe)


# ---------------------------------------------------------------- the state's fingerprint


def fill_line_of(payload: dict[str, Any]) -> str:
    """A FillMade payload as the canonical fill line (`matcher.output.fill_line`): what auditors compare byte for byte."""
    record = {
        "lot_id": payload["lot_id"],
        "outlet_kind": payload["outlet_kind"],
        "outlet_id": payload["outlet_id"],
        "buyer_id": payload["buyer_id"],
        "quantity": quantity_text(Decimal(str(payload["quantity"]))),
        "unit_price_fen": payload["unit_price_fen"],
        "price_basis": payload["price_basis"],
        "revenue_fen": payload["revenue_fen"],
        "household_income_fen": dict(sorted(payload["household_income_fen"].items())),
    }
    return json.dumps(record, ensure_ascii=False, separators=(",", ":"))


def book_line(product: str, book: Book) -> str:
    """A product's resting lots and open outlets, sorted, as one canonical JSON line."""
    lots = sorted([lot.lot.lot_id, quantity_text(lot.quantity_left)] for lot in book.resting_lots())
    outlets = sorted(
        [
            outlet.outlet_kind,
            outlet.outlet.order_id if outlet.outlet_kind == "order" else outlet.outlet.commitment_id,  # type: ignore[union-attr]
            None if outlet.quantity_left is None else quantity_text(outlet.quantity_left),
        ]
        for outlet in book.open_outlets()
    )
    state = {"product": product, "journal_seq": book.journal_seq, "resting_lots": lots, "open_outlets": outlets}
    return json.dumps(state, ensure_ascii=False, separators=(",", ":"), sort_keys=True)


STATE_HASH_CONTEXT = b"farmlink-state-v2\n"


def chain_fill_lines(lines: Iterable[str], start: str = "") -> str:
    """The fills' running digest: sha256 (hex) of the previous digest, a newline and the fill line, fill
    after fill ("" before the first). It can be resumed from a checkpoint's digest."""
    digest = start
    for line in lines:
        digest = hashlib.sha256(f"{digest}\n{line}".encode("utf-8")).hexdigest()
    return digest


@dataclass
class StateLines:
    """What the state hash covers: each fill line with its place in the market's order, each product's
    book line; `start_digest`/`start_count`: the fills before a checkpoint, already chained."""

    fills: list[tuple[int, int, str]] = field(default_factory=list)
    books: dict[str, str] = field(default_factory=dict)
    start_digest: str = ""
    start_count: int = 0

    @classmethod
    def of(cls, reexecution: ReExecution) -> StateLines:
        positions = reexecution.fill_positions or [(0, index) for index in range(len(reexecution.fills))]
        return cls(
            [(*place, fill_line_of(payload)) for place, payload in zip(positions, reexecution.fills)],
            {product: book_line(product, book) for product, book in reexecution.books.items()},
        )

    def merge(self, other: StateLines) -> None:
        self.fills += other.fills
        self.books |= other.books

    def fills_digest(self) -> tuple[str, int]:
        """The running digest after every fill, and how many fills it covers."""
        ordered = sorted(self.fills, key=lambda item: (item[0], item[1]))
        return chain_fill_lines((line for _, _, line in ordered), self.start_digest), self.start_count + len(ordered)


def state_hash_of(fills_digest: str, fill_count: int, book_lines: dict[str, str]) -> str:
    """sha256 (hex) of the fills' running digest and count, then each product's book line, sorted by product."""
    digest = hashlib.sha256(STATE_HASH_CONTEXT)
    digest.update(f"{fills_digest}\n{fill_count}\n".encode("ascii"))
    for product in sorted(book_lines):
        digest.update(book_lines[product].encode("utf-8"))
        digest.update(b"\n")
    return digest.hexdigest()


def state_hash(reexecution: ReExecution) -> str:
    """sha256 (hex) of the re-executed market: every fill line in order (as a running digest, so an
    incremental audit resumes it from a checkpoint), then each product's book, sorted.

    Two audits of the same log agree on it, full or incremental; any change to what the journal decides changes it.
    """
    lines = reexecution.lines or StateLines.of(reexecution)
    return state_hash_of(*lines.fills_digest(), lines.books)
