"""The audit's core checks: is the log intact, is every event unique, and do the recorded fills
and payments keep the promises of matching-rules.md?

Every check is a pure function of the log (and, for the invariants, of the re-execution's
grouping of the matching streams): no I/O, plain dict access on the hot path, so a log of a
million events is checked in one pass per check. Each finding names the exact record.
"""

from __future__ import annotations

import hashlib
from bisect import bisect_right, insort
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import date, timezone
from decimal import ROUND_HALF_EVEN, Decimal
from itertools import pairwise
from typing import Any

import orjson

from events.hashchain import GENESIS, verify_chain
from farmlink.audit.model import AuditLog, Finding, Record, finding_at
from farmlink.audit.replay import FILL_MADE, JOURNAL_ENTRY, UNREADABLE, ReExecution, streams_of
from matcher.facts import DECIMAL_CONTEXT
from matcher.money import split_largest_remainder
from matcher.output import quantity_text as _q

HASH_CHAIN = "hash_chain"
DUPLICATE_EVENT = "duplicate_event"
INVARIANT = "invariant"

_ZERO = Decimal(0)
_ONE_FEN = Decimal(1)
_MALFORMED = (*UNREADABLE, AttributeError)
"""What checking a forged or damaged payload may raise: reported as a finding, never a crash."""


# ================================================================ hash chains


class _ChainView:
    """A record seen as the mapping `verify_chain` reads, without copying it into a dict."""

    __slots__ = ("_record",)

    def __init__(self, record: Record) -> None:
        self._record = record

    def __getitem__(self, key: str) -> Any:
        return getattr(self._record, key)

    def get(self, key: str, default: Any = None) -> Any:
        return getattr(self._record, key, default)


def _chain_holds(records: list[Record]) -> bool:
    """True when every link holds: versions 1..n, each prev_hash the previous hash, each hash sha256 over
    the previous hash and the canonical JSON of the event's hashed fields (events/hashchain.py). The
    same bytes as `canonical_bytes` for what a log holds (parsed JSON), made without the dict and
    mapping layers of `verify_chain`; False (and `verify_chain` says where and why) at the first doubt."""
    prev, version, sha256, dumps, utc = GENESIS, 1, hashlib.sha256, orjson.dumps, timezone.utc
    try:
        for r in records:
            if r.stream_version != version or (r.prev_hash or GENESIS) != prev:
                return False
            content = {
                "event_id": str(r.event_id),
                "event_type": r.event_type,
                "schema_version": r.schema_version,
                "stream_id": r.stream_id,
                "stream_version": r.stream_version,
                "occurred_at": r.occurred_at.astimezone(utc).isoformat(),
                "producer": r.producer,
                "correlation_id": r.correlation_id,
                "causation_id": r.causation_id,
                "payload": r.payload,
            }
            if sha256(prev.encode("ascii") + dumps(content, option=orjson.OPT_SORT_KEYS)).hexdigest() != r.hash:
                return False
            prev, version = r.hash, version + 1
    except (TypeError, ValueError, AttributeError, UnicodeError, orjson.JSONEncodeError):
        return False
    return True


def _out_of_global_order(records: list[Record]) -> Finding | None:
    """Within a stream, later versions were appended later: their global positions must grow too."""
    for before, after in pairwise(records):
        if after.global_position <= before.global_position:
            return finding_at(
                HASH_CHAIN,
                after,
                f"stream version {after.stream_version} sits at global position {after.global_position}, "
                f"not after version {before.stream_version} at {before.global_position}: events were moved",
            )
    return None


def stream_break(stream_id: str, records: list[Record]) -> Finding | None:
    """The first broken link of one stream (records in stream order), or None when it holds.

    An edited event (payload or metadata), a deleted or inserted one, two events whose versions or
    contents were swapped all break the hash chain; two events whose global positions were swapped
    keep it but break the order of positions. Deleting a stream's last event leaves no trace here
    (re-execution and the other checks see it where it matters).
    """
    if _chain_holds(records):
        return _out_of_global_order(records)
    link = verify_chain(stream_id, map(_ChainView, records))
    if link is None:
        return _out_of_global_order(records)
    record = next(r for r in records if r.stream_version == link.stream_version and r.event_id == link.event_id)
    return finding_at(HASH_CHAIN, record, link.reason)


