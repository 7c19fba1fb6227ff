"""The AsyncAPI 3 document of farmlink's Kafka contract, generated from the code (never by hand).

`farmlink contracts asyncapi` writes contracts/asyncapi.yaml; tests/unit/test_asyncapi.py fails
when the committed copy differs from what the code says, and validates it against AsyncAPI 3.0's
own JSON Schema. Everything in it comes from the tables the services run on:

- channels: every topic of contracts/topics.py, with its partitions and retention;
- messages: each input type of contracts/inputs.py (INPUT_KINDS) inside the input envelope, as
  the owning service accepts it (validation mode: a decimal as a string or an exact number);
  each event of contracts/registry.py (EVENT_KINDS) inside the event envelope, as the relay
  publishes it (serialization mode: what the wire carries, decimals as strings); receipts;
  sequence markers; dead letters with the headers events/consumer.py adds;
- operations: for every principal of events/access.py, what it may send and receive;
- security: SASL/SCRAM-SHA-512 on the local broker.
"""

from importlib import metadata
from typing import Any

import yaml
from pydantic.json_schema import models_json_schema

from contracts.envelope import Envelope
from contracts.inputs import INPUT_KINDS, InputMessage, Receipt, SequenceMarker
from contracts.registry import EVENT_KINDS
from contracts.topics import (
    BUYER_EVENTS,
    COOPERATIVE_EVENTS,
    DEAD_LETTER,
    FILLS,
    PARTY_TOPIC_KINDS,
    PARTY_TOPIC_PARTITIONS,
    PARTY_TOPIC_PREFIX,
    RECEIPTS,
    RELAY_CHECKPOINTS,
    SEQUENCE_HEADER,
    SEQUENCE_MARKERS,
    TOPICS,
)
from events.access import PRINCIPALS, SCRAM_MECHANISM
from events.consumer import PRODUCER_HEADER, Delivery, dead_letter_headers
from events.settings import LOCAL_KAFKA_PORT

SCHEMAS = "#/components/schemas/{model}"
KAFKA_BINDING_VERSION = "0.5.0"


def _camel(text: str) -> str:
    words = [w for w in text.replace(".", " ").replace("_", " ").replace("-", " ").split() if w]
    return words[0].lower() + "".join(w[:1].upper() + w[1:] for w in words[1:]) if words else text


def _channel_id(topic: str) -> str:
    return _camel(topic.removeprefix("farmlink."))


def _input_message_id(input_type: str) -> str:
    return _camel(f"input {input_type}")


def _event_message_id(model) -> str:
    return f"{model.event_type}V{model.schema_version}"


def _schemas() -> dict[str, Any]:
    """Every model the document names, in the mode its direction needs, under components/schemas."""
    models = [(kind.model, "validation") for kind in INPUT_KINDS] + [
        (InputMessage, "validation"),
        (Receipt, "serialization"),
        (SequenceMarker, "serialization"),
        (Envelope, "serialization"),
    ]
    models += [(model, "serialization") for model, _ in EVENT_KINDS]
    _, top = models_json_schema(models, ref_template=SCHEMAS)
    return top["$defs"]


def _ref(model) -> dict[str, str]:
    return {"$ref": SCHEMAS.format(model=model.__name__)}


def _headers(names: dict[str, str]) -> dict[str, Any]:
    return {"type": "object", "properties": {name: {"type": "string", "description": text} for name, text in names.items()}}


def _input_messages() -> dict[str, Any]:
    messages = {}
    for kind in INPUT_KINDS:
        signed = "signed by its producer's registered Ed25519 key (contracts/signing.py)" if kind.signed else "unsigned"
        messages[_input_message_id(kind.type)] = {
            "name": kind.type,
            "title": f"{kind.type} ({kind.model.__name__})",
            "summary": (kind.model.__doc__ or "").strip().splitlines()[0],
            "description": f"An input for the {kind.owner} service, {signed}; it records {kind.records}"
            + (", which the matcher journals." if kind.journaled else "."),
            "contentType": "application/json",
            "headers": _headers(
                {
                    SEQUENCE_HEADER: "optional `<run>/<product>/<seq>`: the place of a journaled input in "
                    "its producer's run (docs/architecture.md, Ordering)"
                }
            ),
            "payload": {
                "allOf": [
                    _ref(InputMessage),
                    {
                        "type": "object",
                        "properties": {"type": {"const": kind.type}, "payload": _ref(kind.model)},
                        "required": ["type", "payload", *(["signature"] if kind.signed else [])],
                    },
                ]
            },
        }
    return messages


