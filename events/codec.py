"""Decoding what arrives on Kafka: input messages from producers and events from services."""

import json
from decimal import Decimal
from typing import Any

from pydantic import ValidationError

from contracts.envelope import Envelope
from contracts.inputs import INPUT_TYPES, InputMessage
from contracts.model import Contract
from events.consumer import Decoded, Delivery, describe
from events.upcasting import decode

MAX_MESSAGE_BYTES = 1_000_000


def _json(value: bytes) -> Any:
    if len(value) > MAX_MESSAGE_BYTES:
        raise ValueError(f"message of {len(value)} bytes is over the {MAX_MESSAGE_BYTES}-byte limit")
    text = value.decode("utf-8")  # invalid UTF-8 raises: dead-lettered
    return json.loads(text, parse_float=Decimal)


def decode_input(delivery: Delivery) -> Decoded[tuple[InputMessage, Contract]]:
    """An input message and its payload validated against the input type's model."""
    message = InputMessage.model_validate(_json(delivery.value))
    try:
        payload = INPUT_TYPES[message.type].model_validate(message.payload)
    except ValidationError as error:
        raise ValueError(f"{message.type}: {describe(error, prefix='payload.')}") from error
    return Decoded((message, payload), message_id=message.message_id, correlation_id=message.correlation_id)


def decode_event(delivery: Delivery) -> Decoded[tuple[Envelope, Contract]]:
    """A service event: its envelope and its payload as the current version's model."""
    envelope = Envelope.model_validate(_json(delivery.value))
    payload = decode(envelope.event_type, envelope.schema_version, envelope.payload)
    return Decoded((envelope, payload), message_id=str(envelope.event_id), correlation_id=envelope.correlation_id)
