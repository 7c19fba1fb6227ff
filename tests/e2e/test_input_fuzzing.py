"""Bad input on every input topic, against the real services, broker and database.

Hypothesis draws batches of adversarial records (not UTF-8, not JSON, JSON that is not an
object, nesting too deep, empty and null values, oversized values, wrong types, huge and
non-finite numbers, negative and zero quantities, unknown fields, NUL and lone surrogates
in text, unknown input types, another service's input type, a message id reused for a
different payload, odd headers and keys) and interleaves them with valid inputs. Every bad
record must reach farmlink.deadletter with its original bytes and a reason that says why,
every valid input must be accepted with its events, and afterwards every service must
still be alive and consuming.
"""

import asyncio
import json
import re
from dataclasses import dataclass
from typing import Any

import asyncpg
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from contracts.inputs import INPUT_OWNER, INPUT_TYPES, SERVICE_INPUT_TOPIC
from contracts.topics import BUYER_INPUT, COOPERATIVE_INPUT, DEAD_LETTER, MARKET_INPUT, RECEIPTS, SETTLEMENT_INPUT
from events.codec import MAX_INPUT_BYTES, MAX_NESTING
from events.consumer import MAX_REASON_CHARS
from farmlink import processes
from tests.kafka_helpers import login
from tests.e2e.inputs import Record, register_parties, valid_input, valid_payload

pytestmark = pytest.mark.e2e

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
    scalars = st.one_of(st.none(), st.booleans(), st.integers(), st.text(max_size=20))
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


# ---------------------------------------------------------------- running it


@dataclass
class Outcomes:
    dead: dict[tuple[str, int, int], Any]
    receipts: dict[str, list[dict]]


async def publish(bootstrap: str, batch: Batch) -> list[tuple[Record, tuple[str, int, int]]]:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, max_request_size=1_048_576, enable_idempotence=True, **login())
    await producer.start()
    try:
        pending = [await producer.send(r.topic, r.value, key=r.key, headers=list(r.headers)) for r in batch.records]
        sent = []
        for record, future in zip(batch.records, pending):
            meta = await future
            sent.append((record, (meta.topic, meta.partition, meta.offset)))
        return sent
    finally:
        await producer.stop()


async def end_offsets(bootstrap: str) -> dict[TopicPartition, int]:
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, isolation_level="read_committed", **login())
    await consumer.start()
    try:
        return await consumer.end_offsets([TopicPartition(DEAD_LETTER, 0), TopicPartition(RECEIPTS, 0)])
    finally:
        await consumer.stop()


