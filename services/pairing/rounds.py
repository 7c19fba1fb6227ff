"""Supervision rounds on the pairing service: the facts the ledger's rules read, kept from the services' event
topics, and a round that runs the rules (matcher/supervision/rules.py) over exactly the facts before its cut-off and
records what they opened (`ProblemFound`) and cured (`ProblemCured`).

Determinism: `farmlink publish` sends a round only after every line before it has its outcome, stamped with its
cut-off: per event topic partition, the offset after the last record then committed. The round waits (its batch
is retried) until the facts kept here reached every offset of its cut-off, then sees the facts below it, and only
those, whatever else has arrived since. It records what it saw per schema (the greatest position and the count:
`SupervisionRoundEvaluated`), so the audit re-derives the round from the log alone (farmlink/audit/problems.py). A round
without a cut-off sees every fact kept when it is decided.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

import asyncpg

from contracts.envelope import Envelope
from contracts.inputs import SupervisionRound
from contracts.pairing import ProblemCured, ProblemFound, SchemaSeen, SupervisionRoundEvaluated
from contracts.topics import BUYER_EVENTS, COOPERATIVE_EVENTS, FILLS, PAIRING_EVENTS, SETTLEMENT_EVENTS
from events.codec import decode_event
from events.consumer import Decoded, Delivery, describe
from events.store import NewEvent
from events.unit import BatchUnitOfWork, Table
from matcher.supervision.facts import FACT_TYPES, SCHEMA_ORDER, fold
from matcher.supervision.rules import Problem, round_changes

FACT_TOPICS = (COOPERATIVE_EVENTS, BUYER_EVENTS, FILLS, SETTLEMENT_EVENTS, PAIRING_EVENTS)
"""The event topics that carry the facts the rules read (registrations, lots, commitments, fills, plans and
payments, and the pairing office's own pairings, promises, support and projects)."""

WAIT_S = 0.1
WAITS = 100
"""A round whose facts are not all in looks again every WAIT_S, WAITS times, before its batch is tried again."""

FACTS = Table(
    "facts",
    ("event_id",),
    (
        ("event_id", "text"),
        ("schema_name", "text"),
        ("global_position", "bigint"),
        ("event_type", "text"),
        ("occurred_at", "timestamptz"),
        ("payload", "jsonb"),
        ("topic", "text"),
        ("kafka_partition", "integer"),
        ("kafka_offset", "bigint"),
    ),
)
PROGRESS = Table(
    "fact_progress", ("topic", "kafka_partition"), (("topic", "text"), ("kafka_partition", "integer"), ("next_offset", "bigint"))
)
PROBLEMS = Table(
    "problems", ("problem_id",), (("problem_id", "text"), ("kind", "text"), ("state", "text"), ("opened_in", "text"))
)


@dataclass(frozen=True)
class KeptFact:
    """A fact as the pairing service kept it (matcher/supervision/facts.py `Fact`)."""

    schema: str
    global_position: int
    event_id: str
    event_type: str
    occurred_at: datetime
    payload: dict[str, Any]


log = logging.getLogger(__name__)


class RoundNotReady(Exception):
    """A round whose cut-off the kept facts have not reached: its batch comes again (not a rejection)."""


# -- keeping facts ---------------------------------------------------------------------------------------
def decode_fact(delivery: Delivery) -> Decoded[tuple[Envelope | None, Delivery]]:
    """A service event with where it sits on Kafka (a round's cut-off names offsets). One this service cannot read
    (a version it does not know yet) is logged and passed as read: a round never waits for it, and the audit's
    count of what the round saw finds the gap."""
    try:
        decoded = decode_event(delivery)
    except Exception as error:
        log.warning("pairing facts: %s unreadable, passed: %s", delivery.delivery_id, describe(error))
        return Decoded((None, delivery), f"delivery:{delivery.delivery_id}", "")
    return Decoded((decoded.item[0], delivery), decoded.message_id, decoded.correlation_id)


def keep_fact(uow: BatchUnitOfWork, decoded: Decoded[tuple[Envelope | None, Delivery]]) -> None:
    """Keep a fact the rules read (without its signed input: the rules never read it); note how far each partition
    has been read, whatever the record."""
    envelope, delivery = decoded.item
    if envelope is not None and envelope.event_type in FACT_TYPES and envelope.global_position is not None:
        uow.insert(
            FACTS,
            {
                "event_id": str(envelope.event_id),
                "schema_name": envelope.producer.removeprefix("service:"),
                "global_position": envelope.global_position,
                "event_type": envelope.event_type,
                "occurred_at": envelope.occurred_at,
                "payload": json.dumps({k: v for k, v in envelope.payload.items() if k != "signed_input"}),
                "topic": delivery.topic,
                "kafka_partition": delivery.partition,
                "kafka_offset": delivery.offset,
            },
        )
    uow.put(PROGRESS, {"topic": delivery.topic, "kafka_partition": delivery.partition, "next_offset": delivery.offset + 1})


# -- loading what a round needs --------------------------------------------------------------------------
async def load_rounds(conn: asyncpg.Connection, uow: BatchUnitOfWork, rounds: Sequence[SupervisionRound]) -> None:
    """For each round of the batch, the facts below its cut-off (waiting until they are all in); and the problems
    rounds opened so far."""
    if not rounds:
        return
    for report in rounds:
        await _wait_for_cutoff(conn, report)
    rows = await conn.fetch(
        "SELECT event_id, schema_name, global_position, event_type, occurred_at, payload::text AS payload, topic, "
        "kafka_partition, kafka_offset FROM facts"
    )
    for report in rounds:
        uow.load("round_facts", {report.round_id: [_fact(row) for row in rows if _before(row, report.cutoff)]})
    await load_problems(conn, uow, None)


async def _wait_for_cutoff(conn: asyncpg.Connection, report: SupervisionRound) -> None:
    """Until the facts kept reach every offset of the round's cut-off (looking again every WAIT_S); after WAITS
    looks, RoundNotReady (the batch comes again). Reading progress takes no lock and no transaction id."""
    behind: list[str] = []
    for _ in range(WAITS):
        progress = {
            f"{row['topic']}/{row['kafka_partition']}": row["next_offset"]
            for row in await conn.fetch("SELECT topic, kafka_partition, next_offset FROM fact_progress")
        }
        behind = [where for where, offset in sorted((report.cutoff or {}).items()) if progress.get(where, 0) < offset]
        if not behind:
            return
        await asyncio.sleep(WAIT_S)
    raise RoundNotReady(f"round {report.round_id}: facts not yet kept up to its cut-off at {', '.join(behind)}")


async def load_problems(conn: asyncpg.Connection, uow: BatchUnitOfWork, ids: Sequence[str] | None) -> None:
    """The problems rounds opened (those named, or all of them), into the view."""
    rows = await conn.fetch(
        "SELECT problem_id, kind, state, opened_in FROM problems WHERE $1::text[] IS NULL OR problem_id = ANY($1::text[])",
        None if ids is None else list(ids),
    )
    uow.load(PROBLEMS.name, {row["problem_id"]: dict(row) for row in rows})
    uow.load("problem_ids", {"all": sorted({*(uow.get("problem_ids", "all") or []), *(row["problem_id"] for row in rows)})})


def _before(row: asyncpg.Record, cutoff: dict[str, int] | None) -> bool:
    if cutoff is None:
        return True
    return row["kafka_offset"] < cutoff.get(f"{row['topic']}/{row['kafka_partition']}", 0)


def _fact(row: asyncpg.Record) -> KeptFact:
    return KeptFact(
        row["schema_name"],
        row["global_position"],
        row["event_id"],
        row["event_type"],
        row["occurred_at"],
        json.loads(row["payload"]),
    )


# -- deciding a round ------------------------------------------------------------------------------------
def seen_of(facts: Sequence[KeptFact]) -> tuple[SchemaSeen, ...]:
    """Per schema (in the rules' schema order), the greatest position and the number of facts a round saw."""
    out = []
    for schema in SCHEMA_ORDER:
        positions = [f.global_position for f in facts if f.schema == schema]
        if positions:
            out.append(SchemaSeen(schema_name=schema, through_position=max(positions), facts=len(positions)))
    return tuple(out)


def _known(uow: BatchUnitOfWork) -> dict[str, Problem]:
    known = {}
    for problem_id in uow.get("problem_ids", "all") or []:
        row = uow.get(PROBLEMS.name, problem_id)
        if row is not None:
            known[problem_id] = Problem(problem_id, row["kind"], "", "", "", "", row["opened_in"], [], state=row["state"])
    return known


def evaluate(uow: BatchUnitOfWork, round_id: str, as_of: date) -> list[NewEvent]:
    """The round's rules over the facts it saw: what they opened and cured, as events; the problems view follows."""
    facts = uow.get("round_facts", round_id) or []
    opened, cured = round_changes(fold(facts), as_of, _known(uow))
    events: list[NewEvent] = [
        NewEvent(
            SupervisionRoundEvaluated(round_id=round_id, as_of=as_of, seen=seen_of(facts), opened=len(opened), cured=len(cured))
        )
    ]
    for problem in opened:
        found = ProblemFound(
            round_id=round_id,
            problem_id=problem.problem_id,
            kind=problem.kind,  # type: ignore[arg-type]
            township=problem.township,
            owner_team=problem.owner_team,
            subject=problem.subject,
            reason=problem.reason,
            evidence=tuple(problem.opened_evidence),
        )
        events.append(NewEvent(found))
        set_problem(uow, {"problem_id": problem.problem_id, "kind": problem.kind, "state": "open", "opened_in": round_id})
    for problem_id, evidence in cured:
        events.append(NewEvent(ProblemCured(round_id=round_id, problem_id=problem_id, evidence=tuple(evidence))))
        set_problem(uow, {**uow.get(PROBLEMS.name, problem_id), "state": "closed"})
    return events


def set_problem(uow: BatchUnitOfWork, row: dict[str, Any]) -> None:
    """A problem's row, written with the batch and seen by the batch's later messages."""
    uow.put(PROBLEMS, row)
    ids = uow.get("problem_ids", "all") or []
    if row["problem_id"] not in ids:
        uow.set("problem_ids", "all", sorted([*ids, row["problem_id"]]))
