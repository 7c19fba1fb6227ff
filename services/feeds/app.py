"""The feeds service: each registered buyer and cooperative reads its own records on a topic of its own.

Kafka authorises per topic, never per message, so privacy needs per-party topics. This service consumes
the fills, the buyer and cooperative events and the receipts (read_committed, in its own consumer group
`farmlink.feeds`) and copies each record, byte for byte with its key and headers plus a
`farmlink.source` header (`<topic>/<partition>/<offset>`), onto the topic of every party it belongs to:

| record | copied to |
| --- | --- |
| FillMade | its buyer's topic and its lot's cooperative's topic |
| a buyer event (BuyerRegistered, OrderPlaced, OrderCancelled, CommitmentMade, key events) | that buyer's topic |
| a cooperative event (CooperativeRegistered, PlantingRecorded, HarvestRecorded, key events) | that cooperative's topic |
| a receipt of a buyer's or a cooperative's input (its `farmlink.producer` header) | that party's topic |

Exactly once, like every farmlink consumer: the copies are outbox rows written in the same PostgreSQL
transaction as the inbox marks of the records they copy (events/unit.py), and the outbox relay publishes
them in Kafka transactions with a checkpoint (events/relay.py). A SIGKILL anywhere redelivers records the
inbox already holds (nothing copied twice) or rows the checkpoint says were published (nothing published
twice); parties read with isolation_level=read_committed.

Before a batch is handled, the registrar (services/feeds/registrar.py) creates the party topics the batch
writes to, a principal for each party that registered (BuyerRegistered, CooperativeRegistered) and removes
the principal of each party that revoked its key (BuyerKeyRevoked, CooperativeKeyRevoked).
"""

import asyncio
import hashlib
from collections.abc import Sequence
from typing import Any

from faststream.kafka import KafkaMessage

from contracts.buyer import BuyerRegistered
from contracts.cooperative import CooperativeRegistered
from contracts.inputs import Receipt
from contracts.matching import FillMade
from contracts.model import Contract
from contracts.parties import BuyerKeyRevoked, CooperativeKeyRevoked
from contracts.topics import BUYER_EVENTS, COOPERATIVE_EVENTS, FILLS, PARTY_TOPIC_KINDS, RECEIPTS, party_topic
from events.codec import decode_event
from events.consumer import PRODUCER_HEADER, Decoded, Delivery
from events.runtime import ServiceRuntime, deliveries_of, require_store
from events.handling import Consumer, consume_batch
from events.unit import BatchUnitOfWork
from services.feeds.registrar import Registrar

SERVICE = "feeds"
SOURCE_HEADER = "farmlink.source"
"""Header on every copy: where the original record is (`<topic>/<partition>/<offset>`)."""

runtime = ServiceRuntime(SERVICE)
app = runtime.app
registrar = Registrar(runtime.config)

EVENT_TOPIC_KIND = {BUYER_EVENTS: "buyer", COOPERATIVE_EVENTS: "cooperative"}
REGISTERED = (BuyerRegistered, CooperativeRegistered)
REVOKED = (BuyerKeyRevoked, CooperativeKeyRevoked)


def decode_feed(delivery: Delivery) -> Decoded[tuple[Delivery, Contract]]:
    """A record and its model: a receipt (inbox id: `receipt:` and its bytes' SHA-256, since one input has
    several receipts) or an event with its envelope's event id."""
    if delivery.topic == RECEIPTS:
        receipt = Receipt.model_validate_json(delivery.value)
        digest = hashlib.sha256(delivery.value).hexdigest()[:32]
        return Decoded((delivery, receipt), message_id=f"receipt:{digest}", correlation_id=receipt.correlation_id)
    decoded = decode_event(delivery)
    return Decoded((delivery, decoded.item[1]), message_id=decoded.message_id, correlation_id=decoded.correlation_id)


def producer_of(delivery: Delivery) -> str:
    """The producer a receipt's header names (events.consumer.PRODUCER_HEADER); empty when none."""
    values = [value for key, value in delivery.headers if key == PRODUCER_HEADER and value]
    return values[-1].decode("utf-8", "replace") if values else ""


