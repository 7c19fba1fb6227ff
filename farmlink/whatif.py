"""`farmlink what-if`: the recorded journal replayed with changed commitment terms, beside what was.

The question a county asks before it renews a floor promise: had Yuping's floor for oil-tea fruit been
460 fen instead of 420, what would each household and each village have earned? The answer comes from
the log alone, through the same pure path the audit re-executes:

1. `Changes.parse` reads the terms (`--floor`, `--cap`, `--per-mu`, `--valid-to`, each KEY=VALUE);
2. `journals_with` resolves each KEY against the journal's `CommitmentMade` facts and puts the changed
   values into copies of those entries (the recorded log is never modified), after checking the
   changed commitment with the input model's own validation (`contracts.inputs.CommitmentOffer`);
3. `replay` re-executes every product's journal with the audit's entry point
   (`farmlink.audit.replay.re_execute_products`: `fact_from` -> `Book.process` -> `outcome_event`), so
   each entry is decided under the rules version its journal adopted at its recorded position;
4. `compare` sets the replayed fills beside the recorded `FillMade` events, per household (with its
   cooperative's village, township and county and its registered-poor flag, from `CooperativeRegistered`)
   and per village: fen earned as recorded and as replayed, the difference, and how many fills changed.

KEY is a product of the catalogue (every commitment of that product) or a commitment id (that
commitment alone). A name that is both is taken as the product; `commitment:ID` always means the
commitment. A commitment's own term wins over its product's, whatever their order on the command line.
`--cap KEY=none` and `--per-mu KEY=none` lift the limit (the fields are optional in the contract).

Everything but `load_log` is pure; nothing is ever written: the CLI reads as the auditor's read-only role
in read-only transactions and replays in memory. Money is integer fen throughout; rows are sorted by
county, township, village and household id.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import re
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from contracts.catalogue import PRODUCTS
from contracts.inputs import CommitmentOffer
from farmlink.audit.log import read_schema
from farmlink.audit.model import AuditLog, Record
from farmlink.audit.replay import FILL_MADE, JOURNAL_ENTRY, fill_line_of, market_streams, re_execute_products
from farmlink.audit.report_collect import read_households

FORMAT = "farmlink.what-if"
FORMAT_VERSION = 1
COMMITMENT_SOURCE = "CommitmentMade"
COMMITMENT_PREFIX = "commitment:"
NO_LIMIT = "none"
EXAMPLE = "farmlink what-if --floor oil_tea_fruit=460"

TERMS: dict[str, str] = {
    "--floor": "floor_price_fen",
    "--cap": "cap_quantity",
    "--per-mu": "max_quantity_per_mu",
    "--valid-to": "valid_to",
}
"""Each option and the CommitmentMade field it changes."""

_WHOLE_NUMBER = re.compile(r"[+-]?[0-9]+")


class ChangeError(ValueError):
    """A term that cannot be applied; the message names the option and the value as given (the CLI exits 2)."""


# ---------------------------------------------------------------- the terms


@dataclass(frozen=True)
class Term:
    """One changed commitment term as given on the command line, e.g. `--floor oil_tea_fruit=460`."""

    option: str
    given: str
    key: str
    value: Any
    """Parsed: int fen for --floor, None for `none` (no limit), else the text for the input model to read."""
    explicit_commitment: bool = False

    @property
    def field(self) -> str:
        return TERMS[self.option]

    @property
    def text(self) -> str:
        return f"{self.option} {self.given}"


def parse_term(option: str, given: str) -> Term:
    """`KEY=VALUE` for `option`; the value's own checks are the input model's, when the term is applied."""
    if option not in TERMS:
        raise ChangeError(f"{option}: not a commitment term; known: {', '.join(TERMS)}")
    key, sep, raw = given.rpartition("=")
    explicit = key.startswith(COMMITMENT_PREFIX)
    key = key.removeprefix(COMMITMENT_PREFIX)
    if not sep or not key or not raw:
        raise ChangeError(f"{option} {given}: expected KEY=VALUE, KEY a product or a commitment id (e.g. {EXAMPLE})")
    value: Any = raw
    if option == "--floor":
        if not _WHOLE_NUMBER.fullmatch(raw):
            raise ChangeError(f"{option} {given}: the floor is whole fen per unit, an integer (460 fen = 4.60 yuan)")
        value = int(raw)
    elif option in ("--cap", "--per-mu") and raw.lower() == NO_LIMIT:
        value = None
    return Term(option, given, key, value, explicit)


@dataclass(frozen=True)
class Changes:
    """The terms to change, in the order given; empty: the identity replay."""

    terms: tuple[Term, ...] = ()

    @classmethod
    def parse(
        cls, floor: Iterable[str] = (), cap: Iterable[str] = (), per_mu: Iterable[str] = (), valid_to: Iterable[str] = ()
    ) -> Changes:
        given = (("--floor", floor), ("--cap", cap), ("--per-mu", per_mu), ("--valid-to", valid_to))
        return cls(tuple(parse_term(option, text) for option, texts in given for text in texts))

    @property
    def empty(self) -> bool:
        return not self.terms


@dataclass(frozen=True)
class AppliedChange:
    """A commitment term as recorded and as replayed (JSON values: int fen, quantity or date text, None)."""

    commitment_id: str
    product: str
    term: str
    recorded: Any
    replayed: Any
    given: str


# ---------------------------------------------------------------- applying them to the journal


def _commitment_entries(journals: Mapping[str, Sequence[Record]]) -> dict[str, list[tuple[str, Record]]]:
    """Every commitment in the journals, by id, in journal order: (product, its journal entry)."""
    found: dict[str, list[tuple[str, Record]]] = {}
    for product, records in journals.items():
        for record in records:
            payload = record.payload
            if record.event_type != JOURNAL_ENTRY or payload.get("source_event_type") != COMMITMENT_SOURCE:
                continue
            fact = payload.get("fact")
            if isinstance(fact, dict) and isinstance(fact.get("commitment_id"), str):
                found.setdefault(fact["commitment_id"], []).append((product, record))
    return found


def _plan(changes: Changes, commitments: Mapping[str, str]) -> dict[str, dict[str, Term]]:
    """Which term applies to which commitment (commitment id -> field -> term); a commitment's own
    term wins over its product's. `commitments`: id -> product, in journal order."""
    product_wide: dict[tuple[str, str], Term] = {}
    own: dict[tuple[str, str], Term] = {}
    for term in changes.terms:
        if term.explicit_commitment or term.key not in PRODUCTS:
            if term.key not in commitments:
                raise ChangeError(
                    f"{term.text}: the log holds no commitment {term.key}"
                    if term.explicit_commitment
                    else f"{term.text}: {term.key} is neither a product ({', '.join(PRODUCTS)}) nor a commitment id in the log"
                )
            chosen = own
        else:
            if term.key not in commitments.values():
                raise ChangeError(f"{term.text}: the log holds no commitment for {term.key}")
            chosen = product_wide
        if (term.key, term.field) in chosen:
            raise ChangeError(
                f"{term.text}: {term.option} for {term.key} is given twice (also {chosen[(term.key, term.field)].given})"
            )
        chosen[(term.key, term.field)] = term
    plan: dict[str, dict[str, Term]] = {}
    for commitment_id, product in commitments.items():
        for field in TERMS.values():
            chosen_term = own.get((commitment_id, field)) or product_wide.get((product, field))
            if chosen_term is not None:
                plan.setdefault(commitment_id, {})[field] = chosen_term
    return plan