def _event_messages() -> dict[str, Any]:
    sample = Envelope(
        event_id="00000000-0000-0000-0000-000000000000",
        event_type="-",
        schema_version=1,
        stream_id="-",
        stream_version=1,
        occurred_at="2020-01-01T00:00:00Z",
        producer="-",
        correlation_id="-",
        payload={},
    )
    from events.store import kafka_headers

    header_names = {name: "routing and deduplication without parsing the body" for name, _ in kafka_headers(sample)}
    messages = {}
    for model, _ in EVENT_KINDS:
        messages[_event_message_id(model)] = {
            "name": model.event_type,
            "title": f"{model.event_type} v{model.schema_version}",
            "summary": (model.__doc__ or "").strip().splitlines()[0],
            "description": "An event as the owning service recorded it: the envelope (hash-chained per stream) "
            "as canonical JSON, with the fact in `payload`.",
            "contentType": "application/json",
            "headers": _headers(header_names),
            "payload": {
                "allOf": [
                    _ref(Envelope),
                    {
                        "type": "object",
                        "properties": {
                            "event_type": {"const": model.event_type},
                            "schema_version": {"const": model.schema_version},
                            "payload": _ref(model),
                        },
                    },
                ]
            },
        }
    return messages


def _other_messages() -> dict[str, Any]:
    probe = Delivery(topic="-", partition=0, offset=0, key=None, value=b"", headers=[])
    dead_letter = {name: "added by the consumer that gave up on the message" for name, _ in dead_letter_headers(probe, "-", "-")}
    return {
        "receipt": {
            "name": "receipt",
            "title": "Receipt",
            "summary": (Receipt.__doc__ or "").strip().splitlines()[0],
            "contentType": "application/json",
            "headers": _headers(
                {PRODUCER_HEADER: "the input's producer (`buyer:<buyer_id>`, ...), on the owning service's receipts"}
            ),
            "payload": _ref(Receipt),
        },
        "sequenceMarker": {
            "name": "sequence marker",
            "title": "SequenceMarker",
            "summary": (SequenceMarker.__doc__ or "").strip().splitlines()[0],
            "contentType": "application/json",
            "headers": _headers({SEQUENCE_HEADER: "the rejected input's stamp"}),
            "payload": _ref(SequenceMarker),
        },
        "deadLetter": {
            "name": "dead letter",
            "title": "Dead letter",
            "summary": "A message that could not be decoded or validated: its original key, bytes and headers, "
            "with the reason in headers.",
            "contentType": "application/octet-stream",
            "headers": _headers(dead_letter),
            "payload": {"type": "string", "description": "the original bytes, unchanged"},
        },
        "relayCheckpoint": {
            "name": "relay checkpoint",
            "title": "Relay checkpoint",
            "summary": "Internal to each service's outbox relay (the rows of its last Kafka transaction); "
            "not a contract for other parties.",
            "contentType": "application/json",
            "payload": {"type": "object"},
        },
    }


def _messages_on(topic: str) -> list[str]:
    if topic == RECEIPTS:
        return ["receipt"]
    if topic == DEAD_LETTER:
        return ["deadLetter"]
    if topic == SEQUENCE_MARKERS:
        return ["sequenceMarker"]
    if topic == RELAY_CHECKPOINTS:
        return ["relayCheckpoint"]
    from contracts.inputs import SERVICE_INPUT_TOPIC

    inputs = [_input_message_id(k.type) for k in INPUT_KINDS if SERVICE_INPUT_TOPIC[k.owner] == topic]
    events = [_event_message_id(m) for m, t in EVENT_KINDS if t == topic]
    return inputs + events


def _channels() -> dict[str, Any]:
    channels = {}
    for topic in TOPICS:
        configuration: dict[str, Any] = {"cleanup.policy": ["compact"] if topic.compacted else ["delete"]}
        if topic.keep_forever:
            configuration["retention.ms"] = -1
        channels[_channel_id(topic.name)] = {
            "address": topic.name,
            "title": topic.name,
            "description": topic.description,
            "messages": {m: {"$ref": f"#/components/messages/{m}"} for m in _messages_on(topic.name)},
            "bindings": {
                "kafka": {
                    "partitions": topic.partitions,
                    "topicConfiguration": configuration,
                    "bindingVersion": KAFKA_BINDING_VERSION,
                }
            },
        }
    channels.update(_party_channels())
    return channels


