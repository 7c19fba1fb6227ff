"""The AsyncAPI document buyer systems read is generated from the code, committed as generated,
valid AsyncAPI 3.0, and names every topic, input, event and principal."""

import copy
import json
from pathlib import Path

import jsonschema
import pytest
import yaml

from contracts.inputs import INPUT_KINDS
from contracts.registry import EVENT_KINDS
from contracts.topics import PARTY_TOPIC_KINDS, PARTY_TOPIC_PREFIX, TOPICS
from events.access import PRINCIPALS
from farmlink.asyncapi import document, render

pytestmark = pytest.mark.unit

COMMITTED = Path(__file__).parents[2] / "contracts" / "asyncapi.yaml"
SPEC = json.loads((Path(__file__).parents[1] / "data" / "asyncapi-3.0.0.schema.json").read_text())


def spec_problems(doc: dict) -> list[str]:
    validator = jsonschema.validators.validator_for(SPEC)(SPEC)
    return [f"{'/'.join(map(str, error.path))}: {error.message}" for error in validator.iter_errors(doc)]


def refs(node) -> list[str]:
    if isinstance(node, dict):
        return ([node["$ref"]] if isinstance(node.get("$ref"), str) else []) + [r for v in node.values() for r in refs(v)]
    if isinstance(node, list):
        return [r for v in node for r in refs(v)]
    return []


def resolve(doc: dict, ref: str):
    node = doc
    for part in ref.removeprefix("#/").split("/"):
        node = node[part.replace("~1", "/").replace("~0", "~")]
    return node


def test_the_committed_document_is_what_the_code_generates():
    assert COMMITTED.read_text(encoding="utf-8") == render(), (
        "run `farmlink contracts asyncapi` and commit contracts/asyncapi.yaml"
    )


def test_the_document_is_valid_asyncapi_3():
    assert spec_problems(yaml.safe_load(COMMITTED.read_text(encoding="utf-8"))) == []


def test_the_validation_would_notice_a_broken_document():
    broken = copy.deepcopy(document())
    broken["channels"]["receipts"]["messages"]["receipt"] = {"payload": "not a schema", "bindings": 3}
    assert spec_problems(broken)


def test_every_reference_in_the_document_resolves():
    doc = document()
    for ref in refs(doc):
        assert ref.startswith("#/"), ref
        resolve(doc, ref)


def test_every_topic_input_event_and_principal_is_in_the_document():
    doc = document()
    party_channels = {f"{PARTY_TOPIC_PREFIX}{kind}.{{token}}" for kind in PARTY_TOPIC_KINDS}
    assert {c["address"] for c in doc["channels"].values()} == {t.name for t in TOPICS} | party_channels
    names = {m["name"] for m in doc["components"]["messages"].values()}
    assert {k.type for k in INPUT_KINDS} <= names
    assert {m.event_type for m, _ in EVENT_KINDS} <= names
    granted = (
        {(p.name, "send", t) for p in PRINCIPALS for t in p.write}
        | {(p.name, "receive", t) for p in PRINCIPALS for t in p.read}
        | {(f"{kind}.<token>", "receive", f"{PARTY_TOPIC_PREFIX}{kind}.{{token}}") for kind in PARTY_TOPIC_KINDS}
    )
    documented = {
        (o["title"].split(" ")[0], o["action"], resolve(doc, o["channel"]["$ref"])["address"]) for o in doc["operations"].values()
    }
    assert documented == granted


def test_event_payloads_are_described_as_the_wire_carries_them_with_decimals_as_strings():
    schemas = document()["components"]["schemas"]
    fill = json.dumps(schemas["FillMade"])
    quantity = schemas["FillMade"]["properties"]["quantity"]
    assert quantity.get("type") == "string", quantity
    assert "number" not in json.dumps(quantity), fill
