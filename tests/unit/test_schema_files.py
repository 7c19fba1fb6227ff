"""Published schemas keep their declared compatibility mode (BACKWARD, FORWARD, FULL): the committed files against
the models, which files are compared, and what `farmlink contracts export` may overwrite."""

import json

import pytest

from contracts import schemas
from contracts.compatibility import compatibility_problems
from contracts.registry import LATEST_VERSION, MODELS_BY_TYPE
from contracts.schemas import (
    INPUT_SCHEMA_DIR,
    SCHEMA_DIR,
    BreakingSchemaChange,
    breaking_change_report,
    breaking_changes,
    current_schemas,
    declared_mode,
    export,
    input_schemas,
    model_schemas,
    published_schemas,
    render,
    schema_file_name,
)
from tests.unit.schema_builders import BACKWARD, FORWARD, FULL, LOT, LOT_WITHOUT_C, STRING, closed

pytestmark = pytest.mark.unit


CURRENT = current_schemas()
PUBLISHED = published_schemas()


def _advice(name: str, committed: dict, current: dict) -> str:
    """Why a committed file differs from its model, and what to do (`name` as published: "inputs/..." for inputs)."""
    problems = compatibility_problems(committed, current, declared_mode(name))
    if problems:
        return breaking_change_report(name, problems)
    return (
        f"contracts/schemas/{name} differs from the model, but keeps its declared mode {declared_mode(name)}: "
        "run `farmlink contracts export` and commit the file."
    )


# ---------------------------------------------------------------- the declared modes


def test_events_are_declared_full():
    assert declared_mode("HarvestRecorded.v1.json") is FULL
    assert declared_mode("MarketPriceObserved.v2.json") is FULL


def test_input_payloads_and_the_input_envelope_are_declared_backward():
    assert declared_mode("inputs/harvest.recorded.v1.json") is BACKWARD
    assert declared_mode("inputs/InputMessage.v1.json") is BACKWARD


def test_receipts_are_declared_forward_in_every_version():
    assert declared_mode("inputs/Receipt.v1.json") is FORWARD
    assert declared_mode("inputs/Receipt.v2.json") is FORWARD


def test_a_per_file_override_wins_over_a_per_schema_one_and_over_the_default(monkeypatch):
    monkeypatch.setitem(schemas.MODE_OVERRIDES, "OfferOpened", BACKWARD)
    monkeypatch.setitem(schemas.MODE_OVERRIDES, "OfferOpened.v2.json", FORWARD)
    assert declared_mode("OfferOpened.v1.json") is BACKWARD
    assert declared_mode("OfferOpened.v2.json") is FORWARD
    assert declared_mode("OfferClosed.v1.json") is FULL


def test_full_is_backward_and_forward():
    assert FULL.halves == (BACKWARD, FORWARD) and BACKWARD.halves == (BACKWARD,) and FORWARD.halves == (FORWARD,)


# ---------------------------------------------------------------- committed files against the models


@pytest.mark.parametrize("name", sorted(PUBLISHED))
def test_every_published_schema_keeps_its_declared_mode_against_its_current_model(name):
    breaking = breaking_changes({name: PUBLISHED[name]}, model_schemas())
    if breaking:
        pytest.fail(breaking_change_report(name, breaking[name]))


@pytest.mark.parametrize("name", sorted(CURRENT))
def test_the_committed_schema_equals_the_model(name):
    path = SCHEMA_DIR / name
    if not path.exists():
        pytest.fail(f"{name} is not committed: run `farmlink contracts export` and commit contracts/schemas/{name}")
    committed_text = path.read_text(encoding="utf-8")
    if committed_text != render(CURRENT[name]):
        pytest.fail(_advice(name, json.loads(committed_text), CURRENT[name]))


@pytest.mark.parametrize("name", sorted(input_schemas()))
def test_the_committed_input_schema_equals_the_model(name):
    path = INPUT_SCHEMA_DIR / name
    assert path.exists(), f"{name} is not committed: run `farmlink contracts export` and commit contracts/schemas/inputs/{name}"
    committed_text = path.read_text(encoding="utf-8")
    if committed_text != render(input_schemas()[name]):
        pytest.fail(_advice(f"inputs/{name}", json.loads(committed_text), input_schemas()[name]))


def test_every_event_model_has_a_committed_schema_file():
    committed = {path.name for path in SCHEMA_DIR.glob("*.json")}
    missing = sorted(set(CURRENT) - committed)
    assert not missing, f"no committed schema for {missing}: run `farmlink contracts export`"


def test_every_committed_schema_file_names_a_known_event_type_and_version():
    for path in SCHEMA_DIR.glob("*.json"):
        event_type, version, suffix = path.name.split(".")
        assert suffix == "json" and version.startswith("v"), path.name
        assert event_type in LATEST_VERSION, f"{path.name}: unknown event type {event_type}"
        assert 1 <= int(version.removeprefix("v")) <= LATEST_VERSION[event_type], path.name


def test_there_is_one_schema_per_registered_event_type_and_version():
    assert set(CURRENT) == {schema_file_name(event_type, version) for event_type, version in MODELS_BY_TYPE}


def test_no_committed_input_schema_names_an_unknown_input():
    assert {path.name for path in INPUT_SCHEMA_DIR.glob("*.json")} == set(input_schemas())


def test_a_schema_file_is_named_by_event_type_and_version():
    assert schema_file_name("HarvestRecorded", 2) == "HarvestRecorded.v2.json"


