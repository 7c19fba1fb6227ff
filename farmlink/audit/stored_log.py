"""The log of a streamed audit (streamed.py) as an AuditLog that holds none of it: each schema is read again from
PostgreSQL, up to the position the audit reached, every time it is iterated. The report, `--as-of` and the
functions written for a log in memory take it as they take any AuditLog (they iterate; none indexes), in memory
bounded by a few batches."""

from __future__ import annotations

import asyncio
import queue
import threading
from collections.abc import Iterator
from typing import Any

import asyncpg

from farmlink.audit.log import SCHEMAS, stream_rows
from farmlink.audit.model import AuditLog, Record

_END = object()


class StoredSchema:
    """One schema's events at or before `through`, in global order, read from the store on each iteration."""

    def __init__(self, dsn: str, schema: str, prefix: str, through: int, count: int) -> None:
        self.dsn, self.schema, self.prefix, self.through, self.count = dsn, schema, prefix, through, count

    def __len__(self) -> int:
        return self.count

    def __bool__(self) -> bool:
        return self.count > 0

    def __iter__(self) -> Iterator[Record]:
        batches: queue.Queue[Any] = queue.Queue(maxsize=2)
        stop = threading.Event()

        def put(item: Any) -> bool:
            while not stop.is_set():
                try:
                    batches.put(item, timeout=0.1)
                    return True
                except queue.Full:
                    continue
            return False

        async def read() -> None:
            conn = await asyncpg.connect(self.dsn)
            try:
                async with conn.transaction(isolation="repeatable_read", readonly=True):
                    async for batch in stream_rows(conn, self.schema, self.prefix, "global_position <= $1", (self.through,)):
                        if not put(batch):
                            return
            finally:
                await conn.close()

        def produce() -> None:  # a thread with its own event loop: the caller may be inside one
            try:
                asyncio.run(read())
                put(_END)
            except BaseException as error:  # handed to the reader, never lost in the thread
                put(error)

        thread = threading.Thread(target=produce, name=f"read {self.schema}", daemon=True)
        thread.start()
        try:
            while (item := batches.get()) is not _END:
                if isinstance(item, BaseException):
                    raise item
                yield from item
        finally:
            stop.set()
            thread.join()


class StoredLog(AuditLog):
    """Every schema's events up to the positions an audit reached, read from the store when iterated."""

    def __init__(self, dsn: str, prefix: str, positions: dict[str, int], counts: dict[str, int]) -> None:
        super().__init__(source="postgres")
        self.by_schema = {  # type: ignore[assignment]
            schema: StoredSchema(dsn, schema, prefix, positions.get(schema, 0), counts.get(schema, 0))
            for schema in sorted(counts)
        }


async def stored_log(dsn: str, prefix: str = "") -> StoredLog:
    """The store's log as it is now (every schema with an events table, up to its last position)."""
    conn = await asyncpg.connect(dsn)
    try:
        positions: dict[str, int] = {}
        counts: dict[str, int] = {}
        for schema in SCHEMAS:
            if await conn.fetchval("SELECT to_regclass($1) IS NOT NULL", f"{prefix}{schema}.events"):
                row = await conn.fetchrow(f'SELECT count(*), coalesce(max(global_position), 0) FROM "{prefix}{schema}".events')
                counts[schema], positions[schema] = row[0], row[1]
        return StoredLog(dsn, prefix, positions, counts)
    finally:
        await conn.close()
