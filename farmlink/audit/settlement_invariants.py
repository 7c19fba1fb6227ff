"""The invariants of the settlement schema: each payment split by the lot's contributions and within the fill's
revenue, deliveries within the fill's quantity (`invariant`)."""

from __future__ import annotations

from collections.abc import Iterable
from decimal import Decimal
from typing import Any

from farmlink.audit.amounts import (
    INVARIANT,
    MALFORMED,
    FillTotals,
    PairTotals,
    add_to,
    differing,
    fen_of,
    quantity_of,
    shares_of,
    weights_of,
)
from farmlink.audit.model import AuditLog, Finding, Record, finding_at
from matcher.money import split_largest_remainder
from matcher.output import quantity_text as _q


class Contributions(dict[str, tuple[tuple[str, Decimal], ...]]):
    """Each lot's household contributions (the first HarvestRecorded of the lot), each household id held once
    however many lots name it."""

    def __init__(self) -> None:
        super().__init__()
        self.shared: dict[Any, Any] = {}

    def one(self, value: Any) -> Any:
        return self.shared.setdefault(value, value)


def add_contributions(contributions: Contributions, records: Iterable[Record]) -> None:
    """Each lot's household contributions, from the cooperative schema's HarvestRecorded (the first for a lot)."""
    for record in records:
        if record.event_type == "HarvestRecorded":
            try:
                lot_id = record.payload["lot_id"]
                if lot_id not in contributions:
                    weights = weights_of(record.payload["contributions"])
                    contributions[lot_id] = tuple((contributions.one(h), q) for h, q in weights)
            except MALFORMED:
                continue  # the hash chain or re-execution shows a damaged harvest


class SettlementInvariants:
    """Walks the settlement schema (fed in global order, a batch at a time): payments split right and within
    revenue, deliveries within quantity."""

    def __init__(self, contributions: Contributions, findings: list[Finding], pairs: dict[tuple[str, str], PairTotals]) -> None:
        self.findings = findings
        self.pairs = pairs
        self.contributions = contributions
        self.paid: dict[tuple[str, str], int] = {}
        self.delivered: dict[tuple[str, str], Decimal] = {}

    def violation(self, record: Record, message: str) -> None:
        self.findings.append(finding_at(INVARIANT, record, message))

    def feed(self, records: Iterable[Record]) -> None:
        for record in records:
            check = {"PaymentMade": self._check_payment, "DeliveryConfirmed": self._check_delivery}.get(record.event_type)
            if check is None:
                continue
            try:
                check(record)
            except MALFORMED as error:
                self.violation(record, f"{record.event_type} payload cannot be checked: {error!r}")

    def _fill_of(self, record: Record, pair: tuple[str, str]) -> PairTotals | None:
        totals = self.pairs.get(pair)
        if totals is None:
            self.violation(record, f"{record.event_type} for lot {pair[0]} to outlet {pair[1]}, for which no fill is recorded")
        return totals

    def _check_payment(self, record: Record) -> None:
        """A payment's shares add up to it and follow the lot's contributions; payments stay within revenue."""
        p = record.payload
        amount, shares, pair = fen_of(p["amount_fen"]), shares_of(p["household_income_fen"]), (p["lot_id"], p["outlet_id"])
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
                    record, f"household shares {differing(shares, split)} are not the largest-remainder split of {amount} fen"
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
        quantity = quantity_of(p["quantity"])
        totals = self._fill_of(record, pair)
        if totals is not None:
            delivered = add_to(self.delivered, pair, quantity)
            if delivered > totals.quantity:
                self.violation(
                    record,
                    f"deliveries for lot {pair[0]} to {pair[1]} add up to {_q(delivered)}, more than the fill's {_q(totals.quantity)}",
                )


def check_settlement_invariants(log: AuditLog, pairs: FillTotals) -> list[Finding]:
    """Payments and deliveries of the settlement schema against the recorded fills' totals."""
    findings: list[Finding] = []
    contributions = Contributions()
    add_contributions(contributions, log.by_schema.get("cooperative", ()))
    SettlementInvariants(contributions, findings, pairs).feed(log.by_schema.get("settlement", ()))
    return findings