def _explain(error: ValidationError, terms: Mapping[str, Term], commitment_id: str, fact: Mapping[str, Any]) -> str:
    """The input model's first complaint about a changed commitment, naming the option and value that caused it."""
    first = error.errors()[0]
    location = ".".join(str(part) for part in first["loc"])
    message = str(first["msg"]).removeprefix("Value error, ")
    blamed = terms.get(location) or terms.get("valid_to") or next(iter(terms.values()))
    where = f"{location}: " if location else ""
    window = "" if location else f"; it runs from {fact.get('valid_from')}"
    return f"{blamed.text}: {where}{message} (commitment {commitment_id}{window})"


def _changed_values(commitment_id: str, fact: Mapping[str, Any], terms: Mapping[str, Term]) -> dict[str, Any]:
    """The changed fields as the journal writes them, once the changed commitment passes the input model."""
    candidate = {name: fact[name] for name in CommitmentOffer.model_fields if name in fact}
    candidate |= {field: term.value for field, term in terms.items()}
    try:
        offer = CommitmentOffer.model_validate(candidate)
    except ValidationError as error:
        raise ChangeError(_explain(error, terms, commitment_id, fact)) from None
    dumped = offer.model_dump(mode="json")
    return {field: dumped[field] for field in terms}


def journals_with(
    streams: Mapping[str, Sequence[Record]], changes: Changes
) -> tuple[dict[str, list[Record]], list[AppliedChange]]:
    """Each product's journal entries (its decisions left out), the targeted commitments' entries replaced by
    copies with the changed terms; and what was changed. The records given are not modified.

    Raises ChangeError for a key that is no product with commitments and no commitment in the log, a term given
    twice, or a changed commitment the input model refuses."""
    found = _commitment_entries(streams)
    plan = _plan(changes, {commitment_id: entries[0][0] for commitment_id, entries in found.items()})
    replaced: dict[int, Record] = {}
    applied: list[AppliedChange] = []
    for commitment_id, terms in plan.items():
        for product, entry in found[commitment_id]:
            fact = entry.payload["fact"]
            values = _changed_values(commitment_id, fact, terms)
            replaced[id(entry)] = dataclasses.replace(entry, payload={**entry.payload, "fact": {**fact, **values}})
            applied += [
                AppliedChange(commitment_id, product, field, fact.get(field), values[field], terms[field].text) for field in terms
            ]
    journals = {
        product: [replaced.get(id(record), record) for record in records if record.event_type == JOURNAL_ENTRY]
        for product, records in streams.items()
    }
    return journals, applied


