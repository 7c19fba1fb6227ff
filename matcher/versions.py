"""Rules versions: which rulebook a product's journal is decided under, and from which entry on.

Every journal entry records the rules version it was decided under (`rules_version` of the
InputJournaled event, contracts/matching.py; an entry written before versions existed has none and
was decided under version 1). A product's journal starts under version 1. A new version is
switched on for a product by a *rules adoption*: a journal entry of its own, with source event
type `RulesAdopted` and fact `{"product": ..., "rules_version": N}`, which the matching service
journals before the first input it records on or after the version's `applies_from` day. The
book folds it like any input (a `RulesAdoption` fact: it matches nothing, and every later entry
is decided under version N), so re-executing the journal, live or in the audit, switches rules at
exactly the recorded position. The adoption is in the log, hash-chained with the rest; the
code's `applies_from` only tells the live service when to write it.

Pure: the matching service calls `due_adoption` with an input's recording day; nothing here
reads a clock.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from typing import Any

from matcher.rules import RULEBOOKS, Rulebook

ADOPTION_TYPE = "RulesAdopted"
"""The source event type of a rules adoption's journal entry (it has no source event: the matching
service decides it; its source_event_id is derived from the product and journal position)."""


@dataclass(frozen=True)
class VersionInfo:
    """A rules version as `farmlink rules` lists it."""

    version: int
    applies_from: date | None
    changes: str


def versions(rulebooks: Mapping[int, Rulebook] = RULEBOOKS) -> list[VersionInfo]:
    """Every rules version this matcher knows, oldest first."""
    return [VersionInfo(v, rulebooks[v].applies_from, rulebooks[v].changes) for v in sorted(rulebooks)]


def version_for_day(day: date, rulebooks: Mapping[int, Rulebook] = RULEBOOKS) -> int:
    """The newest version whose `applies_from` is on or before `day` (version 1 applies from the start)."""
    found = 1
    for version in sorted(rulebooks):
        start = rulebooks[version].applies_from
        if start is None or start <= day:
            found = version
    return found


def due_adoption(in_force: int, day: date, rulebooks: Mapping[int, Rulebook] = RULEBOOKS) -> int | None:
    """The version a product's journal must adopt before an input recorded on `day`, if any: a newer one
    than the version in force whose day has come. Never an older one: a journal does not go back."""
    due = version_for_day(day, rulebooks)
    return due if due > in_force else None


def adoption_fact(product: str, version: int) -> dict[str, Any]:
    """The journaled fact of a rules adoption."""
    return {"product": product, "rules_version": version}


def entry_rules_version(entry: Mapping[str, Any]) -> int:
    """The rules version a journal entry (an InputJournaled payload) records; an entry without one was
    written before versions and decided under version 1 (the upcast of InputJournaled v1)."""
    version = entry.get("rules_version", 1)
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise ValueError(f"rules_version must be a whole number from 1, got {version!r}")
    return version


def recorded_rules_version(entry: Mapping[str, Any]) -> object:
    """The rules version a journal entry records, unchecked (the audit compares it with the version its
    re-execution was under); absent: 1, as for `entry_rules_version`."""
    return entry.get("rules_version", 1)
