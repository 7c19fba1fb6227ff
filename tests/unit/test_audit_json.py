"""`farmlink audit --json` is version 1 of a documented format: the committed JSON Schema is the
models', the output validates against it, and every check has its stable finding code."""

from __future__ import annotations

import asyncio
import dataclasses
import json

import jsonschema
import pytest

from contracts.audit import AUDIT_SCHEMA_PATH, FINDING_CODES, render_audit_schema
from farmlink.audit.output import audit_output
from farmlink.audit.run import audit_log
from tests.unit.test_audit_checkpoints import season

pytestmark = pytest.mark.unit

SCHEMA = json.loads(AUDIT_SCHEMA_PATH.read_text(encoding="utf-8"))


def test_the_committed_schema_is_the_one_the_models_give():
    assert AUDIT_SCHEMA_PATH.read_text(encoding="utf-8") == render_audit_schema(), (
        "run `python -c 'from contracts.audit import export_audit_schema; export_audit_schema()'` and commit the file; "
        "a published version never changes shape: a breaking change is format version 2"
    )


def test_finding_codes_are_stable():
    assert FINDING_CODES == {
        "hash_chain": "AUD001",
        "duplicate_event": "AUD002",
        "signature": "AUD003",
        "re_execution": "AUD004",
        "invariant": "AUD005",
        "snapshot": "AUD006",
        "reconciliation": "AUD007",
        "checkpoint": "AUD008",
        "digest": "AUD009",
        "supervision": "AUD010",
    }


def test_a_clean_audits_output_validates_against_the_schema():
    output = audit_output(asyncio.run(audit_log(season(2000), "postgres", workers=1)))
    jsonschema.validate(output, SCHEMA)
    assert output["format"] == "farmlink.audit" and output["format_version"] == 1 and output["clean"] and output["findings"] == []


def test_findings_carry_their_code_and_place_and_validate():
    log = season(2000)
    rows = log.by_schema["cooperative"]
    index = next(i for i, r in enumerate(rows) if r.event_type == "HarvestRecorded")
    grade = "A" if rows[index].payload["grade"] != "A" else "B"
    rows[index] = dataclasses.replace(rows[index], payload={**rows[index].payload, "grade": grade})
    output = audit_output(asyncio.run(audit_log(log, "postgres", workers=1)))
    jsonschema.validate(output, SCHEMA)
    codes = {finding["check"]: finding["code"] for finding in output["findings"]}
    assert codes["hash_chain"] == "AUD001" and codes["signature"] == "AUD003"
    chain = next(f for f in output["findings"] if f["check"] == "hash_chain")
    assert chain["schema"] == "cooperative" and chain["event_id"] == rows[index].event_id
    assert output["finding_count"] == len(output["findings"]) and not output["clean"]
