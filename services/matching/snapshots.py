"""Snapshots of the matching service's books, so a restart replays a journal's tail, not all of it.

After every SNAPSHOT_EVERY-th journal entry of a product (journal_seq 10,000, 20,000, ...)
the handler stages a row of `snapshots` with the book's state (`matcher.snapshot`) in the
batch's unit of work: it commits with the journal entry it follows, or not at all. A
restarted instance loads the product's latest snapshot and replays only the journal
entries after it (`services.matching.app.load_book`).

A row: product, journal_seq and stream_version (the book after that entry and the events
it caused), `state` (the canonical snapshot bytes, zlib-compressed: the JSON is a few tens
of MB for a book of a hundred thousand open outlets), `digest` (sha256 of the uncompressed
bytes). Snapshots are derived data: the audit re-executes every journal from its first
entry and reports a snapshot that disagrees with it (farmlink/audit/snapshots.py). Every
instance writes the same rows at the same points (the key is product and journal_seq, a
second write of one is ignored).
"""

import logging
import os
import time
import zlib
from dataclasses import dataclass

import asyncpg
import orjson

from events.unit import BatchUnitOfWork, Table
from matcher.book import Book
from matcher.snapshot import book_from_snapshot, digest_of, snapshot_bytes, snapshot_data, stored_state

log = logging.getLogger(__name__)

SNAPSHOT_EVERY = int(os.environ.get("FARMLINK_SNAPSHOT_EVERY", "10000"))
"""A product's book is snapshotted after every this many journal entries (0: never)."""

SNAPSHOTS = Table(
    "snapshots",
    ("product", "journal_seq"),
    (("product", "text"), ("journal_seq", "integer"), ("stream_version", "integer"), ("state", "bytea"), ("digest", "text")),
)


@dataclass(frozen=True)
class Snapshot:
    """A product's book as a snapshot row holds it, and where in its stream it stands."""

    product: str
    journal_seq: int
    stream_version: int
    book: Book


def snapshot_row(book: Book, stream_version: int) -> dict:
    """The row of `snapshots` for a book as it stands after journal entry `book.journal_seq`."""
    data = snapshot_bytes(book)
    return {
        "product": book.product,
        "journal_seq": book.journal_seq,
        "stream_version": stream_version,
        "state": stored_state(data),
        "digest": digest_of(data),
    }


def due(book: Book, every: int | None = None) -> bool:
    """Whether the entry the book has just processed is one a snapshot follows."""
    every = SNAPSHOT_EVERY if every is None else every
    return every > 0 and book.journal_seq > 0 and book.journal_seq % every == 0


def maybe_snapshot(uow: BatchUnitOfWork, book: Book, stream_version: int) -> None:
    """Stage the book's snapshot in the batch when its last entry is due one; it commits with that entry."""
    if not due(book):
        return
    started = time.perf_counter()
    row = snapshot_row(book, stream_version)
    uow.insert(SNAPSHOTS, row)
    log.info(
        "snapshot of %s at journal_seq %d (stream version %d): %d bytes stored, %.2f s",
        book.product,
        book.journal_seq,
        stream_version,
        len(row["state"]),
        time.perf_counter() - started,
    )


async def latest(conn: asyncpg.Connection, product: str, stream_id: str) -> Snapshot | None:
    """The product's latest snapshot as a book, or None (no snapshot, or none that can be trusted: logged,
    and the journal is replayed from its start instead). `conn` has the service schema on its search path."""
    row = await conn.fetchrow(
        "SELECT journal_seq, stream_version, state, digest FROM snapshots WHERE product = $1 ORDER BY journal_seq DESC LIMIT 1",
        product,
    )
    if row is None:
        return None
    where = f"snapshot of {product} at journal_seq {row['journal_seq']}"
    try:
        data = snapshot_data(row["state"])
    except zlib.error as error:
        log.error("%s cannot be read (%s); replaying the whole journal", where, error)
        return None
    if digest_of(data) != row["digest"]:
        log.error("%s does not match its digest; replaying the whole journal", where)
        return None
    # The snapshot must stand right after its journal entry: that entry is in the stream at or before
    # the snapshot's version, and the event at that version exists.
    place = await conn.fetchrow(
        "SELECT (SELECT (payload->>'journal_seq')::int FROM events WHERE stream_id = $1 AND event_type = 'InputJournaled' "
        "        AND stream_version <= $2 ORDER BY stream_version DESC LIMIT 1) AS entry_seq, "
        "       EXISTS (SELECT 1 FROM events WHERE stream_id = $1 AND stream_version = $2) AS head_ok",
        stream_id,
        row["stream_version"],
    )
    entry_seq, head_ok = place["entry_seq"], place["head_ok"]
    if entry_seq != row["journal_seq"] or not head_ok:
        log.error(
            "%s does not stand at its place in %s (stream version %d); replaying the whole journal",
            where,
            stream_id,
            row["stream_version"],
        )
        return None
    try:
        book = book_from_snapshot(data, loads=orjson.loads)
    except (KeyError, TypeError, ValueError, ArithmeticError, orjson.JSONDecodeError) as error:
        log.error("%s cannot be restored (%r); replaying the whole journal", where, error)
        return None
    if book.product != product or book.journal_seq != row["journal_seq"]:
        log.error("%s holds the book of %s at journal_seq %d; replaying the whole journal", where, book.product, book.journal_seq)
        return None
    return Snapshot(product, row["journal_seq"], row["stream_version"], book)
