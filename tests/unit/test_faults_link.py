"""The chaos run's fault link (farmlink/operations/chaos/faults.py): a TCP proxy on loopback that passes bytes unchanged,
delays them, and partitions (stalls or cuts) and heals, shown with an echo server behind it."""

import asyncio
import time

import pytest

from farmlink.operations.chaos.faults import FaultyLink

pytestmark = pytest.mark.unit


async def _echo_server() -> asyncio.Server:
    async def echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        except OSError:
            pass
        finally:
            writer.close()

    return await asyncio.start_server(echo, "127.0.0.1", 0)


async def _link_to_echo():
    server = await _echo_server()
    link = await FaultyLink("echo", server.sockets[0].getsockname()[1]).start()
    return server, link


async def _round_trip(reader, writer, message: bytes, timeout: float = 5.0) -> float:
    started = time.monotonic()
    writer.write(message)
    await writer.drain()
    assert await asyncio.wait_for(reader.readexactly(len(message)), timeout) == message
    return time.monotonic() - started


async def _closed(server: asyncio.Server, link: FaultyLink) -> None:
    await link.close()
    server.close()
    await server.wait_closed()


def test_a_healthy_link_passes_every_byte_unchanged_and_in_order_both_ways():
    async def scenario():
        server, link = await _link_to_echo()
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", link.port)
            message = bytes(range(256)) * 8000  # 2 MB, more than the link buffers
            writer.write(message)
            await writer.drain()
            assert await asyncio.wait_for(reader.readexactly(len(message)), 10) == message
            writer.close()
            assert link.stats.bytes_up == link.stats.bytes_down == len(message)
        finally:
            await _closed(server, link)

    asyncio.run(scenario())


def test_a_delay_holds_each_chunk_in_each_direction_and_healing_removes_it():
    async def scenario():
        server, link = await _link_to_echo()
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", link.port)
            await _round_trip(reader, writer, b"warm-up")
            link.delay(0.2)
            assert await _round_trip(reader, writer, b"slow") >= 0.4  # 0.2 s out, 0.2 s back
            link.heal()
            assert await _round_trip(reader, writer, b"fast") < 0.2
            writer.close()
        finally:
            await _closed(server, link)

    asyncio.run(scenario())


def test_a_delay_adds_latency_without_capping_what_flows_behind_it():
    async def scenario():
        server, link = await _link_to_echo()
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", link.port)
            link.delay(0.1)
            started = time.monotonic()
            for n in range(20):  # 20 messages sent at once arrive together, about one round trip later
                writer.write(b"%02d" % n)
            await writer.drain()
            assert await asyncio.wait_for(reader.readexactly(40), 5) == b"".join(b"%02d" % n for n in range(20))
            assert 0.2 <= time.monotonic() - started < 20 * 0.2
            writer.close()
        finally:
            await _closed(server, link)

    asyncio.run(scenario())


def test_a_blackhole_partition_stalls_open_and_new_connections_and_the_heal_lets_every_byte_through():
    async def scenario():
        server, link = await _link_to_echo()
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", link.port)
            await _round_trip(reader, writer, b"before")
            link.partition("blackhole")
            writer.write(b"during")
            await writer.drain()
            late_reader, late_writer = await asyncio.open_connection("127.0.0.1", link.port)  # accepted, no answer
            late_writer.write(b"new")
            await late_writer.drain()
            with pytest.raises(asyncio.TimeoutError):
                await asyncio.wait_for(reader.readexactly(6), 0.5)
            with pytest.raises(asyncio.TimeoutError):
                await asyncio.wait_for(late_reader.readexactly(3), 0.1)
            link.heal()
            assert await asyncio.wait_for(reader.readexactly(6), 5) == b"during"  # stalled, not lost
            assert await asyncio.wait_for(late_reader.readexactly(3), 5) == b"new"
            await _round_trip(reader, writer, b"after")
            writer.close()
            late_writer.close()
        finally:
            await _closed(server, link)

    asyncio.run(scenario())


def test_a_reset_partition_cuts_open_connections_refuses_new_ones_and_after_the_heal_connections_work_again():
    async def scenario():
        server, link = await _link_to_echo()
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", link.port)
            await _round_trip(reader, writer, b"before")
            link.partition("reset")
            with pytest.raises((ConnectionError, asyncio.IncompleteReadError)):
                await asyncio.wait_for(_round_trip(reader, writer, b"cut"), 5)
            refused_reader, refused_writer = await asyncio.open_connection("127.0.0.1", link.port)
            with pytest.raises((ConnectionError, asyncio.IncompleteReadError)):
                await asyncio.wait_for(_round_trip(refused_reader, refused_writer, b"refused"), 5)
            assert link.stats.cut >= 1 and link.stats.refused >= 1
            link.heal()
            reader, writer = await asyncio.open_connection("127.0.0.1", link.port)
            await _round_trip(reader, writer, b"after")
            writer.close()
        finally:
            await _closed(server, link)

    asyncio.run(scenario())


def test_with_its_upstream_down_the_link_closes_the_client_instead_of_hanging():
    async def scenario():
        server = await _echo_server()
        port = server.sockets[0].getsockname()[1]
        server.close()
        await server.wait_closed()
        link = await FaultyLink("nowhere", port).start()
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", link.port)
            with pytest.raises((ConnectionError, asyncio.IncompleteReadError)):
                await asyncio.wait_for(_round_trip(reader, writer, b"anyone?"), 5)
        finally:
            await link.close()

    asyncio.run(scenario())


def test_unknown_partition_modes_and_negative_delays_are_refused_with_the_reason():
    link = FaultyLink("unused", 1)
    with pytest.raises(ValueError, match="unknown partition mode 'sever'"):
        link.partition("sever")
    with pytest.raises(ValueError, match="cannot be negative"):
        link.delay(-1)
