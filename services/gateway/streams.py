"""Server-Sent Events from the gateway: a buyer's fills, the office's fills, offers; woken by the backend's hub.

After each committed batch the projection consumer wakes the open streams (services/gateway/backend.py `Hub`):
a stream with fills to send reads them from the projection after its cursor (`seq`, the SSE event id), so
nothing committed while it is open is missed and `Last-Event-ID` resumes; offer changes are passed on as they
come; an office stream also gets an `office` event when the office's figures may have moved.
"""

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import orjson
from fastapi import Request
from fastapi.responses import StreamingResponse

KEEPALIVE_S = 15.0

Fills = Callable[[int], Awaitable[list[dict]]]
"""The fills a stream sends after a cursor (`seq`), in order."""


def sse(events: AsyncIterator[bytes]) -> StreamingResponse:
    return StreamingResponse(
        events, media_type="text/event-stream", headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
    )


async def stream(request: Request, backend: Any, fills: Fills | None, cursor: int, office: bool = False) -> AsyncIterator[bytes]:
    """One SSE stream: `offer` events always, `fill` events from `fills` after `cursor` (a comment first, once
    listening), and with `office` an `office` event after each batch that may change the office's figures."""
    queue = backend.hub.listen()
    try:
        yield b": listening\n\n"
        wake = fills is not None  # fills committed before the stream listened are sent first
        while True:
            if wake and fills is not None:
                for fill in await fills(cursor):
                    cursor = fill["seq"]
                    yield b"id: %d\nevent: fill\ndata: %s\n\n" % (cursor, orjson.dumps(fill))
                wake = False
            if queue not in backend.hub.listeners and queue.empty():
                return  # it fell too far behind: the client reconnects (with Last-Event-ID)
            try:
                kind, item = await asyncio.wait_for(queue.get(), KEEPALIVE_S)
            except asyncio.TimeoutError:
                if await request.is_disconnected():
                    return
                yield b": keepalive\n\n"
                continue
            if kind == "fills":
                wake = fills is not None
            elif kind == "offer":
                yield b"event: offer\ndata: %s\n\n" % orjson.dumps(item)
            elif kind == "office" and office:
                yield b"event: office\ndata: {}\n\n"
    finally:
        backend.hub.leave(queue)
