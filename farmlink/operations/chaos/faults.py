"""Network faults on loopback for `farmlink chaos`: a TCP proxy the run starts itself.

One service instance is started with its Kafka and PostgreSQL ports pointing at a `FaultyLink`
each; the link forwards every byte to the real broker (its extra listener, see
`farmlink.operations.infra.server_properties`) or server, and the run can at any moment

- `delay(seconds)`: hold every chunk that long in each direction before passing it on (added
  latency: a round trip takes twice as long more; throughput is not capped, chunks stay in order),
- `partition("blackhole")`: pass nothing either way, as when packets vanish: open connections stall
  (what was sent waits, as TCP would retransmit it) and new ones are accepted but get no answer,
- `partition("reset")`: cut every open connection with a TCP reset and refuse new ones (accepted,
  then reset at once),
- `heal()`: pass everything again, without delay; stalled bytes flow on in order.

Nothing here touches the machine's network configuration (no qdisc, no namespace): only the
connections made to the link's own port are affected. Loopback only.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import socket
import struct
import time
from dataclasses import dataclass, field
from pathlib import Path

CHUNK = 64 * 1024
BUFFERED_CHUNKS = 64  # per direction; beyond that the link stops reading (TCP's window does the rest)
PARTITION_MODES = ("blackhole", "reset")


@dataclass
class LinkStats:
    """What went through a link: connections accepted and cut, bytes each way."""

    connections: int = 0
    cut: int = 0
    refused: int = 0
    bytes_up: int = 0  # client -> upstream
    bytes_down: int = 0  # upstream -> client
    faults: list[str] = field(default_factory=list)


def _reset(writer: asyncio.StreamWriter) -> None:
    """Close with a TCP reset (SO_LINGER 0), as a cut cable seen from the other end after a timeout would not,
    but as a firewall rejecting a flow does."""
    sock = writer.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()


class FaultyLink:
    """A TCP proxy on 127.0.0.1:`port` to `upstream_host`:`upstream_port` that can be slowed down and partitioned."""

    def __init__(self, name: str, upstream_port: int, port: int = 0, upstream_host: str = "127.0.0.1"):
        self.name = name
        self.upstream = (upstream_host, upstream_port)
        self._wanted_port = port
        self._server: asyncio.Server | None = None
        self._flowing = asyncio.Event()
        self._flowing.set()
        self.delay_s = 0.0
        self.partitioned: str | None = None  # None, "blackhole" or "reset"
        self._connections: set[tuple[asyncio.StreamWriter, asyncio.StreamWriter | None]] = set()
        self._tasks: set[asyncio.Task] = set()
        self.stats = LinkStats()

    # -- life

    async def start(self) -> FaultyLink:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", self._wanted_port, reuse_address=True)
        return self

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError(f"link {self.name} is not started")
        return self._server.sockets[0].getsockname()[1]

    async def close(self) -> None:
        """Stop listening and drop every connection."""
        if self._server is not None:
            self._server.close()
        for client, upstream in list(self._connections):
            client.transport.abort()
            if upstream is not None:
                upstream.transport.abort()
        for task in list(self._tasks):
            task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._server is not None:
            with contextlib.suppress(Exception):
                await self._server.wait_closed()

    async def __aenter__(self) -> FaultyLink:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # -- faults

    def delay(self, seconds: float) -> None:
        """Hold each chunk `seconds` in each direction (0: none)."""
        if seconds < 0:
            raise ValueError(f"a delay cannot be negative ({seconds} s)")
        self.delay_s = seconds
        self.stats.faults.append(f"delay {seconds:g} s")

    def partition(self, mode: str = "blackhole") -> None:
        """Pass nothing until `heal()`: "blackhole" stalls every connection, "reset" cuts them and refuses new ones."""
        if mode not in PARTITION_MODES:
            raise ValueError(f"unknown partition mode {mode!r}; known: {', '.join(PARTITION_MODES)}")
        self.partitioned = mode
        self._flowing.clear()
        self.stats.faults.append(f"partition {mode}")
        if mode == "reset":
            for client, upstream in list(self._connections):
                self._cut(client, upstream)

    def heal(self) -> None:
        """Pass everything again, at once and without delay."""
        self.partitioned = None
        self.delay_s = 0.0
        self._flowing.set()
        self.stats.faults.append("healed")

    # -- the proxy

    def _cut(self, client: asyncio.StreamWriter, upstream: asyncio.StreamWriter | None) -> None:
        self.stats.cut += 1
        _reset(client)
        if upstream is not None:
            _reset(upstream)

    async def _serve(self, client_reader: asyncio.StreamReader, client: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._tasks.add(task)
        self.stats.connections += 1
        entry: tuple[asyncio.StreamWriter, asyncio.StreamWriter | None] = (client, None)
        self._connections.add(entry)
        try:
            if self.partitioned == "reset":
                self.stats.refused += 1
                _reset(client)
                return
            await self._flowing.wait()  # blackhole: the client's bytes wait in its socket until the heal
            if self.partitioned == "reset":  # partitioned again while waiting
                self.stats.refused += 1
                _reset(client)
                return
            try:
                upstream_reader, upstream = await asyncio.open_connection(*self.upstream)
            except OSError:
                self.stats.refused += 1
                _reset(client)  # upstream down: the client sees what it would see without the link
                return
            self._connections.discard(entry)
            entry = (client, upstream)
            self._connections.add(entry)
            await asyncio.gather(self._pump(client_reader, upstream, "up"), self._pump(upstream_reader, client, "down"))
        except (OSError, asyncio.IncompleteReadError):
            pass
        finally:
            self._connections.discard(entry)
            for writer in entry:
                if writer is not None and not writer.is_closing():
                    writer.transport.abort()
            if task is not None:
                self._tasks.discard(task)

    async def _pump(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, direction: str) -> None:
        """Move one direction's bytes: read as they come, stamped; pass each on once it may (healed, delay elapsed)."""
        queue: asyncio.Queue[tuple[float, bytes]] = asyncio.Queue(BUFFERED_CHUNKS)

        async def read() -> None:
            try:
                while chunk := await reader.read(CHUNK):
                    await queue.put((time.monotonic(), chunk))
            except OSError:
                pass
            await queue.put((time.monotonic(), b""))  # end of stream, passed on in order too

        reading = asyncio.create_task(read())
        try:
            while True:
                stamp, chunk = await queue.get()
                while True:
                    await self._flowing.wait()
                    wait = stamp + self.delay_s - time.monotonic()
                    if wait <= 0 and self._flowing.is_set():
                        break
                    await asyncio.sleep(max(wait, 0.001))
                if not chunk:
                    if writer.can_write_eof() and not writer.is_closing():
                        with contextlib.suppress(OSError):
                            writer.write_eof()
                    return
                writer.write(chunk)
                await writer.drain()
                if direction == "up":
                    self.stats.bytes_up += len(chunk)
                else:
                    self.stats.bytes_down += len(chunk)
        finally:
            reading.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await reading


