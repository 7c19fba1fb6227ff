"""The state hash: what two audits of the same log agree on, full or incremental (farmlink/audit/README.md)."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from matcher.book import Book
from matcher.output import quantity_text

if TYPE_CHECKING:
    from farmlink.audit.replay import ReExecution


def fill_line_of(payload: dict[str, Any]) -> str:
    """A FillMade payload as the canonical fill line (`matcher.output.fill_line`): what auditors compare byte for byte."""
    record = {
        "lot_id": payload["lot_id"],
        "outlet_kind": payload["outlet_kind"],
        "outlet_id": payload["outlet_id"],
        "buyer_id": payload["buyer_id"],
        "quantity": quantity_text(Decimal(str(payload["quantity"]))),
        "unit_price_fen": payload["unit_price_fen"],
        "price_basis": payload["price_basis"],
        "revenue_fen": payload["revenue_fen"],
        "household_income_fen": dict(sorted(payload["household_income_fen"].items())),
    }
    return json.dumps(record, ensure_ascii=False, separators=(",", ":"))


def book_line(product: str, book: Book) -> str:
    """A product's resting lots and open outlets, sorted, as one canonical JSON line."""
    lots = sorted([lot.lot.lot_id, quantity_text(lot.quantity_left)] for lot in book.resting_lots())
    outlets = sorted(
        [
            outlet.outlet_kind,
            outlet.outlet.order_id if outlet.outlet_kind == "order" else outlet.outlet.commitment_id,  # type: ignore[union-attr]
            None if outlet.quantity_left is None else quantity_text(outlet.quantity_left),
        ]
        for outlet in book.open_outlets()
    )
    state = {"product": product, "journal_seq": book.journal_seq, "resting_lots": lots, "open_outlets": outlets}
    return json.dumps(state, ensure_ascii=False, separators=(",", ":"), sort_keys=True)


STATE_HASH_CONTEXT = b"farmlink-state-v2\n"


def chain_fill_lines(lines: Iterable[str], start: str = "") -> str:
    """The fills' running digest: sha256 (hex) of the previous digest, a newline and the fill line, fill
    after fill ("" before the first). It can be resumed from a checkpoint's digest."""
    digest = start
    for line in lines:
        digest = hashlib.sha256(f"{digest}\n{line}".encode("utf-8")).hexdigest()
    return digest


@dataclass
class StateLines:
    """What the state hash covers: each fill line with its place in the market's order, each product's
    book line; `start_digest`/`start_count`: the fills before a checkpoint, already chained."""

    fills: list[tuple[int, int, str]] = field(default_factory=list)
    books: dict[str, str] = field(default_factory=dict)
    start_digest: str = ""
    start_count: int = 0

    @classmethod
    def of(cls, reexecution: ReExecution) -> StateLines:
        positions = reexecution.fill_positions or [(0, index) for index in range(len(reexecution.fills))]
        return cls(
            [(*place, fill_line_of(payload)) for place, payload in zip(positions, reexecution.fills)],
            {product: book_line(product, book) for product, book in reexecution.books.items()},
        )

    def merge(self, other: StateLines) -> None:
        self.fills += other.fills
        self.books |= other.books

    def fills_digest(self) -> tuple[str, int]:
        """The running digest after every fill, and how many fills it covers."""
        ordered = sorted(self.fills, key=lambda item: (item[0], item[1]))
        return chain_fill_lines((line for _, _, line in ordered), self.start_digest), self.start_count + len(ordered)


def state_hash_of(fills_digest: str, fill_count: int, book_lines: dict[str, str]) -> str:
    """sha256 (hex) of the fills' running digest and count, then each product's book line, sorted by product."""
    digest = hashlib.sha256(STATE_HASH_CONTEXT)
    digest.update(f"{fills_digest}\n{fill_count}\n".encode("ascii"))
    for product in sorted(book_lines):
        digest.update(book_lines[product].encode("utf-8"))
        digest.update(b"\n")
    return digest.hexdigest()


def state_hash(reexecution: ReExecution) -> str:
    """sha256 (hex) of the re-executed market: every fill line in order (as a running digest, so an
    incremental audit resumes it from a checkpoint), then each product's book, sorted.

    Two audits of the same log agree on it, full or incremental; any change to what the journal decides changes it.
    """
    lines = reexecution.lines or StateLines.of(reexecution)
    return state_hash_of(*lines.fills_digest(), lines.books)