def replay(journals: Mapping[str, list[Record]]) -> list[dict[str, Any]]:
    """The FillMade payloads re-executing the journals gives, in the order the market makes them (the audit's
    own re-execution; its findings, every recorded decision 'missing' here, are not wanted)."""
    return re_execute_products(dict(journals)).fills


def recorded_fills(streams: Mapping[str, Sequence[Record]]) -> list[dict[str, Any]]:
    """The FillMade payloads the log records, product by product in stream order."""
    return [record.payload for records in streams.values() for record in records if record.event_type == FILL_MADE]


# ---------------------------------------------------------------- the comparison


@dataclass(frozen=True)
class HouseholdRow:
    county: str
    township: str
    village: str
    cooperative_id: str
    household_id: str
    registered_poor: bool
    recorded_fen: int
    replayed_fen: int
    fills_changed: int

    @property
    def difference_fen(self) -> int:
        return self.replayed_fen - self.recorded_fen


@dataclass(frozen=True)
class VillageRow:
    county: str
    township: str
    village: str
    households: int
    registered_poor: int
    recorded_fen: int
    replayed_fen: int
    fills_changed: int

    @property
    def difference_fen(self) -> int:
        return self.replayed_fen - self.recorded_fen


@dataclass(frozen=True)
class Totals:
    fills_recorded: int
    fills_replayed: int
    fills_changed: int
    households: int
    households_gaining: int
    households_losing: int
    recorded_fen: int
    replayed_fen: int
    registered_poor_with_income_recorded: int
    registered_poor_with_income_replayed: int

    @property
    def difference_fen(self) -> int:
        return self.replayed_fen - self.recorded_fen


@dataclass(frozen=True)
class WhatIf:
    """The answer: what was changed, and per household and village what would have been earned against what was."""

    changes: tuple[AppliedChange, ...]
    households: tuple[HouseholdRow, ...]
    villages: tuple[VillageRow, ...]
    totals: Totals

    @property
    def identical(self) -> bool:
        """The replay gives the recorded fills exactly (what an unchanged replay must give)."""
        return self.totals.fills_changed == 0 and all(h.difference_fen == 0 for h in self.households)