def check_hash_chains(log: AuditLog) -> list[Finding]:
    """One finding per stream whose hash chain does not hold, at its first broken link."""
    findings = []
    for schema in sorted(log.by_schema):
        for stream_id, records in streams_of(log.by_schema[schema]).items():
            finding = stream_break(stream_id, records)
            if finding is not None:
                findings.append(finding)
    return findings


# ================================================================ unique events


def check_unique_event_ids(log: AuditLog) -> list[Finding]:
    """Every event id names one event across all schemas: a repeat is a copied or forged event."""
    first: dict[str, Record] = {}
    findings = []
    for record in log.records():
        earlier = first.setdefault(record.event_id.lower(), record)
        if earlier is not record:
            findings.append(finding_at(DUPLICATE_EVENT, record, f"event id {record.event_id} is already used by {earlier.place}"))
    return findings


# ================================================================ reading payloads


def _quantity(value: Any) -> Decimal:
    """An exact finite decimal from a JSON payload (decimals travel as strings)."""
    if isinstance(value, bool) or isinstance(value, float):
        raise TypeError(f"not an exact quantity: {value!r}")
    quantity = DECIMAL_CONTEXT.create_decimal(str(value))
    if not quantity.is_finite():
        raise ValueError(f"not a finite quantity: {value!r}")
    return quantity


def _optional_quantity(value: Any) -> Decimal | None:
    return None if value is None else _quantity(value)