def _party_channels() -> dict[str, Any]:
    """One channel per kind of party topic (services/feeds): a record copied byte for byte from its source topic."""
    channels = {}
    for kind in PARTY_TOPIC_KINDS:
        source = BUYER_EVENTS if kind == "buyer" else COOPERATIVE_EVENTS
        messages = [_event_message_id(m) for m, t in EVENT_KINDS if t in (FILLS, source)] + ["receipt"]
        channels[_camel(f"party {kind}")] = {
            "address": f"{PARTY_TOPIC_PREFIX}{kind}.{{token}}",
            "title": f"{PARTY_TOPIC_PREFIX}{kind}.<token>",
            "description": f"One {kind}'s own records, copied by the feeds service with a `farmlink.source` header "
            f"(<topic>/<partition>/<offset>): its fills, its events on {source}, the receipts of its inputs. "
            f"Only that {kind}'s principal `{kind}.<token>` reads it (isolation_level=read_committed).",
            "parameters": {"token": {"description": "contracts.topics.party_token of the party id: slug, `-`, 16 hex digits"}},
            "messages": {m: {"$ref": f"#/components/messages/{m}"} for m in messages},
            "bindings": {
                "kafka": {
                    "partitions": PARTY_TOPIC_PARTITIONS,
                    "topicConfiguration": {"cleanup.policy": ["delete"], "retention.ms": -1},
                    "bindingVersion": KAFKA_BINDING_VERSION,
                }
            },
        }
    return channels


def _party_operations(channels: dict[str, Any]) -> dict[str, Any]:
    operations = {}
    for kind in PARTY_TOPIC_KINDS:
        channel_id = _camel(f"party {kind}")
        operations[_camel(f"{kind} party receive {channel_id}")] = {
            "action": "receive",
            "title": f"{kind}.<token> receives its own party topic",
            "summary": f"a registered {kind}'s own principal: may read its own topic only",
            "channel": {"$ref": f"#/channels/{channel_id}"},
            "messages": [{"$ref": f"#/channels/{channel_id}/messages/{m}"} for m in channels[channel_id]["messages"]],
            "security": [{"$ref": "#/components/securitySchemes/scram"}],
        }
    return operations


def _operations(channels: dict[str, Any]) -> dict[str, Any]:
    by_address = {channel["address"]: channel_id for channel_id, channel in channels.items()}
    operations = {}
    for principal in PRINCIPALS:
        for action, topics in (("send", principal.write), ("receive", principal.read)):
            for topic in topics:
                channel_id = by_address.get(topic)
                if channel_id is None:
                    continue
                operations[_camel(f"{principal.name} {action} {channel_id}")] = {
                    "action": action,
                    "title": f"{principal.name} {action}s {topic}",
                    "summary": f"{principal.who}: {'may publish to' if action == 'send' else 'may read'} {topic}",
                    "channel": {"$ref": f"#/channels/{channel_id}"},
                    "messages": [{"$ref": f"#/channels/{channel_id}/messages/{m}"} for m in channels[channel_id]["messages"]],
                    "security": [{"$ref": "#/components/securitySchemes/scram"}],
                }
    return operations | _party_operations(channels)


def document() -> dict[str, Any]:
    """The whole AsyncAPI 3.0 document, as data."""
    channels = _channels()
    return {
        "asyncapi": "3.0.0",
        "info": {
            "title": "farmlink",
            "version": metadata.version("farmlink"),
            "description": "Event-sourced supply and purchase matching for Yanhe county: cooperatives publish harvests, "
            "buyers place orders and guaranteed-floor commitments, the matcher fills them, settlement "
            "pays households. Generated from the code by `farmlink contracts asyncapi`.",
        },
        "defaultContentType": "application/json",
        "servers": {
            "local": {
                "host": f"127.0.0.1:{LOCAL_KAFKA_PORT}",
                "protocol": "kafka",
                "protocolVersion": "4.1.1",
                "description": "The broker `farmlink infra up` starts (loopback only); every client logs in with "
                "its principal's SCRAM credentials (events/access.py).",
                "security": [{"$ref": "#/components/securitySchemes/scram"}],
            },
        },
        "channels": channels,
        "operations": _operations(channels),
        "components": {
            "securitySchemes": {
                "scram": {"type": "scramSha512", "description": f"SASL/{SCRAM_MECHANISM}; ACLs per principal (events/access.py)"}
            },
            "messages": _input_messages() | _event_messages() | _other_messages(),
            "schemas": _schemas(),
        },
    }


def render(doc: dict[str, Any] | None = None) -> str:
    """The committed text: YAML, keys in the document's own order, one trailing newline."""
    return yaml.safe_dump(doc if doc is not None else document(), sort_keys=False, allow_unicode=True, width=120)
