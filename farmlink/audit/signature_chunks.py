"""The signatures the streamed audit's ordered pass leaves pending (streamed.py), verified a chunk at a time: each
chunk written to a file and queued for the worker processes, which take the chunks up after the products, in
order, while the main process reads on. So the main process holds one chunk, however far the workers are behind."""

from __future__ import annotations

import asyncio
import os
import pickle
import time
from typing import Any

import orjson

from farmlink.audit.model import Finding, Record
from farmlink.audit.signatures import PendingSignature, verify_pending

CHUNK = 2_000
"""Pending signatures per chunk."""


class PendingSignatures:
    """The pending signatures, a chunk at a time: written to a file and queued for the workers (they take them
    up after the products, in order, while this process reads on), or verified here when there are no workers."""

    def __init__(self, pool: Any, after: dict[str, int], directory: str) -> None:
        self.pool, self.after, self.directory = pool, after, directory
        self.chunk: list[PendingSignature] = []
        self.sent: list[Any] = []
        self.found: list[tuple[int, Finding]] = []
        self.seconds = 0.0

    def add(self, pending: list[PendingSignature]) -> None:
        after = self.after
        self.chunk += [p for p in pending if p.record.global_position > after.get(p.record.schema, 0)] if after else pending
        if len(self.chunk) >= CHUNK:
            self.send()

    def send(self) -> None:
        chunk, self.chunk = self.chunk, []
        if not chunk:
            return
        if self.pool is None:
            self._take(_verify_chunk(chunk))
            return
        path = os.path.join(self.directory, f"signatures-{len(self.sent)}.pickle")
        with open(path, "wb") as file:
            pickle.dump([_flat(p) for p in chunk], file, protocol=pickle.HIGHEST_PROTOCOL)
        self.sent.append(self.pool.apply_async(_verify_file, (path,)))

    def _take(self, result: tuple[list[tuple[int, Finding]], float]) -> None:
        self.found += result[0]
        self.seconds += result[1]

    async def finish(self) -> list[tuple[int, Finding]]:
        self.send()
        for sent in self.sent:
            await asyncio.to_thread(sent.wait)
            self._take(sent.get())
        self.sent = []
        return self.found


def _verify_chunk(chunk: list[PendingSignature]) -> tuple[list[tuple[int, Finding]], float]:
    started = time.process_time()
    found = [(p.order, f) for p in chunk if (f := verify_pending(p)) is not None]
    return found, time.process_time() - started


def _flat(p: PendingSignature) -> tuple:
    """A pending signature as plain values, its payload as JSON bytes: a nested payload costs more to pickle and
    unpickle than to write and parse again (with the parser that read it, so nothing changes on the way)."""
    r = p.record
    fields = (r.schema, r.global_position, r.event_id, r.event_type, r.schema_version, r.stream_id, r.stream_version)
    return (p.order, p.key, p.whose, *fields, r.occurred_at, r.producer, r.correlation_id, r.causation_id,
            orjson.dumps(r.payload), r.prev_hash, r.hash)  # fmt: skip


def _unflat(t: tuple) -> PendingSignature:
    return PendingSignature(t[0], Record(*t[3:14], orjson.loads(t[14]), t[15], t[16]), t[1], t[2])


def _verify_file(path: str) -> tuple[list[tuple[int, Finding]], float]:
    started = time.process_time()
    with open(path, "rb") as file:
        chunk = [_unflat(t) for t in pickle.load(file)]
    os.unlink(path)
    found, _ = _verify_chunk(chunk)
    return found, time.process_time() - started