async def collect(bootstrap: str, since: dict[TopicPartition, int], done, timeout: float = OUTCOME_TIMEOUT_S) -> Outcomes:
    """Dead letters and receipts from `since` until `done(outcomes)` holds (or the timeout)."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, enable_auto_commit=False, fetch_max_wait_ms=100, isolation_level="read_committed", **login()
    )
    await consumer.start()
    outcomes = Outcomes({}, {})
    try:
        consumer.assign(list(since))
        for tp, offset in since.items():
            consumer.seek(tp, offset)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while not done(outcomes) and loop.time() < deadline:
            for tp, records in (await consumer.getmany(timeout_ms=300)).items():
                for r in records:
                    if tp.topic == DEAD_LETTER:
                        h = dict(r.headers)
                        outcomes.dead[(h["dlq.topic"].decode(), int(h["dlq.partition"]), int(h["dlq.offset"]))] = r
                    else:
                        receipt = json.loads(r.value)
                        outcomes.receipts.setdefault(receipt["correlation_id"], []).append(receipt)
        return outcomes
    finally:
        await consumer.stop()


def valid_accepted(outcomes: Outcomes, record: Record) -> bool:
    return any(r["status"] == "accepted" for r in outcomes.receipts.get(record.correlation_id, ()))


async def run_batch(system, batch: Batch) -> None:
    since = await end_offsets(system.bootstrap)
    sent = await publish(system.bootstrap, batch)
    bad_records = [(r, where) for r, where in sent if r.reason is not None]
    valid = [r for r, _ in sent if r.reason is None]

    def done(o: Outcomes) -> bool:
        return all(where in o.dead for _, where in bad_records) and all(valid_accepted(o, r) for r in valid)

    outcomes = await collect(system.bootstrap, since, done)

    for record, where in bad_records:
        assert where in outcomes.dead, (
            f"not dead-lettered: {record.value[:200] if record.value else record.value!r} at {where} (expected {record.reason!r})"
        )
        dead = outcomes.dead[where]
        headers = dict(dead.headers)
        reason = headers["dlq.reason"].decode()
        assert re.search(record.reason, reason), f"reason {reason!r} does not match {record.reason!r}"
        assert headers["dlq.consumer"].decode() == SERVICE_OF_TOPIC[record.topic]
        original = record.value or b""
        assert len(reason) <= MAX_REASON_CHARS, f"a reason of {len(reason)} characters"
        if "dlq.truncated" in headers:
            assert original.startswith(dead.value) and int(headers["dlq.original-bytes"]) == len(original)
        else:
            assert dead.value == original, f"dead letter of {where} does not carry the original bytes"
        originals = [(n, v) for n, v in record.headers]
        assert [(n, v if v is not None else None) for n, v in dead.headers[: len(originals)]] == originals
    for record in valid:
        receipts = outcomes.receipts.get(record.correlation_id, [])
        accepted = [r for r in receipts if r["status"] == "accepted"]
        assert len(accepted) == 1, f"valid input {record.correlation_id} on {record.topic}: receipts {receipts}"
        assert accepted[0]["event_ids"], f"valid input {record.correlation_id} was accepted without events"
        assert accepted[0]["message_id"] == record.message_id
    conn = await asyncpg.connect(system.dsn)
    try:
        for record in valid:
            [receipt] = [r for r in outcomes.receipts[record.correlation_id] if r["status"] == "accepted"]
            schema = SERVICE_OF_TOPIC[record.topic]
            stored = await conn.fetchval(
                f'SELECT count(*) FROM "{schema}".events WHERE event_id = ANY($1::uuid[]) AND causation_id = $2',
                receipt["event_ids"],
                record.message_id,
            )
            assert stored == len(receipt["event_ids"]), f"the events of {record.correlation_id} are not in {schema}.events"
            effects = await conn.fetchval(f'SELECT count(*) FROM "{schema}".events WHERE causation_id = $1', record.message_id)
            assert effects == len(receipt["event_ids"]), f"message {record.message_id} had a second effect in {schema}"
    finally:
        await conn.close()


async def still_consuming(system) -> None:
    """Every service alive, and a final valid input on every topic accepted (and journaled by the matcher)."""
    assert all(processes.running_pid(name) for name in processes.SERVICES), processes.service_status()
    final = Batch([valid_on(topic) for topic in INPUT_TOPICS])
    await run_batch(system, final)
    price = final.records[INPUT_TOPICS.index(MARKET_INPUT)]
    since = {TopicPartition(RECEIPTS, 0): 0, TopicPartition(DEAD_LETTER, 0): 0}
    outcomes = await collect(
        system.bootstrap,
        since,
        lambda o: any(r["status"] == "journaled" for r in o.receipts.get(price.correlation_id, ())),
    )
    assert any(r["status"] == "journaled" for r in outcomes.receipts.get(price.correlation_id, ())), (
        "the matcher stopped consuming"
    )
    assert all(processes.running_pid(name) for name in processes.SERVICES), processes.service_status()


FUZZ = settings(
    max_examples=4,
    deadline=None,
    derandomize=True,
    phases=[Phase.explicit, Phase.generate],  # no shrinking: each example costs real round trips
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
        HealthCheck.large_base_example,
    ],
    print_blob=True,
)


@pytest.mark.timeout(240)
def test_every_bad_input_is_dead_lettered_with_its_reason_while_every_valid_one_is_processed(clean_system):
    register_parties(clean_system.bootstrap)

    @FUZZ
    @given(batch=batches())
    def fuzz(batch: Batch) -> None:
        asyncio.run(run_batch(clean_system, batch))

    fuzz()
    asyncio.run(still_consuming(clean_system))
