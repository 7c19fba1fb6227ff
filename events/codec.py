"""Decoding what arrives on Kafka: input messages from producers and events from services.

Every check here turns bad bytes into an exception with a reason; the consumer dead-letters
the record with that reason and goes on. What is checked before any model sees the data:
size (MAX_INPUT_BYTES), empty values, UTF-8, JSON syntax, nesting depth (MAX_NESTING), and
text PostgreSQL cannot store (NUL characters, lone surrogates from \\u escapes). Numbers are
read exactly (Decimal); NaN and Infinity arrive as floats and every model refuses floats.
"""

import hashlib
import json
from decimal import Decimal
from typing import Any

from pydantic import ValidationError

from contracts.envelope import Envelope
from contracts.inputs import INPUT_TYPES, InputMessage
from contracts.model import Contract
from events.consumer import Decoded, Delivery, describe
from events.hashchain import canonical_json
from events.upcasting import decode

MAX_INPUT_BYTES = 256 * 1024
"""The largest input message a service reads: a cooperative registration with thousands of
households fits many times over; anything larger is dead-lettered, never half-read. (The
broker's own default limit, message.max.bytes, is about 1 MiB.)"""

MAX_EVENT_BYTES = 1024 * 1024
"""Events are written by farmlink itself; only the broker's limit applies."""

MAX_NESTING = 32
"""No farmlink message nests deeper than a handful of levels; deeper JSON is refused."""


class BadInput(ValueError):
    """Bytes that are not a readable message; the text is the dead-letter reason."""


def _json(value: bytes, limit: int) -> Any:
    if len(value) > limit:
        raise BadInput(f"message of {len(value)} bytes is over the {limit}-byte input limit")
    if not value:
        raise BadInput("empty message: no bytes (or a null value)")
    try:
        text = value.decode("utf-8")
    except UnicodeDecodeError as error:
        raise BadInput(f"not valid UTF-8: {describe(error)}") from error
    try:
        parsed = json.loads(text, parse_float=Decimal)
    except RecursionError as error:
        raise BadInput(f"JSON nested deeper than {MAX_NESTING} levels") from error
    except ValueError as error:  # JSONDecodeError, or an integer of more than 4300 digits
        raise BadInput(f"not JSON: {describe(error)}") from error
    # Strictly decoded UTF-8 cannot hold a NUL or a lone surrogate except through a \\u escape, so
    # text is only checked when the bytes have one; nesting is checked whenever brackets could nest deep.
    escapes = b"\\u" in value
    if escapes or value.count(b"[") + value.count(b"{") > MAX_NESTING:
        _check_text(parsed, strings=escapes)
    return parsed


def _check_text(value: Any, strings: bool = True) -> None:
    """Refuse nesting deeper than MAX_NESTING and (with `strings`) text PostgreSQL cannot store, naming where."""
    stack: list[tuple[Any, tuple[Any, ...], int]] = [(value, (), 0)]
    while stack:
        item, path, depth = stack.pop()
        if isinstance(item, dict | list):
            if depth >= MAX_NESTING:
                raise BadInput(f"JSON nested deeper than {MAX_NESTING} levels")
            pairs = item.items() if isinstance(item, dict) else enumerate(item)
            for key, child in pairs:
                if strings and isinstance(key, str):
                    _check_string(key, path, "a key")
                if strings or isinstance(child, dict | list):
                    stack.append((child, (*path, key), depth + 1))
        elif isinstance(item, str):
            _check_string(item, path, "text")


def _check_string(text: str, path: tuple[Any, ...], what: str) -> None:
    where = ".".join(str(p) for p in path) or "(message)"
    if "\x00" in text:
        raise BadInput(f"{where}: {what} with a NUL character (\\u0000), which cannot be stored")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as error:
        raise BadInput(
            f"{where}: {what} with a lone surrogate (\\u{ord(text[error.start]):04x}), which is not Unicode text"
        ) from error


def input_digest(message: Any) -> str:
    """What identifies an input's content: sha256 of its canonical JSON (key order and spacing do not count)."""
    return hashlib.sha256(canonical_json(message).encode("utf-8")).hexdigest()


def decode_input(delivery: Delivery) -> Decoded[tuple[InputMessage, Contract]]:
    """An input message and its payload validated against the input type's model."""
    raw = _json(delivery.value, MAX_INPUT_BYTES)
    message = InputMessage.model_validate(raw)
    try:
        payload = INPUT_TYPES[message.type].model_validate(message.payload)
    except ValidationError as error:
        raise ValueError(f"{message.type}: {describe(error, prefix='payload.')}") from error
    return Decoded(
        (message, payload), message_id=message.message_id, correlation_id=message.correlation_id, digest=input_digest(raw)
    )


def decode_event(delivery: Delivery) -> Decoded[tuple[Envelope, Contract]]:
    """A service event: its envelope and its payload as the current version's model."""
    envelope = Envelope.model_validate(_json(delivery.value, MAX_EVENT_BYTES))
    payload = decode(envelope.event_type, envelope.schema_version, envelope.payload)
    return Decoded((envelope, payload), message_id=str(envelope.event_id), correlation_id=envelope.correlation_id)