_FillKey = tuple[str, str, str, str, int]


def _keyed(fills: Iterable[Mapping[str, Any]]) -> dict[_FillKey, Mapping[str, Any]]:
    """Fills by product, lot, outlet and which fill of that lot and outlet it is (the first, the second...)."""
    seen: Counter[tuple[str, str, str, str]] = Counter()
    keyed: dict[_FillKey, Mapping[str, Any]] = {}
    for fill in fills:
        base = (str(fill["product"]), str(fill["lot_id"]), str(fill["outlet_kind"]), str(fill["outlet_id"]))
        keyed[(*base, seen[base])] = fill
        seen[base] += 1
    return keyed


def _incomes(fills: Iterable[Mapping[str, Any]], cooperative_of: dict[str, str]) -> dict[str, int]:
    fen: dict[str, int] = defaultdict(int)
    for fill in fills:
        for household, share in fill["household_income_fen"].items():
            fen[household] += int(share)
            cooperative_of.setdefault(household, str(fill.get("cooperative_id") or ""))
    return fen


@dataclass(frozen=True)
class _Place:
    county: str
    township: str
    village: str
    cooperative_id: str
    registered_poor: bool


def compare(recorded: Sequence[Mapping[str, Any]], replayed: Sequence[Mapping[str, Any]], places: Mapping[str, _Place]) -> WhatIf:
    """Recorded and replayed fills side by side, per household and village. A fill changed when it is in one and
    not the other, or its money differs (quantity, price, basis, revenue or any household's share)."""
    cooperative_of: dict[str, str] = {}
    before, after = _incomes(recorded, cooperative_of), _incomes(replayed, cooperative_of)
    was, now = _keyed(recorded), _keyed(replayed)
    changed_keys = [
        key
        for key in sorted(was.keys() | now.keys())
        if key not in was or key not in now or fill_line_of(dict(was[key])) != fill_line_of(dict(now[key]))
    ]
    fills_changed: dict[str, int] = defaultdict(int)
    for key in changed_keys:
        for household in set(was.get(key, {}).get("household_income_fen", {})) | set(
            now.get(key, {}).get("household_income_fen", {})
        ):
            fills_changed[household] += 1

    def place(household: str) -> _Place:
        return places.get(household) or _Place("", "", "", cooperative_of.get(household, ""), False)

    households = sorted(
        (
            HouseholdRow(
                p.county,
                p.township,
                p.village,
                p.cooperative_id,
                household,
                p.registered_poor,
                before.get(household, 0),
                after.get(household, 0),
                fills_changed.get(household, 0),
            )
            for household in before.keys() | after.keys()
            for p in (place(household),)
        ),
        key=lambda h: (h.county, h.township, h.village, h.household_id),
    )
    village_fills: dict[tuple[str, str, str], set[_FillKey]] = defaultdict(set)
    for key in changed_keys:
        for household in set(was.get(key, {}).get("household_income_fen", {})) | set(
            now.get(key, {}).get("household_income_fen", {})
        ):
            p = place(household)
            village_fills[(p.county, p.township, p.village)].add(key)
    grouped: dict[tuple[str, str, str], list[HouseholdRow]] = defaultdict(list)
    for row in households:
        grouped[(row.county, row.township, row.village)].append(row)
    villages = tuple(
        VillageRow(
            *where,
            len(rows),
            sum(r.registered_poor for r in rows),
            sum(r.recorded_fen for r in rows),
            sum(r.replayed_fen for r in rows),
            len(village_fills.get(where, ())),
        )
        for where, rows in sorted(grouped.items())
    )
    totals = Totals(
        fills_recorded=len(recorded),
        fills_replayed=len(replayed),
        fills_changed=len(changed_keys),
        households=len(households),
        households_gaining=sum(h.difference_fen > 0 for h in households),
        households_losing=sum(h.difference_fen < 0 for h in households),
        recorded_fen=sum(h.recorded_fen for h in households),
        replayed_fen=sum(h.replayed_fen for h in households),
        registered_poor_with_income_recorded=sum(h.registered_poor and h.recorded_fen > 0 for h in households),
        registered_poor_with_income_replayed=sum(h.registered_poor and h.replayed_fen > 0 for h in households),
    )
    return WhatIf((), tuple(households), villages, totals)


