"""The changed commitment terms of a what-if: parsed from the command line, resolved against the journal's
CommitmentMade facts, validated as the input model validates them, and put into copies of the journal entries."""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from contracts.catalogue import PRODUCTS
from contracts.inputs import Commitment
from farmlink.audit.model import Record
from farmlink.audit.replay import JOURNAL_ENTRY

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
    candidate = {name: fact[name] for name in Commitment.model_fields if name in fact}
    candidate |= {field: term.value for field, term in terms.items()}
    try:
        commitment = Commitment.model_validate(candidate)
    except ValidationError as error:
        raise ChangeError(_explain(error, terms, commitment_id, fact)) from None
    dumped = commitment.model_dump(mode="json")
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