def _fen(value: Any) -> int:
    """Money in whole fen: an int, never a bool, a float or a string."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"not a whole number of fen: {value!r}")
    return value


def _add(total: dict[Any, Decimal], key: Any, quantity: Decimal) -> Decimal:
    total[key] = DECIMAL_CONTEXT.add(total.get(key, _ZERO), quantity)
    return total[key]


def _revenue(quantity: Decimal, unit_price_fen: int) -> int:
    """Quantity x unit price, rounded half-to-even to whole fen (matching-rules.md, Money)."""
    exact = DECIMAL_CONTEXT.multiply(quantity, Decimal(unit_price_fen))
    return int(exact.quantize(_ONE_FEN, rounding=ROUND_HALF_EVEN, context=DECIMAL_CONTEXT))


def _shares(value: Any) -> dict[str, int]:
    if not isinstance(value, dict):
        raise TypeError(f"household shares must be a mapping, got {value!r}")
    return {household: _fen(fen) for household, fen in value.items()}


def _weights(contributions: Iterable[dict[str, Any]]) -> tuple[tuple[str, Decimal], ...]:
    return tuple((c["household_id"], _quantity(c["quantity"])) for c in contributions)


# ================================================================ the terms the journal set


@dataclass(frozen=True, slots=True)
class _LotTerms:
    """What a journaled HarvestRecorded promised: how much, of what, from whom, from when."""

    lot_id: str
    cooperative_id: str
    product: str
    grade: str
    quantity: Decimal
    available_from: date
    weights: tuple[tuple[str, Decimal], ...]

    @classmethod
    def read(cls, fact: dict[str, Any]) -> _LotTerms:
        return cls(
            fact["lot_id"],
            fact["cooperative_id"],
            fact["product"],
            fact["grade"],
            _quantity(fact["quantity"]),
            date.fromisoformat(fact["available_from"]),
            _weights(fact["contributions"]),
        )


@dataclass(frozen=True, slots=True)
class _OrderTerms:
    """What a journaled OrderPlaced asked for: how much, at what limit price."""

    quantity: Decimal
    limit_price_fen: int

    @classmethod
    def read(cls, fact: dict[str, Any]) -> _OrderTerms:
        return cls(_quantity(fact["quantity"]), _fen(fact["limit_price_fen"]))


@dataclass(frozen=True, slots=True)
class _CommitmentTerms:
    """What a journaled CommitmentMade guaranteed: floor, reference market, start, cap, per-mu limit."""

    floor_price_fen: int
    reference_market: str
    valid_from: date
    cap_quantity: Decimal | None
    max_quantity_per_mu: Decimal | None

    @classmethod
    def read(cls, fact: dict[str, Any]) -> _CommitmentTerms:
        return cls(
            _fen(fact["floor_price_fen"]),
            fact["reference_market"],
            date.fromisoformat(fact["valid_from"]),
            _optional_quantity(fact["cap_quantity"]),
            _optional_quantity(fact["max_quantity_per_mu"]),
        )


class _PriceSeries:
    """Observations of one product and grade at one market: the latest on or before a date wins,
    and of two on the same date the one later in the journal."""

    __slots__ = ("_dates", "_price_on")

    def __init__(self) -> None:
        self._dates: list[date] = []
        self._price_on: dict[date, int] = {}

    def observe(self, observed_on: date, price_fen: int) -> None:
        if observed_on not in self._price_on:
            insort(self._dates, observed_on)
        self._price_on[observed_on] = price_fen  # a later journal entry on the same date wins

    def as_of(self, day: date) -> int | None:
        index = bisect_right(self._dates, day)
        return self._price_on[self._dates[index - 1]] if index else None


# ================================================================ fills against the journal


@dataclass
class _FillTotals:
    """What the recorded fills of one (lot, outlet) pair are worth: settlement pays and delivers against it."""

    quantity: Decimal = _ZERO
    revenue_fen: int = 0


class _MarketInvariants:
    """Walks one product's matching stream: takes the terms each journal entry sets, and checks each
    recorded FillMade against them, without the matcher's Book."""

    def __init__(self, product: str, findings: list[Finding], pairs: dict[tuple[str, str], _FillTotals]) -> None:
        self.product = product
        self.findings = findings
        self.pairs = pairs
        self.lots: dict[str, _LotTerms] = {}
        self.orders: dict[str, _OrderTerms] = {}
        self.commitments: dict[str, _CommitmentTerms] = {}
        self.cancelled: set[str] = set()
        self.planting_ids: set[str] = set()
        self.planted_mu: dict[str, Decimal] = {}
        self.prices: dict[tuple[str, str, str], _PriceSeries] = {}
        self.pending: Callable[[], None] | None = None
        self.lot_filled: dict[str, Decimal] = {}
        self.order_filled: dict[str, Decimal] = {}
        self.commitment_filled: dict[str, Decimal] = {}
        self.sold_under: dict[tuple[str, str], Decimal] = {}

    def violation(self, record: Record, message: str) -> None:
        self.findings.append(finding_at(INVARIANT, record, message))

    def run(self, records: list[Record]) -> None:
        for record in records:
            if record.event_type == JOURNAL_ENTRY:
                self._take_entry(record)
            elif record.event_type == FILL_MADE:
                try:
                    self._check_fill(record)
                except _MALFORMED as error:
                    self.violation(record, f"FillMade payload cannot be checked: {error!r}")

    # -- the journal

    def _take_entry(self, entry: Record) -> None:
        """Learn the terms an input sets. Prices and plantings count only from the next entry on:
        they change no match of their own entry (a fill after one is forged anyway)."""
        if self.pending is not None:
            self.pending()
            self.pending = None
        try:
            self._read(entry.payload["source_event_type"], entry.payload["fact"])
        except _MALFORMED:
            pass  # re-execution reports an entry the matcher could not read

    def _read(self, kind: str, fact: dict[str, Any]) -> None:
        if kind == "HarvestRecorded":
            self.lots.setdefault(fact["lot_id"], _LotTerms.read(fact))  # a repeated id is ignored by the matcher
        elif kind == "OrderPlaced":
            self.orders.setdefault(fact["order_id"], _OrderTerms.read(fact))
        elif kind == "CommitmentMade":
            self.commitments.setdefault(fact["commitment_id"], _CommitmentTerms.read(fact))
        elif kind == "OrderCancelled":
            if fact["order_id"] in self.orders:  # a cancellation before its order is not remembered
                self.cancelled.add(fact["order_id"])
        elif kind == "MarketPriceObserved":
            key = (fact["product"], fact["grade"], fact["market"])
            observed_on, price = date.fromisoformat(fact["observed_on"]), _fen(fact["price_fen"])
            self.pending = lambda: self.prices.setdefault(key, _PriceSeries()).observe(observed_on, price)
        elif kind == "PlantingRecorded":
            planting_id, cooperative_id, area = fact["planting_id"], fact["cooperative_id"], _quantity(fact["area_mu"])
            self.pending = lambda: self._plant(planting_id, cooperative_id, area)

    def _plant(self, planting_id: str, cooperative_id: str, area_mu: Decimal) -> None:
        if planting_id not in self.planting_ids:  # a repeated planting id is ignored by the matcher
            self.planting_ids.add(planting_id)
            _add(self.planted_mu, cooperative_id, area_mu)

    # -- a recorded fill

    def _check_fill(self, record: Record) -> None:
        p = record.payload
        quantity, price, revenue = _quantity(p["quantity"]), _fen(p["unit_price_fen"]), _fen(p["revenue_fen"])
        lot_id, kind, outlet_id, basis = p["lot_id"], p["outlet_kind"], p["outlet_id"], p["price_basis"]
        totals = self.pairs.setdefault((lot_id, outlet_id), _FillTotals())
        totals.quantity = DECIMAL_CONTEXT.add(totals.quantity, quantity)
        totals.revenue_fen += revenue
        if quantity <= 0:
            self.violation(record, f"fill quantity {_q(quantity)} is not positive")
        lot = self.lots.get(lot_id)
        if lot is None:
            self.violation(record, f"fill of lot {lot_id}, which no journal entry before it recorded")
        else:
            self._check_lot(record, lot, quantity)
        if kind == "order":
            self._check_order_fill(record, outlet_id, quantity, price, basis)
        elif kind == "commitment":
            self._check_commitment_fill(record, lot, outlet_id, quantity, price, basis)
        else:
            self.violation(record, f"outlet_kind {kind!r} is neither order nor commitment")
        self._check_money(record, lot, quantity, price, revenue, _shares(p["household_income_fen"]))

    def _check_lot(self, record: Record, lot: _LotTerms, quantity: Decimal) -> None:
        """No lot sells more than was harvested."""
        filled = _add(self.lot_filled, lot.lot_id, quantity)
        if filled > lot.quantity:
            self.violation(
                record,
                f"lot {lot.lot_id} overfilled: its fills add up to {_q(filled)}, more than its quantity {_q(lot.quantity)}",
            )

    def _check_order_fill(self, record: Record, order_id: str, quantity: Decimal, price: int, basis: str) -> None:
        """An order takes no more than it asked for, nothing after its cancellation, and pays its limit price."""
        order = self.orders.get(order_id)
        if order is None:
            self.violation(record, f"fill to order {order_id}, which no journal entry before it placed")
            return
        filled = _add(self.order_filled, order_id, quantity)
        if filled > order.quantity:
            self.violation(
                record,
                f"order {order_id} overfilled: its fills add up to {_q(filled)}, more than its quantity {_q(order.quantity)}",
            )
        if order_id in self.cancelled:
            self.violation(record, f"fill to order {order_id} after it was cancelled")
        if (price, basis) != (order.limit_price_fen, "order_limit"):
            self.violation(
                record,
                f"order fill priced {price} fen ({basis}); the rule gives its limit price {order.limit_price_fen} fen (order_limit)",
            )

    def _check_commitment_fill(
        self, record: Record, lot: _LotTerms | None, commitment_id: str, quantity: Decimal, price: int, basis: str
    ) -> None:
        """A commitment stays within its cap and each cooperative's per-mu room, and pays max(floor, market)."""
        commitment = self.commitments.get(commitment_id)
        if commitment is None:
            self.violation(record, f"fill to commitment {commitment_id}, which no journal entry before it made")
            return
        filled = _add(self.commitment_filled, commitment_id, quantity)
        if commitment.cap_quantity is not None and filled > commitment.cap_quantity:
            self.violation(
                record,
                f"commitment {commitment_id} over its cap: its fills add up to {_q(filled)}, more than {_q(commitment.cap_quantity)}",
            )
        cooperative_id = lot.cooperative_id if lot is not None else record.payload["cooperative_id"]
        if commitment.max_quantity_per_mu is not None:
            self._check_per_mu(record, commitment, commitment_id, cooperative_id, quantity)
        if lot is not None:
            self._check_commitment_price(record, lot, commitment, price, basis)

    def _check_per_mu(
        self, record: Record, commitment: _CommitmentTerms, commitment_id: str, cooperative_id: str, quantity: Decimal
    ) -> None:
        """A cooperative sells under a commitment at most its planted area (before the fill) x the per-mu limit."""
        per_mu = commitment.max_quantity_per_mu
        assert per_mu is not None
        sold = _add(self.sold_under, (commitment_id, cooperative_id), quantity)
        planted = self.planted_mu.get(cooperative_id, _ZERO)
        room = DECIMAL_CONTEXT.multiply(planted, per_mu)
        if sold > room:
            self.violation(
                record,
                f"cooperative {cooperative_id} sold {_q(sold)} under commitment {commitment_id}, more than its per-mu room "
                f"{_q(room)} ({_q(planted)} mu planted before this fill x {_q(per_mu)} per mu)",
            )

    def _check_commitment_price(
        self, record: Record, lot: _LotTerms, commitment: _CommitmentTerms, price: int, basis: str
    ) -> None:
        """max(floor, market as of the later of the lot's availability and the commitment's start)."""
        as_of = max(lot.available_from, commitment.valid_from)
        series = self.prices.get((lot.product, lot.grade, commitment.reference_market))
        market = series.as_of(as_of) if series is not None else None
        if market is not None and market > commitment.floor_price_fen:
            expected = (market, "market")
        else:
            expected = (commitment.floor_price_fen, "floor")
        if (price, basis) != expected:
            self.violation(
                record,
                f"commitment fill priced {price} fen ({basis}); the rule gives {expected[0]} fen ({expected[1]}): "
                f"floor {commitment.floor_price_fen}, market {market} for grade {lot.grade} at {commitment.reference_market} "
                f"as of {as_of.isoformat()}",
            )

    def _check_money(
        self, record: Record, lot: _LotTerms | None, quantity: Decimal, price: int, revenue: int, shares: dict[str, int]
    ) -> None:
        """Revenue is quantity x price to the fen; the households' shares add up to it, split by largest remainder."""
        expected = _revenue(quantity, price)
        if revenue != expected:
            self.violation(record, f"revenue_fen {revenue}, but {_q(quantity)} x {price} fen rounded half-to-even is {expected}")
        total = sum(shares.values())
        if total != revenue:
            self.violation(record, f"household shares add up to {total} fen, not the fill's revenue {revenue} fen")
        elif lot is not None:
            split = dict(split_largest_remainder(revenue, lot.weights))
            if shares != split:
                self.violation(
                    record, f"household shares {_differing(shares, split)} are not the largest-remainder split of {revenue} fen"
                )


