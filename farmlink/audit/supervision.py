"""The supervision ledger, re-derived: each supervision round the pairing service evaluated recorded what the
ledger's rules opened (`ProblemFound`) and cured (`ProblemCured`) over the facts it saw; the audit derives the
ledger from the log (farmlink/ledger.py, the same pure rules) and reports every difference: a problem the log
shows a round should have opened or cured that it did not record (a deleted event), one it recorded that the log
does not show (an inserted one), one recorded otherwise (an edited reason, owner or evidence), and a round whose
recorded cut-off the log contradicts (a fact it saw gone, or one below its cut-off that came later)."""

from __future__ import annotations

from typing import Any

from farmlink.audit.model import AuditLog, Finding, Record, finding_at
from farmlink.office.ledger import ROUND_EVALUATED, Change, cured_change, derive, found_change
from services.pairing.rules import Problem

CHECK = "supervision"


def recorded_change(record: Record) -> Change | None:
    """What a recorded ProblemFound or ProblemCured event says a round changed."""
    p = record.payload
    if record.event_type == "ProblemCured":
        return cured_change(p["round_id"], p["problem_id"], p["evidence"])
    if record.event_type == "ProblemFound":
        problem = Problem(
            p["problem_id"], p["kind"], p["township"], p["owner_team"], p["subject"], p["reason"], "", list(p["evidence"])
        )
        return found_change(p["round_id"], problem)
    return None


def _differences(recorded: Change, derived: Change) -> str:
    theirs: dict[str, Any] = dict(derived.fields)
    return "; ".join(
        f"{name}: recorded {value!r}, the log shows {theirs.get(name)!r}"
        for name, value in recorded.fields
        if theirs.get(name) != value
    )


def check_supervision(log: AuditLog) -> list[Finding]:
    """Every difference between the problems the evaluated rounds recorded and those the log shows."""
    pairing = log.by_schema.get("pairing", [])
    if not any(r.event_type == ROUND_EVALUATED for r in pairing):
        return []
    ledger = derive(log)
    findings = [finding_at(CHECK, record, problem) for record, problem in ledger.unseen]
    rounds = {r.payload["round_id"]: r for r in pairing if r.event_type == ROUND_EVALUATED}
    recorded: dict[tuple[str, str, str], tuple[Record, Change]] = {}
    for record in pairing:
        change = recorded_change(record)
        if change is not None:
            recorded[(change.round_id, change.action, change.problem_id)] = (record, change)
    for change in ledger.changes:
        key = (change.round_id, change.action, change.problem_id)
        if key not in recorded:
            findings.append(
                finding_at(
                    CHECK,
                    rounds[change.round_id],
                    f"the log shows round {change.round_id} {change.action} problem {change.problem_id}; it recorded no such event",
                )
            )
            continue
        record, mine = recorded.pop(key)
        if mine != change:
            findings.append(
                finding_at(
                    CHECK,
                    record,
                    f"problem {change.problem_id} {change.action} otherwise than the log shows: {_differences(mine, change)}",
                )
            )
    for (round_id, action, problem_id), (record, _) in sorted(recorded.items()):
        findings.append(
            finding_at(CHECK, record, f"round {round_id} recorded problem {problem_id} {action}; the log does not show it")
        )
    return findings
