"""The audit's quick paths say "holds" only where the exact checks say so too, and defer otherwise."""

import json

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from contracts import signing
from farmlink.audit import quick, replay
from farmlink.audit.compare import _equal
from farmlink.operations.bench.synthetic import generate
from matcher import outcomes
from matcher.outcomes import derived_id

pytestmark = pytest.mark.unit

KEY = signing.private_key_from_raw(bytes(range(32)))
PUBLIC = signing.public_key_of(KEY)

JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers(min_value=-(2**63), max_value=2**64 - 1) | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=12,
)


def _message(payload: object) -> dict:
    message = {"message_id": "m-1", "type": "harvest.recorded", "producer": "cooperative:c", "correlation_id": "c-1"}
    return message | {"payload": payload}


@given(JSON_VALUES)
def test_the_quick_signed_bytes_are_the_canonical_ones_for_every_plain_json_value(payload):
    assert quick.signed_bytes(_message(payload)) == signing.signed_bytes(_message(payload))


def test_control_characters_and_keys_beyond_the_basic_plane_are_written_and_sorted_canonically():
    payload = {"\U00010000": "\x00\x1f\x7f\u2028", "\uffff": '\b\f\n\r\t"\\', "é": "沿河"}
    assert quick.signed_bytes(_message(payload)) == signing.signed_bytes(_message(payload))


@pytest.mark.parametrize("payload", [{"quantity": 1.5}, {"big": 2**70}, {"nan": float("nan")}, {"lone": "\ud800"}])
def test_a_value_canonical_json_does_not_carry_goes_the_exact_way(payload):
    assert quick.signed_bytes(_message(payload)) is None


def test_a_good_signature_holds_quickly_and_a_bad_one_is_left_to_the_exact_check():
    message = _message({"lot_id": "l-1"})
    message["signature"] = signing.sign(KEY, message)
    assert quick.signature_holds(PUBLIC, message)
    tampered = message | {"payload": {"lot_id": "l-2"}}
    assert not quick.signature_holds(PUBLIC, tampered)
    assert signing.verification_problem(PUBLIC, tampered) == "does not verify"
    assert not quick.signature_holds(PUBLIC, message | {"signature": message["signature"] + "="})
    assert not quick.signature_holds(PUBLIC[:-1] + "A", message) or signing.verify(PUBLIC[:-1] + "A", message)


def test_a_signature_over_a_float_never_holds_quickly():
    message = _message({"quantity": 1.5})
    raw = KEY.sign(signing.SIGNING_CONTEXT + orjson.dumps(message, option=orjson.OPT_SORT_KEYS))
    message["signature"] = signing.b64url(raw)
    assert not quick.signature_holds(PUBLIC, message)
    assert signing.verification_problem(PUBLIC, message).startswith("the message cannot be signed")


@pytest.mark.parametrize(
    ("left", "right"),
    [({"a": 1}, {"a": True}), ({"a": 1}, {"a": 1.0}), ({"a": None}, {"a": float("nan")}), ([1, 2], [2, 1])],
)
def test_values_of_different_types_or_order_are_never_the_same_quickly(left, right):
    assert not quick.same_json(left, right)


@given(JSON_VALUES, JSON_VALUES)
def test_same_json_agrees_with_the_exact_comparison_whenever_it_says_same(left, right):
    assert not quick.same_json(left, right) or _equal(left, right)
    assert quick.same_json(left, json.loads(json.dumps(left)))


@given(st.lists(st.one_of(st.text(), st.integers()), min_size=1, max_size=5))
def test_derived_ids_are_the_services_uuid5_ids(parts):
    assert outcomes.derived_text(*parts) == str(derived_id(*parts))


def test_every_decision_of_a_synthetic_season_made_the_quick_way_is_the_services_own(monkeypatch):
    monkeypatch.setattr(replay, "CROSS_CHECK_EVERY", 1)  # every agreeing decision made again by outcome_event
    log = generate(6_000, seed=7).audit_log()
    result = replay.re_execute(log)
    assert result.findings == []
    assert result.fill_count > 100


def test_a_drift_between_the_quick_mapping_and_the_services_is_a_crash_not_a_clean_audit(monkeypatch):
    def drifted(outcome, index):
        event_type, event_id, payload = outcomes.outcome_record(outcome, index)
        return event_type, event_id, payload | {"extra": 1}

    monkeypatch.setattr(replay, "outcome_record", drifted)
    log = generate(2_000, seed=7).audit_log()
    result = replay.re_execute(log)  # every recorded decision differs from the drifted one: the service's mapping decides
    assert result.findings == []
    monkeypatch.setattr(replay, "same_json", lambda left, right: True)
    with pytest.raises(replay.MappingDrift):
        replay.re_execute(log)


ORDER = 2**252 + 27742317777372353535851937790883648493  # L, the order of Ed25519's base point


def test_a_signature_with_a_non_canonical_s_holds_neither_quickly_nor_exactly():
    message = _message({"lot_id": "l-1"})
    raw = KEY.sign(signing.signed_bytes(message))
    s = int.from_bytes(raw[32:], "little") + ORDER  # the same point, an S no verifier may accept (RFC 8032 5.1.7)
    message["signature"] = signing.b64url(raw[:32] + s.to_bytes(32, "little"))
    assert not quick.signature_holds(PUBLIC, message)
    assert signing.verification_problem(PUBLIC, message) == "does not verify"
