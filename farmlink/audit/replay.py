"""Re-execution: the auditor runs the matcher again over the recorded input journal and must find,
field by field, exactly the decisions the live matching service recorded.

The live service (`services/matching/app.py`) appends, per product, an `InputJournaled` entry and
then the events it made of the matcher's outcomes (`matcher.outcomes.outcome_record`, each as its
contract model), in one transaction. Here the same pure path runs again: `fact_from` -> `Book.process`
-> `outcome_record`, so any forged, edited, missing or extra decision shows up as a difference. Pure: no I/O.
The decisions are first made as plain values (no pydantic model, no UUID object); wherever one differs
from the log, and on a sample where they agree, it is made again through its contract model, as the
service appends it, and that decides (`_ProductReplay._compare_payload`).
"""

from __future__ import annotations

from collections.abc import Container, Iterable
from dataclasses import dataclass, field
from typing import Any, Protocol

from contracts.registry import LATEST_VERSION, MODELS_BY_TYPE

from farmlink.audit.compare import FILL_MADE as FILL_MADE, _same, describe, differences
from farmlink.audit.model import AuditLog, Finding, Record, finding_at
from farmlink.audit.quick import same_json
from farmlink.audit.state import StateLines as StateLines, fill_line_of as fill_line_of, state_hash as state_hash
from matcher.book import Book
from matcher.facts import Fact
from matcher import outcomes as mapping
from matcher.journal import fact_from
from matcher.outcomes import derived_text, outcome_record
from matcher.versions import recorded_rules_version

MATCHING = "matching"
JOURNAL_ENTRY = "InputJournaled"
MARKET_STREAM_PREFIX = "market-"
CHECK = "re_execution"

MAX_FINDINGS_PER_STREAM = 1000
"""After this many re-execution findings in one product's stream the rest are only counted:
one early deleted input can make every later decision differ, and a million findings help no one."""


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
    outcome: Any = None
    """The matcher's outcome it was made from (matcher.outcomes.outcome_record), to make it again the service's way."""


CROSS_CHECK_EVERY = 500
"""Of the decisions made the quick way that agree with the log, every this-many-th (and each product's
first) is made again through its contract model, as the service appends it, and must be identical: this
keeps a model that changes what it is given (a default, a normalised value) from going unseen."""


class MappingDrift(RuntimeError):
    """A quick decision departs from its contract model's: a bug in the audit or the mapping, not a finding."""


def exact_decision(outcome: Any, index: int) -> Decision:
    """A decision made the matching service's way (`services.matching.outcomes.outcome_event`): the outcome's
    record (`matcher.outcomes`) through its contract model, as it is appended."""
    event_type, event_id, payload = mapping.outcome_record(outcome, index)  # the module's, whatever the quick path uses
    model = MODELS_BY_TYPE[(event_type, LATEST_VERSION[event_type])].model_validate(payload)
    return Decision(event_type, event_id, model.model_dump(mode="json"), outcome)


def quick_decisions(outcomes: list[Any]) -> list[Decision]:
    """The events the live service records for an entry's outcomes, made as plain values (`matcher.outcomes`)."""
    return [Decision(*outcome_record(outcome, index), outcome) for index, outcome in enumerate(outcomes)]


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
        self.agreed = 0

    def run(self, records: Iterable[Record]) -> None:
        self.feed(records)
        self.close()

    def feed(self, records: Iterable[Record]) -> None:
        """The next records of the product's stream (in stream order): a stream can be fed a batch at a time."""
        for record in records:
            if record.event_type == JOURNAL_ENTRY:
                self._close_entry()
                self._open_entry(record)
            else:
                self._check_recorded(record)

    def close(self) -> None:
        """The stream is over: the last entry's decisions must all have been recorded."""
        self._close_entry()
        self.entry = None

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
        for index, decision in enumerate(quick_decisions(outcomes)):
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
        expected_id = derived_text("journal", self.product, seq)
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
        self._compare_payload(record, index, decision)
        if record.occurred_at != self.entry.occurred_at:
            self.findings.add(
                record,
                f"occurred_at: recorded {record.occurred_at.isoformat()}, its input's is {self.entry.occurred_at.isoformat()}",
            )

    def _compare_payload(self, record: Record, index: int, decision: Decision) -> None:
        """The recorded payload against the quick decision; where they differ (and on a sample where they
        agree) the service's own mapping decides."""
        assert self.entry is not None
        if same_json(record.payload, decision.payload):
            self.agreed += 1
            if self.agreed % CROSS_CHECK_EVERY != 1:
                return
            exact = exact_decision(decision.outcome, index)
            if (exact.event_type, exact.event_id) != (decision.event_type, decision.event_id) or not _same(
                exact.payload, decision.payload
            ):
                raise MappingDrift(f"quick {decision!r} is not its contract model's {exact!r}")
            return
        expected = exact_decision(decision.outcome, index).payload
        if not _same(record.payload, expected):
            for name, recorded, value in differences(record.payload, expected):
                self.findings.add(record, f"{name}: recorded {recorded!r}, re-executed {value!r}")


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
