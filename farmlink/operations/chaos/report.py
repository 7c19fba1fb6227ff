"""The chaos run's report and its proofs: `Recovery` (one fault's heal), `ChaosReport` (what the run counted and
whether it is ok), and `ProofMixin._verify`, which counts from the services' own tables and the matcher's journal
what was lost or done twice, reads the fills topic, and audits PostgreSQL against a replay of Kafka.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from contracts.inputs import JOURNALED_EVENT_TYPES
from farmlink.operations.chaos.wire import INPUT_SERVICES


SOURCE_SCHEMAS = ("cooperative", "buyer", "market")


@dataclass
class Recovery:
    """How long one fault took to heal: the component back, and the first new outcome after it (from the fault;
    for a fault held on purpose, `held_s`, from its heal); `notes`: what the fault did meanwhile."""

    fault: str
    back_s: float | None
    first_outcome_s: float | None = None
    held_s: float | None = None
    notes: dict[str, Any] = field(default_factory=dict)


@dataclass
class ChaosReport:
    events: int = 0
    sent_by_service: dict[str, int] = field(default_factory=dict)
    outcomes: int = 0
    lost: int = 0
    lost_examples: list[str] = field(default_factory=list)
    journal_missing: int = 0
    journal_duplicates: int = 0
    fills: int = 0
    duplicate_fills: int = 0
    settled_fills: int = 0
    fills_on_kafka: int = 0
    fill_redeliveries_on_kafka: int = 0
    payments: int = 0
    duplicate_payments: int = 0
    paid_fen: int = 0
    income_fen: int = 0
    send_retries: int = 0
    send_waits: int = 0  # records handed to a producer again while the broker had no leader (not sent: no resend)
    fault_count: dict[str, int] = field(default_factory=dict)
    unplanned_restarts: dict[str, int] = field(default_factory=dict)
    recoveries: list[Recovery] = field(default_factory=list)
    audit_clean: bool = False
    audit_findings: list[str] = field(default_factory=list)
    state_hash_postgres: str = ""
    state_hash_kafka: str = ""
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return (
            self.lost == 0
            and self.journal_missing == 0
            and self.journal_duplicates == 0
            and self.duplicate_fills == 0
            and self.settled_fills == self.fills
            and self.duplicate_payments == 0
            and self.paid_fen == self.income_fen
            and self.audit_clean
            and self.state_hash_postgres == self.state_hash_kafka
        )

    def as_dict(self) -> dict[str, Any]:
        data = {k: v for k, v in self.__dict__.items() if k != "recoveries"}
        data["recoveries"] = [r.__dict__ for r in self.recoveries]
        data["ok"] = self.ok
        return data


class ProofMixin:
    """The proofs of `ChaosRun` (farmlink/operations/chaos/run.py), run after the last input has its outcome; they use the
    run's `config`, `report`, `run_id`, `workload`, `sent` and `_db`."""

    async def _verify(self) -> None:
        """Count, from the services' own tables, what was lost or done twice; then audit."""
        from farmlink.audit.run import audit

        report = self.report
        conn = await self._db()
        try:
            await self._count_lost(conn)
            await self._count_journal(conn)
            await self._count_money(conn)
        finally:
            await conn.close()

        report.fills_on_kafka, report.fill_redeliveries_on_kafka = await self._fill_copies_on_kafka()
        from_postgres = await audit(self.config.bootstrap, self.config.dsn, "postgres", reconcile_kafka=True)
        from_kafka = await audit(self.config.bootstrap, self.config.dsn, "kafka", reconcile_kafka=False)
        report.audit_clean = from_postgres.clean and from_kafka.clean and not report.audit_findings
        report.audit_findings += [str(f) for f in (from_postgres.findings + from_kafka.findings)[:10]]
        report.state_hash_postgres, report.state_hash_kafka = from_postgres.state_hash, from_kafka.state_hash

    async def _count_lost(self, conn: Any) -> None:
        """Inputs sent that no owning service's inbox holds."""
        report = self.report
        prefix = f"{self.run_id}-"
        seen: set[str] = set()
        for service in INPUT_SERVICES:
            rows = await conn.fetch(
                f'SELECT message_id FROM "{service}".inbox WHERE consumer = $1 AND message_id LIKE $2', service, prefix + "%"
            )
            seen |= {r["message_id"] for r in rows}
        expected = {self.workload.message_id(n) for n in range(self.sent)}
        missing = sorted(expected - seen)
        report.outcomes, report.lost, report.lost_examples = len(expected & seen), len(missing), missing[:5]

    async def _count_journal(self, conn: Any) -> None:
        """Source events the matching journal misses or holds twice."""
        recorded: list[str] = []
        for schema in SOURCE_SCHEMAS:
            recorded += [
                str(r["event_id"])
                for r in await conn.fetch(
                    f'SELECT event_id FROM "{schema}".events WHERE event_type = ANY($1::text[])', list(JOURNALED_EVENT_TYPES)
                )
            ]
        journaled = [
            r["source"]
            for r in await conn.fetch(
                "SELECT payload->>'source_event_id' AS source FROM matching.events WHERE event_type = 'InputJournaled'"
            )
        ]
        self.report.journal_missing = len(set(recorded) - set(journaled))
        self.report.journal_duplicates = len(journaled) - len(set(journaled))

    async def _count_money(self, conn: Any) -> None:
        """Fills and payments made twice, and whether the fen paid, settled and credited agree."""
        report = self.report
        fills = await conn.fetch("SELECT payload->>'fill_id' AS fill_id FROM matching.events WHERE event_type = 'FillMade'")
        report.fills = len(fills)
        report.duplicate_fills = len(fills) - len({r["fill_id"] for r in fills})
        report.settled_fills = await conn.fetchval("SELECT count(*) FROM settlement.fills")
        payments = await conn.fetch(
            "SELECT causation_id, (payload->>'amount_fen')::bigint AS fen FROM settlement.events WHERE event_type = 'PaymentMade'"
        )
        report.payments = len(payments)
        report.duplicate_payments = len(payments) - len({r["causation_id"] for r in payments})
        report.paid_fen = sum(r["fen"] for r in payments)
        report.income_fen = int(await conn.fetchval("SELECT coalesce(sum(paid_fen), 0) FROM settlement.incomes"))
        paid_on_fills = int(await conn.fetchval("SELECT coalesce(sum(paid_fen), 0) FROM settlement.fills"))
        if paid_on_fills != report.paid_fen:
            report.audit_findings.append(f"settlement.fills says {paid_on_fills} fen paid, PaymentMade events {report.paid_fen}")

    async def _fill_copies_on_kafka(self) -> tuple[int, int]:
        """FillMade records on the fills topic as read_committed readers see them, and how many repeat an
        event already there (none, when the relay's transactions and checkpoints do their work)."""
        from contracts.topics import FILLS
        from farmlink.audit.log import read_kafka_copies

        copies = await read_kafka_copies(self.config.bootstrap, topics=(FILLS,))
        ids = [c.record.event_id for c in copies if c.record is not None]
        return len(ids), len(ids) - len(set(ids))
