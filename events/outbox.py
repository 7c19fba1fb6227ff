"""The outbox as the write path fills it and the relay reads it: rows of published bytes, Kafka headers as jsonb, and
the doorbell that wakes a schema's relay after a commit."""

import asyncio
import base64
import logging
from collections.abc import Callable, Sequence
from typing import Any

import asyncpg
import orjson

from events.hashchain import canonical_bytes
from events.stored import Router, StoredEvent, kafka_headers

log = logging.getLogger(__name__)

OutboxRow = tuple[str, bytes | None, "bytes | tuple[bytes, bytes]", Sequence[tuple[str, bytes | None]], Any]
"""(topic, key, value, headers, event_id or None) of one message for the relay; the value of a new
event is the pair of bytes around its position (`event_outbox_rows`)."""


_POSITION_SENTINEL = 9_007_199_254_740_881  # stands for the position while the envelope is serialised


def event_outbox_rows(envelopes: Sequence[StoredEvent], router: Router) -> list[OutboxRow]:
    """The outbox rows of new events (each on its route; an event without one is not published).

    An event's position is handed out by the statement that stores it, so its published bytes
    are kept as the canonical JSON before and after the position (`value` is the pair), and the
    statement puts the two halves around the number (`write_batch`)."""
    rows: list[OutboxRow] = []
    for envelope in envelopes:
        route = router(envelope)
        if route is None:
            continue
        wire = envelope.wire()
        wire["global_position"] = _POSITION_SENTINEL
        whole = canonical_bytes(wire)
        prefix, _, suffix = whole.partition(str(_POSITION_SENTINEL).encode())
        if str(_POSITION_SENTINEL).encode() in suffix or b'"global_position":' + str(_POSITION_SENTINEL).encode() not in whole:
            raise ValueError(f"event {envelope.event_id}: its payload holds the position placeholder")
        rows.append((route.topic, route.key.encode(), (prefix, suffix), kafka_headers(envelope), envelope.event_id))
    return rows


def outbox_headers(headers: Sequence[tuple[str, bytes | None]]) -> str:
    """Kafka headers as the outbox keeps them (jsonb): [name, latin-1 text] pairs; a header
    jsonb cannot hold (a NUL character) as [base64 name, base64 value, "base64"]; a null value stays null."""
    items = []
    for name, value in headers:
        if "\x00" in name or (value is not None and b"\x00" in value):
            encoded = base64.b64encode(value).decode() if value is not None else None
            items.append([base64.b64encode(name.encode("utf-8", "surrogateescape")).decode(), encoded, "base64"])
        else:
            items.append([name, value.decode("latin-1") if value is not None else None])
    return orjson.dumps(items).decode()


def kafka_headers_of(stored: str) -> list[tuple[str, bytes | None]]:
    """The Kafka headers of an outbox row (see outbox_headers)."""
    headers: list[tuple[str, bytes | None]] = []
    for name, value, *tag in orjson.loads(stored):
        if tag == ["base64"]:
            headers.append(
                (
                    base64.b64decode(name).decode("utf-8", "surrogateescape"),
                    base64.b64decode(value) if value is not None else None,
                )
            )
        else:
            headers.append((name, value.encode("latin-1") if value is not None else None))
    return headers


def outbox_channel(schema: str) -> str:
    """The LISTEN/NOTIFY channel that wakes a schema's relay."""
    return f"farmlink_outbox_{schema}"


class Doorbell:
    """Wakes a schema's relay after a commit. When this process runs the schema's leading relay (a service with its
    relay, `local`), it wakes it directly: no round trip to PostgreSQL and no NOTIFY to deliver. Otherwise a NOTIFY on
    the channel, sent in a transaction of its own (so no writer's commit waits on NOTIFY's lock), at most one in
    flight; rings that come meanwhile are folded into one more. A ring lost to a crash costs nothing: a relay drains
    everything when it starts."""

    def __init__(self, pool: asyncpg.Pool, channel: str):
        self.pool = pool
        self.channel = channel
        self.local: Callable[[], bool] | None = None
        """Wakes this process's relay of the schema if it leads (holds the schema's relay lock); False if it does not."""
        self._task: asyncio.Task[None] | None = None
        self._again = False

    def ring(self) -> None:
        if self.local is not None and self.local():
            return
        if self._task is not None and not self._task.done():
            self._again = True
            return
        self._task = asyncio.get_running_loop().create_task(self._notify())

    async def _notify(self) -> None:
        while True:
            self._again = False
            try:
                await self.pool.execute("SELECT pg_notify($1, '')", self.channel)
            except Exception:  # the relay drains on its own start and on its next wake-up
                log.debug("doorbell %s: NOTIFY failed", self.channel, exc_info=True)
            if not self._again:
                return
