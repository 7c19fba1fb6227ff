"""The audit's machine-readable output (`farmlink audit --json`), versioned: a finance bureau's system
ingests it, so a published version never changes shape. Version 1's JSON Schema is committed as
`contracts/reports/audit-findings.v1.json` (`export_audit_schema` writes it; a unit test checks
the committed file equals these models).

Every finding carries a stable code naming the check that found it (FINDING_CODES): codes are
never reused or renumbered; a new check gets a new code.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Final, Literal

from pydantic import BaseModel, ConfigDict, Field

AUDIT_FORMAT: Final = "farmlink.audit"
AUDIT_FORMAT_VERSION: Final = 1
AUDIT_SCHEMA_PATH = Path(__file__).parent / "reports" / f"audit-findings.v{AUDIT_FORMAT_VERSION}.json"

FINDING_CODES: dict[str, str] = {
    "hash_chain": "AUD001",  # a stream's hash chain broken: an event edited, deleted, inserted, swapped or moved
    "duplicate_event": "AUD002",  # one event id used by two events
    "signature": "AUD003",  # a cooperative or buyer event without a valid signed input, or differing from it
    "re_execution": "AUD004",  # the matcher run again decides otherwise than the log records
    "invariant": "AUD005",  # a recorded fill or payment breaks a promise of matching-rules.md
    "snapshot": "AUD006",  # a matching snapshot that disagrees with re-execution or cannot be read
    "reconciliation": "AUD007",  # the store, the topics and the journal disagree
    "checkpoint": "AUD008",  # the log up to an auditor's checkpoint is not what the checkpoint vouched for
    "digest": "AUD009",  # the log does not extend a digest a third party holds
    "supervision": "AUD010",  # a supervision round recorded other problems found or cured than the log shows
}
"""Check name -> stable finding code."""

Check = Literal[
    "hash_chain",
    "duplicate_event",
    "signature",
    "re_execution",
    "invariant",
    "snapshot",
    "reconciliation",
    "checkpoint",
    "digest",
    "supervision",
]


class _Strict(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class AuditFindingV1(_Strict):
    """One thing the audit found wrong, and exactly where."""

    code: str = Field(pattern=r"^AUD[0-9]{3}$", description="stable code of the check (FINDING_CODES)")
    check: Check = Field(description="the check that found it")
    where: str = Field(description="where it sits, for people: schema/stream@version (position, event id), a topic place, ...")
    message: str = Field(description="what is wrong, for people")
    schema_name: str | None = Field(
        None, alias="schema", description="the service schema: cooperative, buyer, market, matching, settlement"
    )
    stream_id: str | None = None
    stream_version: int | None = Field(None, ge=1)
    global_position: int | None = Field(None, ge=1)
    event_id: str | None = None


class CheckpointUse(_Strict):
    """What an incremental audit (`--since`) took from its checkpoint."""

    positions: dict[str, int] = Field(description="the checkpoint's last audited global position per schema")
    events_before: int = Field(ge=0, description="events at or before those positions: chains checked, not re-verified")
    events_after: int = Field(ge=0, description="events after them: audited in full")


class AuditOutputV1(_Strict):
    """`farmlink audit --json`, version 1: the verdict, the figures and every finding."""

    format: Literal["farmlink.audit"] = AUDIT_FORMAT
    format_version: Literal[1] = AUDIT_FORMAT_VERSION
    clean: bool = Field(description="true when there is no finding")
    source: Literal["postgres", "kafka"]
    events_audited: int = Field(ge=0)
    journal_inputs: int = Field(ge=0, description="journal entries re-executed")
    fills: int = Field(ge=0, description="fills the re-execution made")
    finding_count: int = Field(ge=0)
    reconciled_with_kafka: bool
    state_hash: str = Field(pattern=r"^[0-9a-f]{64}$", description="sha256 of the re-executed market (fills and final books)")
    seconds: dict[str, float] = Field(description="wall-clock seconds per phase")
    workers: int = Field(ge=1, description="worker processes of the costly checks")
    worker_cpu_seconds: dict[str, float] = Field(description="CPU seconds the workers spent per check")
    since_checkpoint: CheckpointUse | None = None
    findings: list[AuditFindingV1]
    as_of: dict[str, Any] | None = Field(None, description="the market as known at a matching-log position (--as-of)")


def audit_schema() -> dict[str, Any]:
    """The JSON Schema of version 1 of the audit's output, as the models define it."""
    schema = AuditOutputV1.model_json_schema(mode="serialization", by_alias=True)
    schema["$id"] = f"https://farmlink.example/contracts/reports/{AUDIT_SCHEMA_PATH.name}"
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    return schema


def render_audit_schema() -> str:
    return json.dumps(audit_schema(), indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def export_audit_schema(path: Path = AUDIT_SCHEMA_PATH) -> Path:
    """Write the committed schema file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render_audit_schema(), encoding="utf-8")
    return path
