"""Snapshots of a product's book: its whole state as canonical JSON bytes, and a book made from them.

A snapshot is derived data. A book restored from the snapshot taken after journal input N
decides every later input exactly as the book that replayed inputs 1..N does, so a
restarted matching service may start from the latest snapshot and replay only the
journal's tail. The audit still re-executes every journal from its first entry and
compares each stored snapshot with the state it replays to (farmlink/audit/snapshots.py).

The bytes are canonical JSON (keys sorted, no whitespace, UTF-8 kept, decimals as their
exact text, dates ISO) of plain data: everything a book holds that can change what it
decides or how it searches, and nothing else. Sets and maps are written sorted, so the
same state always gives the same bytes, and `state_digest` (sha256 of them) is equal for
equal states whatever order the book met things in. Resting lots, open orders and open
commitments are tables (`{"columns": [...], "rows": [[...], ...]}`, rows in journal
order) whose columns name the facts' fields; facts are read back through their own
constructors, so a restored fact is validated as a journaled one is.

What is left out can be made again from what is kept: a lot's household weights (made at
its next fill), the heap of outlet ends (rebuilt from the open outlets), the count of
closed outlets in that heap (only says when to compact it).
"""

from __future__ import annotations

import gc
import hashlib
import json
import zlib
from typing import Any

from matcher.book import Book
from matcher.restore import book_from_snapshot, book_from_state
from matcher.snapshot_tables import (
    COMMITMENT_COLUMNS,
    FORMAT,
    LOT_COLUMNS,
    ORDER_COLUMNS,
    as_table,
    commitment_row,
    lot_row,
    order_row,
)
from matcher.state import CommitmentState, LotState, OrderState

__all__ = [
    "BOOK_ATTRIBUTES",
    "COMMITMENT_COLUMNS",
    "FORMAT",
    "LOT_COLUMNS",
    "ORDER_COLUMNS",
    "book_from_snapshot",
    "book_from_state",
    "book_state",
    "canonical",
    "digest_of",
    "snapshot_bytes",
    "state_digest",
]

BOOK_ATTRIBUTES = frozenset(
    {
        "product",
        "_rules",
        "_journal_seq",
        "_fill_count",
        "_lot_shelves",
        "_open_orders",
        "_open_commitments",
        "_order_shelves",
        "_commitment_shelves",
        "_archived_order_shelves",
        "_archived_commitment_shelves",
        "_horizon",
        "_recent_starts",
        "_outlet_ends",
        "_closed_ends",
        "_lot_ids",
        "_order_ids",
        "_commitment_ids",
        "_planting_ids",
        "_planted_mu",
        "_prices",
    }
)
"""Every attribute of a Book this module knows how to keep or remake (a test fails when Book gains another)."""


# ---------------------------------------------------------------- the state as plain data


def _by_seq(state: LotState | OrderState | CommitmentState) -> int:
    return state.seq


def book_state(book: Book) -> dict[str, Any]:
    """The book's state as plain JSON data, every collection in a canonical order."""
    lots = book.lot_states()
    state: dict[str, Any] = {} if book.rules_version == 1 else {"rules_version": book.rules_version}
    return {
        **state,  # absent: rules version 1 (the bytes of a version-1 book are those of snapshots before versions)
        "format": FORMAT,
        "product": book.product,
        "journal_seq": book._journal_seq,
        "fills_so_far": book._fill_count,
        "horizon": book._horizon.isoformat(),
        "horizon_batch": [day.isoformat() for day in book._recent_starts],  # in journal order: the batch under way
        "lots": as_table(LOT_COLUMNS, [lot_row(s) for s in lots]),
        "lot_shelves": sorted([*key, shelf.longest.days] for key, shelf in book._lot_shelves.items()),
        "orders": as_table(ORDER_COLUMNS, [order_row(s) for s in sorted(book._open_orders.values(), key=_by_seq)]),
        "commitments": as_table(
            COMMITMENT_COLUMNS, [commitment_row(s) for s in sorted(book._open_commitments.values(), key=_by_seq)]
        ),
        "seen_ids": {
            "lot": sorted(book._lot_ids),
            "order": sorted(book._order_ids),
            "commitment": sorted(book._commitment_ids),
            "planting": sorted(book._planting_ids),
        },
        "planted_mu": sorted([cooperative, str(mu)] for cooperative, mu in book._planted_mu.items()),
        "market_prices": sorted(
            [grade, market, [[day.isoformat(), series.price_on[day]] for day in series.days]]
            for (grade, market), series in book._prices.items()
        ),
    }


def canonical(state: dict[str, Any]) -> bytes:
    """Canonical JSON: keys sorted, no whitespace, UTF-8 kept."""
    return json.dumps(state, ensure_ascii=False, sort_keys=True, separators=(",", ":"), allow_nan=False).encode("utf-8")


def snapshot_bytes(book: Book) -> bytes:
    """The book's state as canonical JSON bytes: the same state gives the same bytes."""
    enabled = gc.isenabled()
    gc.disable()  # the plain data made here is all alive until it is written out
    try:
        return canonical(book_state(book))
    finally:
        if enabled:
            gc.enable()


def digest_of(data: bytes) -> str:
    """sha256 (hex) of snapshot bytes."""
    return hashlib.sha256(data).hexdigest()


def state_digest(book: Book) -> str:
    """sha256 (hex) of the book's snapshot bytes: equal for equal states."""
    return digest_of(snapshot_bytes(book))


COMPRESSION_LEVEL = 1
"""zlib level of a stored snapshot (the matching service's `snapshots.state` column): the fastest; the JSON
shrinks about four times even so."""


def stored_state(data: bytes) -> bytes:
    """Snapshot bytes as a stored snapshot keeps them (zlib)."""
    return zlib.compress(data, COMPRESSION_LEVEL)


def snapshot_data(state: bytes) -> bytes:
    """The snapshot bytes a stored snapshot holds. Raises zlib.error for state that cannot be read."""
    return zlib.decompress(state)
