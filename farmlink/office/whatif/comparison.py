"""A what-if's replay and its comparison with what the log records, per household, village and in total."""

from __future__ import annotations

import dataclasses
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from farmlink.audit.log import read_schema
from farmlink.audit.model import AuditLog, Record
from farmlink.audit.replay import FILL_MADE, fill_line_of, market_streams, re_execute_products
from farmlink.audit.report_collect import read_households
from farmlink.office.whatif.terms import AppliedChange, Changes, journals_with


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


def _changed_fills(was: Mapping[_FillKey, Mapping[str, Any]], now: Mapping[_FillKey, Mapping[str, Any]]) -> list[_FillKey]:
    """The fills in one and not the other, or whose money differs, in key order."""
    return [
        key
        for key in sorted(was.keys() | now.keys())
        if key not in was or key not in now or fill_line_of(dict(was[key])) != fill_line_of(dict(now[key]))
    ]


def _households_of(
    key: _FillKey, was: Mapping[_FillKey, Mapping[str, Any]], now: Mapping[_FillKey, Mapping[str, Any]]
) -> set[str]:
    """The households one changed fill pays, as recorded or as replayed."""
    return set(was.get(key, {}).get("household_income_fen", {})) | set(now.get(key, {}).get("household_income_fen", {}))


def _village_rows(
    households: Sequence[HouseholdRow], village_fills: Mapping[tuple[str, str, str], set[_FillKey]]
) -> tuple[VillageRow, ...]:
    grouped: dict[tuple[str, str, str], list[HouseholdRow]] = defaultdict(list)
    for row in households:
        grouped[(row.county, row.township, row.village)].append(row)
    return tuple(
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


def _totals(recorded: int, replayed: int, changed: int, households: Sequence[HouseholdRow]) -> Totals:
    return Totals(
        fills_recorded=recorded,
        fills_replayed=replayed,
        fills_changed=changed,
        households=len(households),
        households_gaining=sum(h.difference_fen > 0 for h in households),
        households_losing=sum(h.difference_fen < 0 for h in households),
        recorded_fen=sum(h.recorded_fen for h in households),
        replayed_fen=sum(h.replayed_fen for h in households),
        registered_poor_with_income_recorded=sum(h.registered_poor and h.recorded_fen > 0 for h in households),
        registered_poor_with_income_replayed=sum(h.registered_poor and h.replayed_fen > 0 for h in households),
    )


def compare(recorded: Sequence[Mapping[str, Any]], replayed: Sequence[Mapping[str, Any]], places: Mapping[str, _Place]) -> WhatIf:
    """Recorded and replayed fills side by side, per household and village. A fill changed when it is in one and
    not the other, or its money differs (quantity, price, basis, revenue or any household's share)."""
    cooperative_of: dict[str, str] = {}
    before, after = _incomes(recorded, cooperative_of), _incomes(replayed, cooperative_of)
    was, now = _keyed(recorded), _keyed(replayed)
    changed_keys = _changed_fills(was, now)
    fills_changed: dict[str, int] = defaultdict(int)
    for key in changed_keys:
        for household in _households_of(key, was, now):
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
        for household in _households_of(key, was, now):
            p = place(household)
            village_fills[(p.county, p.township, p.village)].add(key)
    totals = _totals(len(recorded), len(replayed), len(changed_keys), households)
    return WhatIf((), tuple(households), _village_rows(households, village_fills), totals)


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