def _differing(shares: dict[str, int], split: dict[str, int]) -> str:
    """The households whose share differs: recorded vs what the split gives."""
    households = sorted(h for h in shares.keys() | split.keys() if shares.get(h) != split.get(h))
    return ", ".join(f"{h}: recorded {shares.get(h)}, split gives {split.get(h)}" for h in households)


# ================================================================ payments against fills


def _lot_contributions(log: AuditLog) -> dict[str, tuple[tuple[str, Decimal], ...]]:
    """Each lot's household contributions, from the cooperative schema's HarvestRecorded (the first for a lot)."""
    contributions: dict[str, tuple[tuple[str, Decimal], ...]] = {}
    for record in log.by_schema.get("cooperative", ()):
        if record.event_type == "HarvestRecorded":
            try:
                contributions.setdefault(record.payload["lot_id"], _weights(record.payload["contributions"]))
            except _MALFORMED:
                continue  # the hash chain or re-execution shows a damaged harvest
    return contributions


class _SettlementInvariants:
    """Walks the settlement schema: payments split right and within revenue, deliveries within quantity."""

    def __init__(self, log: AuditLog, findings: list[Finding], pairs: dict[tuple[str, str], _FillTotals]) -> None:
        self.log = log
        self.findings = findings
        self.pairs = pairs
        self.contributions = _lot_contributions(log)
        self.paid: dict[tuple[str, str], int] = {}
        self.delivered: dict[tuple[str, str], Decimal] = {}

    def violation(self, record: Record, message: str) -> None:
        self.findings.append(finding_at(INVARIANT, record, message))

    def run(self) -> None:
        for record in self.log.by_schema.get("settlement", ()):
            check = {"PaymentMade": self._check_payment, "DeliveryConfirmed": self._check_delivery}.get(record.event_type)
            if check is None:
                continue
            try:
                check(record)
            except _MALFORMED as error:
                self.violation(record, f"{record.event_type} payload cannot be checked: {error!r}")

    def _fill_of(self, record: Record, pair: tuple[str, str]) -> _FillTotals | None:
        totals = self.pairs.get(pair)
        if totals is None:
            self.violation(record, f"{record.event_type} for lot {pair[0]} to outlet {pair[1]}, for which no fill is recorded")
        return totals

    def _check_payment(self, record: Record) -> None:
        """A payment's shares add up to it and follow the lot's contributions; payments stay within revenue."""
        p = record.payload
        amount, shares, pair = _fen(p["amount_fen"]), _shares(p["household_income_fen"]), (p["lot_id"], p["outlet_id"])
        total = sum(shares.values())
        if total != amount:
            self.violation(record, f"household shares add up to {total} fen, not the amount paid {amount} fen")
        weights = self.contributions.get(pair[0])
        if weights is None:
            self.violation(record, f"no HarvestRecorded of lot {pair[0]} in the cooperative schema: its households are unknown")
        elif total == amount:
            split = dict(split_largest_remainder(amount, weights))
            if shares != split:
                self.violation(
                    record, f"household shares {_differing(shares, split)} are not the largest-remainder split of {amount} fen"
                )
        totals = self._fill_of(record, pair)
        if totals is not None:
            paid = self.paid[pair] = self.paid.get(pair, 0) + amount
            if paid > totals.revenue_fen:
                self.violation(
                    record,
                    f"payments for lot {pair[0]} to {pair[1]} add up to {paid} fen, more than the fill's revenue {totals.revenue_fen} fen",
                )

    def _check_delivery(self, record: Record) -> None:
        """Deliveries of a fill never add up to more than its quantity."""
        p = record.payload
        pair = (p["lot_id"], p["outlet_id"])
        quantity = _quantity(p["quantity"])
        totals = self._fill_of(record, pair)
        if totals is not None:
            delivered = _add(self.delivered, pair, quantity)
            if delivered > totals.quantity:
                self.violation(
                    record,
                    f"deliveries for lot {pair[0]} to {pair[1]} add up to {_q(delivered)}, more than the fill's {_q(totals.quantity)}",
                )