def test_a_rendered_schema_has_sorted_keys_non_ascii_as_is_and_one_trailing_newline():
    text = render({"b": 1, "a": "沿河"})
    assert text == '{\n  "a": "沿河",\n  "b": 1\n}\n'


def test_every_current_model_is_fully_compatible_with_itself():
    for name, schema in model_schemas().items():
        assert compatibility_problems(schema, schema, FULL) == [], name


# ---------------------------------------------------------------- published versus current: which files are compared


def test_a_new_version_or_input_type_without_a_published_predecessor_is_not_a_breaking_change():
    published = {"Lot.v1.json": LOT}
    current = {"Lot.v1.json": LOT, "Lot.v2.json": LOT_WITHOUT_C, "inputs/lot.graded.v1.json": LOT_WITHOUT_C}
    assert breaking_changes(published, current) == {}


def test_a_published_version_whose_model_is_gone_is_history_and_accepted():
    assert breaking_changes({"Lot.v1.json": LOT, "Lot.v2.json": LOT_WITHOUT_C}, {"Lot.v2.json": LOT_WITHOUT_C}) == {}


def test_a_breaking_change_to_a_published_event_names_the_file_path_mode_and_a_new_version_with_an_upcaster():
    breaking = breaking_changes({"Lot.v1.json": LOT}, {"Lot.v1.json": LOT_WITHOUT_C})
    assert breaking == {"Lot.v1.json": ['$.grade: enum value "C" removed [breaks BACKWARD]']}
    report = breaking_change_report("Lot.v1.json", breaking["Lot.v1.json"])
    assert report.startswith(
        "contracts/schemas/Lot.v1.json: the current model breaks the published schema under its declared mode FULL"
    )
    assert '  - $.grade: enum value "C" removed [breaks BACKWARD]' in report
    assert "publish a new version with an upcaster (Lot v2 as a new model, and an upcaster from v1" in report


def test_a_breaking_change_to_a_published_input_names_an_optional_field_or_a_new_input_type():
    wider = closed({"lot_id": STRING, "grade": {"type": "string", "enum": ["A", "B", "C", "D"]}}, ["lot_id", "grade"])
    name = "inputs/lot.graded.v1.json"
    assert breaking_changes({name: LOT}, {name: wider}) == {}, "an input only has to stay BACKWARD compatible"
    breaking = breaking_changes({name: LOT}, {name: LOT_WITHOUT_C})
    report = breaking_change_report(name, breaking[name])
    assert "contracts/schemas/inputs/lot.graded.v1.json" in report and "declared mode BACKWARD" in report
    assert '$.grade: enum value "C" removed [breaks BACKWARD]' in report
    assert "add an optional field or add a new input type instead" in report


def test_a_breaking_change_to_the_receipt_fails_forward():
    with_reason = closed({"status": STRING, "reason": STRING}, ["status"])
    name = "inputs/Receipt.v1.json"
    assert breaking_changes({name: with_reason}, {name: closed({"status": STRING}, ["status"])}) == {}
    breaking = breaking_changes({name: closed({"status": STRING}, ["status"])}, {name: with_reason})
    assert list(breaking) == [name] and all("[breaks FORWARD]" in problem for problem in breaking[name])
    assert "Receipt v2" in breaking_change_report(name, breaking[name])


def test_the_mismatch_advice_says_export_when_the_difference_keeps_the_declared_mode():
    described = {**LOT, "description": "a graded lot"}
    assert "run `farmlink contracts export`" in _advice("Lot.v1.json", LOT, described)
    assert "upcaster" in _advice("Lot.v1.json", LOT, LOT_WITHOUT_C)


def test_export_writes_every_schema_into_an_empty_directory(tmp_path):
    written = export(tmp_path)
    assert {path.relative_to(tmp_path).as_posix() for path in written} == set(model_schemas())
    assert (tmp_path / "inputs" / "Receipt.v1.json").read_text(encoding="utf-8") == render(input_schemas()["Receipt.v1.json"])


def test_export_refuses_to_overwrite_a_published_schema_with_one_that_breaks_its_mode(tmp_path):
    published = json.loads(json.dumps(CURRENT["HarvestRecorded.v1.json"]))
    published["properties"]["grade"]["enum"].append("D")
    (tmp_path / "HarvestRecorded.v1.json").write_text(render(published), encoding="utf-8")
    with pytest.raises(BreakingSchemaChange) as refused:
        export(tmp_path)
    assert "contracts/schemas/HarvestRecorded.v1.json" in str(refused.value)
    assert '$.grade: enum value "D" removed [breaks BACKWARD]' in str(refused.value)
    assert (tmp_path / "HarvestRecorded.v1.json").read_text(encoding="utf-8") == render(published)
    assert sorted(path.name for path in tmp_path.iterdir()) == ["HarvestRecorded.v1.json"], "nothing written"
    export(tmp_path, allow_breaking=True)
    assert (tmp_path / "HarvestRecorded.v1.json").read_text(encoding="utf-8") == render(CURRENT["HarvestRecorded.v1.json"])


def test_export_overwrites_a_published_schema_with_a_compatible_one(tmp_path):
    published = {**CURRENT["HarvestRecorded.v1.json"], "description": "an older description"}
    (tmp_path / "HarvestRecorded.v1.json").write_text(render(published), encoding="utf-8")
    export(tmp_path)
    assert (tmp_path / "HarvestRecorded.v1.json").read_text(encoding="utf-8") == render(CURRENT["HarvestRecorded.v1.json"])
