"""Adversarial Kafka records for the input fuzzing test, drawn by Hypothesis, interleaved with valid inputs in batches."""

import json
import re
from typing import Any

from hypothesis import strategies as st

from contracts.inputs import INPUT_OWNER, INPUT_TYPES, SERVICE_INPUT_TOPIC
from contracts.topics import BUYER_INPUT, COOPERATIVE_INPUT, MARKET_INPUT, SETTLEMENT_INPUT
from events.codec import MAX_INPUT_BYTES, MAX_NESTING
from tests.e2e.inputs import Record, valid_input, valid_payload

INPUT_TOPICS = (COOPERATIVE_INPUT, BUYER_INPUT, MARKET_INPUT, SETTLEMENT_INPUT)
SERVICE_OF_TOPIC = {topic: service for service, topic in SERVICE_INPUT_TOPIC.items()}
OUTCOME_TIMEOUT_S = 45.0


# ---------------------------------------------------------------- valid inputs (tests/e2e/inputs.py)

ACCEPTED_TYPE = {
    COOPERATIVE_INPUT: "cooperative.registered",
    BUYER_INPUT: "buyer.registered",
    MARKET_INPUT: "market_price.observed",
    SETTLEMENT_INPUT: "plan.recorded",
}
"""An input type each topic's service accepts on its own (an order needs a registered buyer first)."""

NUMERIC_FIELDS = {
    COOPERATIVE_INPUT: ("harvest.recorded", ("quantity",)),
    BUYER_INPUT: ("order.placed", ("quantity", "limit_price_fen")),
    MARKET_INPUT: ("market_price.observed", ("price_fen",)),
    SETTLEMENT_INPUT: ("plan.recorded", ("area_mu", "target_household_income_fen")),
}
"""An input type per topic and its number fields, to put bad numbers into."""

TEXT_FIELD = {COOPERATIVE_INPUT: "name", BUYER_INPUT: "buyer_id", MARKET_INPUT: "market", SETTLEMENT_INPUT: "township"}


def valid_on(topic: str) -> Record:
    input_type = ACCEPTED_TYPE[topic]
    return valid_input(input_type, valid_payload(input_type))


def message_dict(topic: str, input_type: str | None = None) -> dict:
    """A valid input message as a plain dict, to be spoiled."""
    input_type = input_type or ACCEPTED_TYPE[topic]
    return json.loads(valid_input(input_type, valid_payload(input_type)).value)


def bad(topic: str, value: bytes | None, reason: str, key: bytes | None = b"fuzz", headers=()) -> Record:
    return Record(topic, key, value, tuple(headers), reason)


def dumps(obj: Any) -> bytes:
    return json.dumps(obj).encode()


# ---------------------------------------------------------------- adversarial records

topics = st.sampled_from(INPUT_TOPICS)
odd_keys = st.one_of(st.none(), st.just(b""), st.binary(max_size=40), st.just(b"\xff\xfe\x00key"))
odd_headers = st.lists(
    st.tuples(
        st.sampled_from(["origin", "trace\x00id", "h\u00e9", ""]),
        st.one_of(st.none(), st.binary(max_size=24), st.just(b"\x00\x00")),
    ),
    max_size=3,
)


@st.composite
def invalid_utf8(draw, topic):
    tail = draw(st.binary(max_size=64))
    return bad(topic, b'{"message_id": "\xff\xfe' + tail, r"not valid UTF-8")


@st.composite
def not_json(draw, topic):
    text = draw(st.text(st.characters(codec="utf-8", exclude_characters="\x00"), min_size=1, max_size=60))
    try:
        json.loads(text)
        text = "{" + text  # valid JSON by chance: make it not
    except ValueError:
        pass
    return bad(topic, text.encode(), r"not JSON")


@st.composite
def json_not_an_object(draw, topic):
    # Text PostgreSQL can store: NUL and lone surrogates are refused for that first (text_postgres_cannot_store).
    storable = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=20)
    scalars = st.one_of(st.none(), st.booleans(), st.integers(), storable)
    value = draw(st.one_of(scalars, st.lists(scalars, max_size=5)))
    return bad(topic, dumps(value), r"\(message\): Input should be a valid dictionary")


