"""Inputs that must meet in their producer's order: a run's sequenced inputs of one product are
handed to the handler in seq order, whatever order the Kafka topics deliver them in.

`farmlink publish` stamps every line the matcher journals with `<run>/<product>/<seq>` (Kafka
header contracts.topics.SEQUENCE_HEADER). The owning service copies the stamp onto the event the
line leads to or, when it rejects the line, onto a marker (events/unit.py); the matching service
reads events from three topics plus the markers and must journal them in seq order. `arrange`
does that inside the batch's transaction:

- an item whose seq is the next one expected for its (run, product) is handled, then every
  parked item that follows it without a gap;
- an item that comes too early is parked in `sequence_pending` (raw record and all), in the same
  transaction as the batch, so its Kafka offset can be committed and nothing is lost if the
  service dies; it is handled once the items before it came;
- an item without a stamp (any other producer) is handled at once, as before;
- a gap that stays open longer than `GAP_TIMEOUT_S` (a publisher that died between two sends)
  is skipped with a warning: the parked items are handled in seq order rather than never.

The matcher stays a pure function of its journal: this only decides the journal's order, and the
journal records it.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

import asyncpg

from contracts.topics import SEQUENCE_HEADER
from events.consumer import Delivery
from events.store import kafka_headers_of, outbox_headers
from events.unit import Table

log = logging.getLogger(__name__)

GAP_TIMEOUT_S = float(os.environ.get("FARMLINK_SEQUENCE_GAP_TIMEOUT_S", "120"))


@dataclass(frozen=True)
class Stamp:
    """Where an input sits in its run's sequence for one product."""

    run: str
    product: str
    seq: int

    @property
    def key(self) -> tuple[str, str]:
        return (self.run, self.product)

    def header(self) -> tuple[str, bytes]:
        return (SEQUENCE_HEADER, f"{self.run}/{self.product}/{self.seq}".encode())


def stamp_of(headers: Sequence[tuple[str, bytes | None]]) -> Stamp | None:
    """The stamp a record's headers carry (None: none, or not of the form run/product/seq with seq >= 1)."""
    for name, value in headers:
        if name == SEQUENCE_HEADER and value is not None:
            try:
                run, product, seq = value.decode("utf-8").split("/")
                number = int(seq)
            except (UnicodeDecodeError, ValueError):
                return None
            return Stamp(run, product, number) if run and product and number >= 1 else None
    return None