def parties_of(delivery: Delivery, message: Contract) -> list[tuple[str, str]]:
    """The (kind, party id) of every party a record belongs to, in a fixed order."""
    if isinstance(message, FillMade):
        return [("buyer", message.buyer_id), ("cooperative", message.cooperative_id)]
    if isinstance(message, Receipt):
        kind, _, party_id = producer_of(delivery).partition(":")
        return [(kind, party_id)] if kind in PARTY_TOPIC_KINDS and party_id else []
    kind = EVENT_TOPIC_KIND.get(delivery.topic)
    if kind is None:
        return []
    party_id = getattr(message, f"{kind}_id", None) or getattr(message, "party_id", None)
    return [(kind, party_id)] if party_id else []


def proves_its_parties(message: Contract) -> bool:
    """Whether a record shows its parties exist: every event and fill does (a service recorded it), and so does an
    accepted receipt (its service checked the input's signature against the party's key, or registered it); a
    rejected receipt does not (its producer header names whatever the input claimed, so it may name no party)."""
    return not (isinstance(message, Receipt) and message.status == "rejected")


def forward(uow: BatchUnitOfWork, decoded: Decoded[Any]) -> None:
    """Stage a copy of the record for each of its parties' topics. A rejected receipt goes only to a party topic
    that exists already, so an input that claims an unknown party makes no topic."""
    delivery, message = decoded.item
    source = f"{delivery.topic}/{delivery.partition}/{delivery.offset}".encode()
    headers = [*delivery.headers, (SOURCE_HEADER, source)]
    proven = proves_its_parties(message)
    for kind, party_id in parties_of(delivery, message):
        topic = party_topic(kind, party_id)
        if proven or registrar.exists(topic):
            uow.enqueue(topic, delivery.key, delivery.value, headers)


FeedItem = Decoded[tuple[Delivery, Contract]]


def decode_all(deliveries: Sequence[Delivery]) -> list[FeedItem | None]:
    """Each record of a batch decoded, or None where it does not decode (the consumer dead-letters it with the
    reason)."""
    decoded: list[FeedItem | None] = []
    for delivery in deliveries:
        try:
            decoded.append(decode_feed(delivery))
        except Exception:  # noqa: BLE001 - the consumer dead-letters it with the reason
            decoded.append(None)
    return decoded


def access_changes(
    deliveries: Sequence[Delivery], decoded: Sequence[FeedItem | None] | None = None
) -> tuple[set[str], list[tuple[str, str, str]]]:
    """What a batch needs from the registrar: the party topics its records that prove their parties exist write to
    (`proves_its_parties`), and in record order each
    ("register" | "revoke", kind, party id). Records that do not decode are left to the consumer (dead letters)."""
    decoded = decode_all(deliveries) if decoded is None else decoded
    topics: set[str] = set()
    changes: list[tuple[str, str, str]] = []
    for delivery, found in zip(deliveries, decoded, strict=True):
        if found is None:
            continue
        _, message = found.item
        parties = parties_of(delivery, message)
        if proves_its_parties(message):
            topics |= {party_topic(kind, party_id) for kind, party_id in parties}
        if isinstance(message, REGISTERED + REVOKED) and parties:
            changes.append(("register" if isinstance(message, REGISTERED) else "revoke", *parties[0]))
    return topics, changes


def apply_access(deliveries: Sequence[Delivery], decoded: Sequence[FeedItem | None]) -> None:
    """Create the batch's party topics, then register and revoke party principals in record order."""
    topics, changes = access_changes(deliveries, decoded)
    registrar.ensure_topics(topics)
    for change, kind, party_id in changes:
        if change == "register":
            registrar.register(kind, party_id)
        else:
            registrar.revoke(kind, party_id)


_DECODED: dict[int, FeedItem] = {}
"""The batch in hand, decoded once for the registrar and the consumer both (by the id of its Delivery objects,
which live until the batch is handled)."""


def decode_once(delivery: Delivery) -> FeedItem:
    found = _DECODED.get(id(delivery))
    return found if found is not None else decode_feed(delivery)


CONSUMER = Consumer(SERVICE, decode_once, forward)


@runtime.subscriber(COOPERATIVE_EVENTS, BUYER_EVENTS, FILLS, RECEIPTS, **runtime.BEHIND_THE_MARKET)
async def on_record(body: list[bytes], message: KafkaMessage) -> None:
    deliveries = deliveries_of(message)
    decoded = decode_all(deliveries)
    await asyncio.to_thread(apply_access, deliveries, decoded)
    _DECODED.update((id(delivery), item) for delivery, item in zip(deliveries, decoded) if item is not None)
    try:
        await consume_batch(require_store(runtime), CONSUMER, deliveries)
    finally:
        _DECODED.clear()
