"""Reconciling the store with Kafka in bounded memory (the streamed audit's, streamed.py): the findings of
`reconcile.reconcile`, in its order, without holding the topics' copies or the stored events.

The copies are read from the topics a batch at a time into a spool on disk (SQLite, in a temporary directory:
each copy's place, ids, hash, whether its hash matches its content, and its content), indexed by event id. The
store is then read a batch at a time in the order `reconcile` walks it (schema by schema, each in global order),
and each stored event is compared with the copies of its id, which the spool gives per batch; the copies of no
stored event are what the spool has left over. Each finding carries its place in `reconcile`'s two walks (the
copies by topic, partition and offset, then the stored events), and they are put in that order at the end.
"""

from __future__ import annotations

import json
import os
import sqlite3
import tempfile
import zlib
from collections.abc import Callable
from datetime import datetime, timezone

import asyncpg

from events.hashchain import link_hash
from farmlink.audit.log import KafkaCopy, kafka_copies, stream_rows
from farmlink.audit.model import Finding, Record
from farmlink.audit.reconcile import _at_copy, _content, copy_findings, delivery_finding

Key = tuple[int, str, int, int, int]
"""(0, topic, partition, offset, order within the copy) for a copy; (1, "", 0, index, 0) for the index-th stored event."""

_SPOOL = """CREATE TABLE copies (i INTEGER PRIMARY KEY, event_id TEXT, topic TEXT, partition INTEGER, "offset" INTEGER,
    schema TEXT, stream_id TEXT, stream_version INTEGER, global_position INTEGER, hash TEXT, self_ok INTEGER,
    content BLOB)"""
_COLUMNS = 'i, event_id, topic, partition, "offset", schema, stream_id, stream_version, global_position, hash, self_ok, content'
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


def _spooled(copy: KafkaCopy, index: int) -> tuple:
    record = copy.record
    assert record is not None
    content = _content(record)
    self_ok = link_hash(record.prev_hash, content) == record.hash
    text = zlib.compress(json.dumps(content).encode("ascii"), 1)  # escaped: a lone surrogate from a forged copy survives
    return (index, record.event_id, copy.topic, copy.partition, copy.offset, record.schema, record.stream_id,
            record.stream_version, record.global_position, record.hash, self_ok, text)  # fmt: skip


def _copy_of(row: tuple) -> tuple[KafkaCopy, str, bool, bytes]:
    """A spooled copy as a KafkaCopy that can place a finding (its payload is not needed there), its hash, whether
    its hash matched its content, and its content."""
    record = Record(row[5], row[8], row[1], "", 0, row[6], row[7], _EPOCH, "", "", None, {}, "", row[9])
    return KafkaCopy(row[2], row[3], row[4], record), row[9], bool(row[10]), row[11]


class _Spool:
    def __init__(self, directory: str) -> None:
        self.db = sqlite3.connect(os.path.join(directory, "copies.sqlite"))
        self.db.execute("PRAGMA journal_mode = OFF")
        self.db.execute("PRAGMA synchronous = OFF")
        self.db.execute(_SPOOL)
        self.db.execute("CREATE TABLE stored (event_id TEXT PRIMARY KEY) WITHOUT ROWID")
        self.count = 0

    def add(self, copies: list[KafkaCopy], found: list[tuple[Key, Finding]]) -> None:
        rows = []
        for copy in copies:
            if copy.record is None:
                found.append(
                    ((0, copy.topic, copy.partition, copy.offset, 0), _at_copy(copy, copy.problem or "unreadable message"))
                )
            else:
                rows.append(_spooled(copy, self.count))
            self.count += 1
        self.db.executemany(f"INSERT INTO copies ({_COLUMNS}) VALUES ({', '.join('?' * 12)})", rows)

    def copies_of(self, event_ids: list[str]) -> dict[str, list[tuple]]:
        """The spooled copies of these ids, each id's in the order they were read; and the ids marked as stored."""
        self.db.executemany("INSERT OR IGNORE INTO stored VALUES (?)", [(event_id,) for event_id in event_ids])
        rows = self.db.execute(
            f'SELECT {_COLUMNS} FROM copies WHERE event_id IN (SELECT value FROM json_each(?)) ORDER BY topic, partition, "offset"',
            (json.dumps(event_ids),),
        )
        found: dict[str, list[tuple]] = {}
        for row in rows:
            found.setdefault(row[1], []).append(row)
        return found

    def left_over(self) -> list[tuple]:
        return list(
            self.db.execute(f"SELECT {_COLUMNS} FROM copies WHERE event_id NOT IN (SELECT event_id FROM stored) ORDER BY i")
        )


def _compare(original: Record, rows: list[tuple], index: int, found: list[tuple[Key, Finding]]) -> None:
    """`reconcile`'s findings for one stored event (at `index` of the store's walk) and the spooled copies of its id."""
    places = []
    for row in rows:
        copy, hash_, self_ok, content = _copy_of(row)
        places.append(copy.place)
        theirs = json.loads(zlib.decompress(content))
        at = (0, copy.topic, copy.partition, copy.offset)
        found += [((*at, order), f) for order, f in enumerate(copy_findings(copy, original, theirs, hash_, self_ok), 1)]
    finding = delivery_finding(original, places)
    if finding is not None:
        found.append(((1, "", 0, index, 0), finding))


async def reconcile_stored(
    bootstrap: str,
    dsn: str,
    prefix: str,
    positions: dict[str, int],
    repeated_event_ids: list[str],
    progress: Callable[[int], None] = lambda _: None,
) -> list[Finding]:
    """`reconcile.reconcile` of the store (every schema up to `positions`) with the event topics, in bounded
    memory. `repeated_event_ids` (the store's ids used more than once: store_questions.py) are compared once,
    with the last stored event of the id at the place of its first, as `reconcile` compares them."""
    found: list[tuple[Key, Finding]] = []
    with tempfile.TemporaryDirectory(prefix="farmlink-reconcile-") as directory:
        spool = _Spool(directory)
        async for batch in kafka_copies(bootstrap, progress=progress):
            spool.add(batch, found)
        spool.db.execute("CREATE INDEX copies_event ON copies (event_id)")
        repeated = set(repeated_event_ids)
        last: dict[str, Record] = {}  # a repeated id's last stored event
        first: dict[str, int] = {}  # and the place of its first
        index = 0
        conn = await asyncpg.connect(dsn)
        try:
            for schema in sorted(positions):
                async with conn.transaction(isolation="repeatable_read", readonly=True):
                    async for batch in stream_rows(conn, schema, prefix, "global_position <= $1", (positions[schema],)):
                        copies = spool.copies_of([r.event_id for r in batch])
                        for record in batch:
                            if record.event_id in repeated:
                                first.setdefault(record.event_id, index)
                                last[record.event_id] = record
                            else:
                                _compare(record, copies.get(record.event_id, []), index, found)
                            index += 1
        finally:
            await conn.close()
        for event_id, record in last.items():
            _compare(record, spool.copies_of([event_id]).get(event_id, []), first[event_id], found)
        for row in spool.left_over():
            copy = _copy_of(row)[0]
            found.append(((0, copy.topic, copy.partition, copy.offset, 0), _at_copy(copy, "on the topic but not in the store")))
        spool.db.close()
    return [finding for _, finding in sorted(found, key=lambda item: item[0])]
