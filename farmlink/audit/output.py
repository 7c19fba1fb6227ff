"""`farmlink audit --json`: the result as version 1 of the documented format (contracts/audit.py,
contracts/reports/audit-findings.v1.json), checked against its model before it is printed."""

from __future__ import annotations

from typing import Any

from contracts.audit import AuditOutputV1


def audit_output(result: Any, as_of: dict[str, Any] | None = None) -> dict[str, Any]:
    """The JSON object of an AuditResult (and the --as-of view), as the format's version 1."""
    summary = result.summary()
    output = AuditOutputV1.model_validate(
        {
            **{
                name: summary[name]
                for name in (
                    "clean",
                    "source",
                    "events_audited",
                    "journal_inputs",
                    "fills",
                    "state_hash",
                    "seconds",
                    "workers",
                    "worker_cpu_seconds",
                )
            },
            "reconciled_with_kafka": summary["reconciled_with_kafka"],
            "finding_count": len(result.findings),
            "since_checkpoint": summary.get("since_checkpoint"),
            "findings": [finding.as_dict() for finding in result.findings],
            "as_of": as_of,
        }
    )
    return output.model_dump(mode="json", by_alias=True, exclude_none=True)