def places_of(log: AuditLog) -> dict[str, _Place]:
    """Each registered household's cooperative, village, township, county and registered-poor flag (the audit's reading)."""
    return {
        h.household_id: _Place(h.county, h.township, h.village, h.cooperative_id, h.registered_poor)
        for h in read_households(log)
        if h.cooperative_id
    }


def what_if(log: AuditLog, changes: Changes) -> WhatIf:
    """Replay the log's journals with the changed terms and compare with what the log records. Pure; raises ChangeError."""
    streams = market_streams(log)
    journals, applied = journals_with(streams, changes)
    result = compare(recorded_fills(streams), replay(journals), places_of(log))
    return dataclasses.replace(result, changes=tuple(applied))


async def load_log(dsn: str, prefix: str = "") -> AuditLog:
    """The matching schema's events, then the cooperative schema's (read after it, so every cooperative behind
    a fill is in), with the audit's reader: one read-only repeatable-read transaction each. Nothing else is read."""
    log = AuditLog(source="postgres")
    for schema in ("matching", "cooperative"):
        records = await read_schema(dsn, schema, prefix)
        if records is not None:
            log.by_schema[schema] = records
    return log


# ---------------------------------------------------------------- output

HOUSEHOLD_COLUMNS = (
    "county",
    "township",
    "village",
    "cooperative_id",
    "household_id",
    "registered_poor",
    "recorded_fen",
    "replayed_fen",
    "difference_fen",
    "fills_changed",
)
VILLAGE_COLUMNS = (
    "county",
    "township",
    "village",
    "households",
    "registered_poor",
    "recorded_fen",
    "replayed_fen",
    "difference_fen",
    "fills_changed",
)
CHANGE_COLUMNS = ("commitment_id", "product", "term", "recorded", "replayed", "given")
CSV_COLUMNS = (
    "level",
    "county",
    "township",
    "village",
    "cooperative_id",
    "household_id",
    "households",
    "registered_poor_households",
    "recorded_fen",
    "replayed_fen",
    "difference_fen",
    "fills_changed",
)


def _changed(row: HouseholdRow | VillageRow) -> bool:
    return row.difference_fen != 0 or row.fills_changed > 0


def _row(item: Any, columns: Sequence[str]) -> dict[str, Any]:
    return {column: getattr(item, column) for column in columns}


def household_rows(result: WhatIf, changed_only: bool = False) -> list[dict[str, Any]]:
    return [_row(h, HOUSEHOLD_COLUMNS) for h in result.households if not changed_only or _changed(h)]


def village_rows(result: WhatIf, changed_only: bool = False) -> list[dict[str, Any]]:
    return [_row(v, VILLAGE_COLUMNS) for v in result.villages if not changed_only or _changed(v)]


def totals_row(result: WhatIf) -> dict[str, Any]:
    return {**dataclasses.asdict(result.totals), "difference_fen": result.totals.difference_fen}


def change_rows(result: WhatIf) -> list[dict[str, Any]]:
    return [dataclasses.asdict(change) for change in result.changes]


def as_json(result: WhatIf, changed_only: bool = False) -> dict[str, Any]:
    """One object: format and version, the changed terms, totals, villages, households; `identical` for the
    identity check; `nothing_written` always true."""
    return {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "changes": change_rows(result),
        "identical": result.identical,
        "totals": totals_row(result),
        "villages": village_rows(result, changed_only),
        "households": household_rows(result, changed_only),
        "nothing_written": True,
    }