class Sequencer:
    """Orders a consumer's stamped items (see the module's docstring); keeps its state in two tables
    of the service's schema (events/sql/005_sequence.sql)."""

    def __init__(self, gap_timeout_s: float = GAP_TIMEOUT_S):
        self.gap_timeout = timedelta(seconds=gap_timeout_s)

    async def arrange(
        self,
        conn: asyncpg.Connection,
        uow: Any,
        items: list[Any],
        make_item: Callable[[Delivery], Any],
        now: datetime | None = None,
    ) -> list[Any]:
        """The items to handle now, in order; parks early ones and releases parked ones (staged in `uow`)."""
        now = now or datetime.now(timezone.utc)
        stamps = {id(item): stamp_of(item.delivery.headers) for item in items}
        keys = sorted({s.key for s in stamps.values() if s is not None})
        if not items:  # the gap sweeper's call: every run and product whose gap outlived the timeout
            stale = await conn.fetch(
                """SELECT DISTINCT run, product FROM sequence_pending WHERE NOT released AND parked_at < $1""",
                now - self.gap_timeout,
            )
            keys = sorted({(r["run"], r["product"]) for r in stale})
        if not keys:
            return items
        progress, parked = await self._state(conn, keys, make_item)
        emitted: dict[tuple[str, str], list[Any]] = {}
        for key in keys:
            expected = progress.get(key, 1)
            waiting = {seq: (item, when, False) for seq, item, when in parked.get(key, [])}
            for item in items:
                stamp = stamps[id(item)]
                if stamp is not None and stamp.key == key and stamp.seq >= expected:
                    waiting.setdefault(stamp.seq, (item, now, True))
            ready, expected = self._release(key, expected, waiting, now)
            _park(uow, key, waiting, now)
            late: list[Any] = []
            for seq, item, fresh in ready:
                if not fresh:
                    uow.patch(PENDING, (key[0], key[1], seq), {"released": True})
                late.append(item)
            if ready or key in progress or waiting:
                uow.put(PROGRESS, {"run": key[0], "product": key[1], "next_seq": expected, "updated_at": now})
            uow.keep()
            emitted[key] = late
        return _in_batch_order(items, stamps, emitted, progress)

    async def _state(
        self, conn: asyncpg.Connection, keys: list[tuple[str, str]], make_item: Callable[[Delivery], Any]
    ) -> tuple[dict[tuple[str, str], int], dict[tuple[str, str], list[tuple[int, Any, datetime]]]]:
        """Each (run, product)'s next expected seq, locked, and its parked items in seq order."""
        runs, products = [k[0] for k in keys], [k[1] for k in keys]
        # Locked: two transactions arranging the same run and product (instances during a rebalance, the gap
        # sweeper) take turns, and the second reads what the first committed, parked rows included.
        progress = {
            (r["run"], r["product"]): r["next_seq"]
            for r in await conn.fetch(
                """SELECT run, product, next_seq FROM sequence_progress
               WHERE (run, product) IN (SELECT * FROM unnest($1::text[], $2::text[]))
               ORDER BY run, product FOR UPDATE""",
                runs,
                products,
            )
        }
        parked: dict[tuple[str, str], list[tuple[int, Any, datetime]]] = {}
        for row in await conn.fetch(
            """SELECT run, product, seq, topic, partition, kafka_offset, key, value, headers::text AS headers, parked_at
                   FROM sequence_pending WHERE NOT released AND (run, product) IN (SELECT * FROM unnest($1::text[], $2::text[]))
                   ORDER BY run, product, seq""",
            runs,
            products,
        ):
            delivery = Delivery(
                row["topic"], row["partition"], row["kafka_offset"], row["key"], row["value"], kafka_headers_of(row["headers"])
            )
            parked.setdefault((row["run"], row["product"]), []).append((row["seq"], make_item(delivery), row["parked_at"]))
        return progress, parked

    def _release(
        self, key: tuple[str, str], expected: int, waiting: dict[int, tuple[Any, datetime, bool]], now: datetime
    ) -> tuple[list[tuple[int, Any, bool]], int]:
        """Take from `waiting` every item that follows `expected` without a gap, skipping a gap that outlived the
        timeout: (seq, item, fresh) in seq order, and the seq expected next."""
        ready: list[tuple[int, Any, bool]] = []
        while True:
            while expected in waiting:
                item, _, fresh = waiting.pop(expected)
                ready.append((expected, item, fresh))
                expected += 1
            oldest = min((when for _, when, _ in waiting.values()), default=None)
            if oldest is None or oldest >= now - self.gap_timeout:
                return ready, expected
            skipped_to = min(waiting)
            log.warning(
                "run %s, product %s: no input %d..%d after %.0f s; going on from %d",
                key[0],
                key[1],
                expected,
                skipped_to - 1,
                self.gap_timeout.total_seconds(),
                skipped_to,
            )
            expected = skipped_to


def _park(uow: Any, key: tuple[str, str], waiting: dict[int, tuple[Any, datetime, bool]], now: datetime) -> None:
    """Park the batch's early items with their raw records until the inputs before them come."""
    for seq, (item, when, fresh) in sorted(waiting.items()):
        if fresh:
            d = item.delivery
            uow.insert(
                PENDING,
                {
                    "run": key[0],
                    "product": key[1],
                    "seq": seq,
                    "topic": d.topic,
                    "partition": d.partition,
                    "kafka_offset": d.offset,
                    "key": d.key,
                    "value": d.value,
                    "headers": outbox_headers(d.headers),
                    "parked_at": now,
                    "released": False,
                },
            )
            uow.keep()


def _in_batch_order(
    items: list[Any],
    stamps: dict[int, Stamp | None],
    emitted: dict[tuple[str, str], list[Any]],
    progress: dict[tuple[str, str], int],
) -> list[Any]:
    """The batch's items in their order; each key's ready items at the place of its first one here."""
    out: list[Any] = []
    placed: set[tuple[str, str]] = set()
    for item in items:
        stamp = stamps[id(item)]
        if stamp is None:
            out.append(item)
        elif stamp.key in emitted and stamp.key not in placed:
            placed.add(stamp.key)
            out += emitted[stamp.key]
        elif stamp.key in emitted:
            continue
    for key, late in emitted.items():
        if key not in placed:
            out += late
    # Items older than the key's progress (a repeat, or one that came after its gap was skipped) go through as they are.
    handled = {id(i) for i in out}
    for item in items:
        stamp = stamps[id(item)]
        if stamp is not None and id(item) not in handled and stamp.seq < progress.get(stamp.key, 1):
            out.append(item)
    return out


PENDING = Table(
    "sequence_pending",
    ("run", "product", "seq"),
    (
        ("run", "text"),
        ("product", "text"),
        ("seq", "integer"),
        ("topic", "text"),
        ("partition", "integer"),
        ("kafka_offset", "bigint"),
        ("key", "bytea"),
        ("value", "bytea"),
        ("headers", "jsonb"),
        ("parked_at", "timestamptz"),
        ("released", "boolean"),
    ),
)
PROGRESS = Table(
    "sequence_progress",
    ("run", "product"),
    (("run", "text"), ("product", "text"), ("next_seq", "integer"), ("updated_at", "timestamptz")),
)