@st.composite
def nested_too_deep(draw, topic):
    depth = draw(st.one_of(st.integers(MAX_NESTING + 1, MAX_NESTING + 50), st.integers(1_000, 100_000)))  # under the size limit
    inner = "[" * depth + "]" * depth
    where = draw(st.sampled_from(["top", "payload"]))
    if where == "top":
        return bad(topic, inner.encode(), rf"nested deeper than {MAX_NESTING}")
    text = json.dumps(message_dict(topic)).replace('"payload": {', '"payload": {"deep": ' + inner + ", ", 1)
    return bad(topic, text.encode(), rf"nested deeper than {MAX_NESTING}")


@st.composite
def empty(draw, topic):
    return bad(topic, draw(st.sampled_from([b"", None])), r"empty message")


@st.composite
def oversized(draw, topic):
    size = draw(st.sampled_from([MAX_INPUT_BYTES + 1, 600_000, 1_040_000, 1_048_000]))
    message = message_dict(topic)
    message["payload"]["padding"] = ""
    text = dumps(message)
    message["payload"]["padding"] = "x" * (size - len(text))
    value = dumps(message)
    assert len(value) == size
    return bad(topic, value, rf"{size} bytes is over the {MAX_INPUT_BYTES}-byte input limit")


@st.composite
def wrong_types(draw, topic):
    message = message_dict(topic)
    name = draw(st.sampled_from(["message_id", "type", "producer", "correlation_id", "payload"]))
    message[name] = draw(st.one_of(st.integers(), st.lists(st.integers(), max_size=2), st.none(), st.booleans(), st.floats()))
    if name == "payload" and isinstance(message[name], dict):
        message[name] = 1
    return bad(topic, dumps(message), rf"{name}: ")


@st.composite
def payload_field_of_wrong_type(draw, topic):
    message = message_dict(topic)
    name = draw(st.sampled_from(sorted(message["payload"])))
    message["payload"][name] = draw(
        st.one_of(
            st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
            st.booleans(),
            st.lists(st.none(), min_size=1, max_size=2),
        )
    )
    return bad(topic, dumps(message), rf"payload\.{re.escape(name)}")


@st.composite
def unknown_field(draw, topic):
    message = message_dict(topic)
    name = "x_" + draw(st.text(st.characters(codec="utf-8", categories=["L", "N"]), max_size=12))
    if draw(st.booleans()):
        message.setdefault(name, "surprise")
        where = re.escape(name)
    else:
        message["payload"].setdefault(name, {"surprise": [1, 2]})
        where = r"payload\." + re.escape(name)
    return bad(topic, dumps(message), where + r": Extra inputs are not permitted")


HUGE_NUMBERS = [
    "1" + "0" * 40,  # 10**40
    "-1" + "0" * 40,
    "1e400",
    "-1e400",
    "1e-400",
    "NaN",
    "Infinity",
    "-Infinity",
    '"NaN"',
    '"Infinity"',
    '"-Infinity"',
    '"1e400"',
    '"sNaN"',
    "9" * 5000,  # over Python's 4300-digit limit for int(str)
    "0.1" + "1" * 100,
]


@st.composite
def bad_number(draw, topic):
    input_type, names = NUMERIC_FIELDS[topic]
    name = draw(st.sampled_from(names))
    literal = draw(st.one_of(st.sampled_from(HUGE_NUMBERS), st.sampled_from(["0", "-1", '"-0.001"', '"0"', "-0", "0.0", '"-5"'])))
    message = message_dict(topic, input_type)
    message["payload"][name] = "__NUMBER__"
    text = json.dumps(message).replace('"__NUMBER__"', literal)
    reason = rf"payload\.{name}: |4300 digits|digits"
    return bad(topic, text.encode(), reason)


@st.composite
def unknown_input_type(draw, topic):
    message = message_dict(topic)
    message["type"] = draw(st.text(max_size=30).filter(lambda t: t not in INPUT_TYPES) | st.just("x" * 100_000))
    return bad(topic, dumps(message), r"unknown input type")


