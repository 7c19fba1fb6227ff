"""How the chaos run sends each input of its workload: encoded for Kafka as `farmlink publish` would send it, to the
input topic of one of the services that own inputs."""

from __future__ import annotations

from contracts.inputs import INPUT_OWNER, SERVICE_INPUT_TOPIC
from farmlink.producers.keyring import Keyring
from farmlink.producers.publisher import input_message, key_of

INPUT_SERVICES = ("cooperative", "buyer", "market", "settlement")


def encode(message_id: str, input_type: str, payload: dict, correlation_id: str, keyring: Keyring) -> tuple[str, bytes, bytes]:
    """(topic, key, value) of one input, as `farmlink publish` would send it: signed by its producer."""
    message = input_message(input_type, payload, correlation_id, keyring, message_id=message_id)
    return SERVICE_INPUT_TOPIC[INPUT_OWNER[input_type]], key_of(input_type, payload).encode(), message.model_dump_json().encode()