def as_jsonl(result: WhatIf, changed_only: bool = False) -> list[str]:
    """A JSON line per row, each with its `section` (change, village, household, totals), as `farmlink coverage --format jsonl`."""
    rows = (
        [{"section": "change", **row} for row in change_rows(result)]
        + [{"section": "village", **row} for row in village_rows(result, changed_only)]
        + [{"section": "household", **row} for row in household_rows(result, changed_only)]
        + [{"section": "totals", "identical": result.identical, **totals_row(result)}]
    )
    return [json.dumps(row, ensure_ascii=False, separators=(",", ":")) for row in rows]


def as_csv(result: WhatIf, changed_only: bool = False) -> str:
    """One table for spreadsheets: a row per household, then per village, then the total (`level`); counts of
    households and registered-poor households on every row (1 or 0 on a household's), money in fen."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for h in result.households:
        if not changed_only or _changed(h):
            writer.writerow(
                [
                    "household",
                    h.county,
                    h.township,
                    h.village,
                    h.cooperative_id,
                    h.household_id,
                    1,
                    int(h.registered_poor),
                    h.recorded_fen,
                    h.replayed_fen,
                    h.difference_fen,
                    h.fills_changed,
                ]
            )
    for v in result.villages:
        if not changed_only or _changed(v):
            writer.writerow(
                [
                    "village",
                    v.county,
                    v.township,
                    v.village,
                    "",
                    "",
                    v.households,
                    v.registered_poor,
                    v.recorded_fen,
                    v.replayed_fen,
                    v.difference_fen,
                    v.fills_changed,
                ]
            )
    t = result.totals
    writer.writerow(
        [
            "total",
            "",
            "",
            "",
            "",
            "",
            t.households,
            sum(h.registered_poor for h in result.households),
            t.recorded_fen,
            t.replayed_fen,
            t.difference_fen,
            t.fills_changed,
        ]
    )
    return out.getvalue()


def signed(fen: int) -> str:
    """A difference in fen with its sign: +4000, -120, 0."""
    return f"{fen:+d}" if fen else "0"


def totals_line(result: WhatIf) -> str:
    t = result.totals
    return (
        f"totals: {t.households} households earned {t.recorded_fen} fen as recorded, {t.replayed_fen} fen as replayed "
        f"({signed(t.difference_fen)} fen; {t.households_gaining} gain, {t.households_losing} lose); fills {t.fills_recorded} "
        f"recorded, {t.fills_replayed} replayed, {t.fills_changed} changed; registered-poor households with income "
        f"{t.registered_poor_with_income_recorded} -> {t.registered_poor_with_income_replayed}"
    )


def _cell(column: str, value: Any) -> str:
    if column == "difference_fen":
        return signed(value)
    if value is None:  # a commitment term without a limit
        return NO_LIMIT if column in ("recorded", "replayed") else ""
    return str(value)


def print_tables(result: WhatIf, console: Any, changed_only: bool = False) -> None:
    """The changed terms, villages and households as rich tables (differences signed), then the totals line."""
    from rich.table import Table

    def table(title: str, columns: Sequence[str], rows: list[dict[str, Any]]) -> None:
        shown = Table(title=title)
        for column in columns:
            numbers = bool(rows) and all(type(row[column]) is int for row in rows)  # counts and fen, not flags or terms
            shown.add_column(
                column, overflow="fold", justify="right" if numbers and column not in ("recorded", "replayed") else "left"
            )
        for row in rows:
            shown.add_row(*(_cell(column, row[column]) for column in columns))
        console.print(shown)

    if result.changes:
        table("terms changed", CHANGE_COLUMNS, change_rows(result))
    else:
        console.print("no terms changed: the identity replay (every figure must equal the recorded one)", highlight=False)
    suffix = " (changed only)" if changed_only else ""
    table(f"villages: earned as recorded vs as replayed{suffix}", VILLAGE_COLUMNS, village_rows(result, changed_only))
    table(f"households: earned as recorded vs as replayed{suffix}", HOUSEHOLD_COLUMNS, household_rows(result, changed_only))
    console.print(totals_line(result), highlight=False)