@st.composite
def another_services_input(draw, topic):
    input_type = draw(st.sampled_from(sorted(t for t in ACCEPTED_TYPE.values() if SERVICE_INPUT_TOPIC[INPUT_OWNER[t]] != topic)))
    record = valid_input(input_type, valid_payload(input_type))
    service = SERVICE_OF_TOPIC[topic]
    return Record(topic, record.key, record.value, (), rf"type: {re.escape(input_type)} is not a {service} input")


@st.composite
def text_postgres_cannot_store(draw, topic):
    message = message_dict(topic)
    bad_text = draw(st.sampled_from(["\\u0000", "a\\u0000b", "\\ud800", "x\\udfffy"]))
    name = TEXT_FIELD[topic]
    message["payload"][name] = "__TEXT__"
    text = json.dumps(message).replace('"__TEXT__"', f'"{bad_text}"')
    return bad(topic, text.encode(), rf"payload\.{name}: .*(NUL|surrogate)")


@st.composite
def many_errors(draw, topic):
    """One bad item times thousands: the reason must stay short enough to travel."""
    message = message_dict(topic)
    count = draw(st.integers(2_000, 12_000))  # under the size limit
    message["payload"]["households" if topic == COOPERATIVE_INPUT else "regions"] = [{"bad": i} for i in range(count)]
    return bad(topic, dumps(message), r"payload\.")


def adversarial(plain: st.SearchStrategy[Record]) -> st.SearchStrategy[Record]:
    """A bad record with a drawn key (null, empty, not UTF-8) and drawn headers (null values, NUL bytes)."""
    return st.builds(
        lambda record, key, headers: Record(record.topic, odd_key(record, key), record.value, tuple(headers), record.reason),
        plain,
        odd_keys,
        odd_headers,
    )


def odd_key(record: Record, key: bytes | None) -> bytes | None:
    if record.key != b"fuzz":
        return record.key
    return b"" if key is None and record.value is None else key  # Kafka needs a key or a value


class Batch:
    """Records to publish in this order."""

    def __init__(self, records: list[Record] | None = None):
        self.records = records or []

    def __repr__(self) -> str:  # Hypothesis prints the failing example: keep it readable
        return f"Batch({len(self.records)} records, {sum(r.reason is not None for r in self.records)} bad)"


KINDS = (
    invalid_utf8,
    not_json,
    json_not_an_object,
    nested_too_deep,
    empty,
    oversized,
    wrong_types,
    payload_field_of_wrong_type,
    unknown_field,
    bad_number,
    unknown_input_type,
    another_services_input,
    text_postgres_cannot_store,
    many_errors,
)


def missing_field(topic: str) -> Record:
    return bad(
        topic,
        b'{"message_id": "a"}',
        r"type: Field required",
        key=None,
        headers=[("none", None), ("nul", b"\x00"), ("nul\x00name", b"v")],
    )


@st.composite
def batches(draw) -> Batch:
    """Every kind of bad record on every topic (odd keys and headers drawn), each followed by a
    valid input on a drawn topic, in a drawn order; then reused message ids on every topic."""
    mixed = []
    for topic in INPUT_TOPICS:
        for kind in KINDS:
            mixed.append([draw(adversarial(kind(topic))), valid_on(draw(topics))])
        mixed.append([missing_field(topic), valid_on(topic)])
    batch = Batch([record for pair in draw(st.permutations(mixed)) for record in pair])
    for topic in INPUT_TOPICS:
        batch.records.extend(reused_ids(topic))
    return batch


def reused_ids(topic: str) -> list[Record]:
    """A valid input; its message id reused for another payload (dead-lettered); an identical
    re-send (no second effect, no second receipt); then a valid input behind them on the same partition."""
    original = valid_on(topic)
    other = valid_input(ACCEPTED_TYPE[topic], valid_payload(ACCEPTED_TYPE[topic]), message_id=original.message_id)
    reuse = Record(
        topic, original.key, other.value, (), rf"message_id {original.message_id} was already used for a different message"
    )
    again = Record(topic, original.key, original.value, (), None, original.message_id, original.correlation_id)
    behind = valid_on(topic)
    behind = Record(topic, original.key, behind.value, (), None, behind.message_id, behind.correlation_id)
    return [original, reuse, again, behind]