# ================================================================ all invariants


def check_invariants(log: AuditLog, reexecution: ReExecution) -> list[Finding]:
    """The promises of matching-rules.md, checked on the RECORDED fills and payments against the journal's
    terms, independently of the matcher's Book (re-execution only lends its grouping of the streams):

    no lot, order or commitment (cap) overfilled; per-mu room respected; order fills at their limit
    price, commitment fills at max(floor, market as of their date) with the right basis; revenue to
    the fen and shared out to the households by largest remainder; each payment split the same way
    over the lot's contributions and within the fill's revenue; deliveries within the fill's quantity.
    """
    findings, pairs = check_market_invariants(reexecution.streams)
    return findings + check_settlement_invariants(log, pairs)


FillTotals = dict[tuple[str, str], "_FillTotals"]
"""Quantity and revenue recorded per (lot, outlet): what payments and deliveries are checked against."""


def check_market_invariants(streams: dict[str, list[Record]]) -> tuple[list[Finding], FillTotals]:
    """The invariants of some products' matching streams (keyed by product), and their fill totals.
    Products are independent (a lot, order or commitment belongs to one product), so shares of them
    can be checked in separate processes and their totals merged."""
    findings: list[Finding] = []
    pairs: FillTotals = {}
    for product, records in streams.items():
        _MarketInvariants(product, findings, pairs).run(records)
    return findings, pairs


def check_settlement_invariants(log: AuditLog, pairs: FillTotals) -> list[Finding]:
    """Payments and deliveries of the settlement schema against the recorded fills' totals."""
    findings: list[Finding] = []
    _SettlementInvariants(log, findings, pairs).run()
    return findings