class VolumeFiller:
    """Fills the file system that holds `folder` to its last byte with files named `prefix`-N, and keeps it full:
    each `fill()` takes whatever space was freed since (a removed WAL segment, say). `free()` deletes them.

    Blocking file I/O: call it from a thread in async code. Meant for a small volume of its own (a tmpfs)."""

    def __init__(self, folder: Path, prefix: str):
        self.folder = folder
        self.prefix = prefix
        self.files: list[Path] = []
        self.written = 0

    def fill(self) -> int:
        """Write until the file system refuses (ENOSPC); the bytes written by this call."""
        written = 0
        path = self.folder / f"{self.prefix}-{len(self.files)}"
        self.files.append(path)
        with open(path, "wb", buffering=0) as out:
            for size in (1 << 20, 1 << 16, 1 << 12):
                block = b"\0" * size
                while True:
                    try:
                        written += out.write(block)
                    except OSError as error:
                        if error.errno != errno.ENOSPC:
                            raise
                        break
        if not written:
            path.unlink(missing_ok=True)
            self.files.pop()
        self.written += written
        return written

    def free(self) -> int:
        """Delete every filler file; the bytes freed."""
        freed, self.written = self.written, 0
        for path in self.files:
            path.unlink(missing_ok=True)
        self.files = []
        return freed
