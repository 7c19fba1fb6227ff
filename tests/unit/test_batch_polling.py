"""A service's batch poll: records as soon as they are there, no second wait after an empty poll, no spinning, and a
follower's linger gathers what arrives meanwhile into the same batch (events/runtime.py)."""

import asyncio

import pytest
from faststream.kafka.subscriber.usecase import BatchSubscriber

from events.runtime import POLL_WAIT_MS, ServiceRuntime

pytestmark = pytest.mark.unit

REAL_SLEEP = asyncio.sleep


class FakeConsumer:
    """aiokafka's `getmany` as the poll sees it: each call takes the next answer; an answer of None means 'nothing
    came in the whole wait' (the call takes its timeout on the loop's clock), {} means 'nothing, at once'."""

    def __init__(self, *answers):
        self.answers = list(answers)
        self.calls: list[tuple[int, int | None]] = []

    async def getmany(self, timeout_ms=0, max_records=None):
        self.calls.append((timeout_ms, max_records))
        answer = self.answers.pop(0)
        if answer is None:
            await REAL_SLEEP(timeout_ms / 1000)
            return {}
        return answer


def subscriber(linger_ms: int = 0, max_records: int = 500, **options) -> BatchSubscriber:
    runtime = ServiceRuntime("buyer")
    if linger_ms:
        options["linger_ms"] = linger_ms
    return runtime.subscriber("farmlink.buyer.inputs", max_records=max_records, **options)


@pytest.fixture
def sleeps(monkeypatch):
    """Every asyncio.sleep the poll makes, by length, each still taking its time on the loop."""
    made: list[float] = []

    async def recorded(seconds, *args):
        made.append(seconds)
        return await REAL_SLEEP(0)

    monkeypatch.setattr("events.runtime.asyncio.sleep", recorded)
    return made


def test_a_service_subscriber_waits_long_for_records_because_the_wait_ends_when_one_comes():
    polling = subscriber()
    assert polling.batch_timeout_ms == POLL_WAIT_MS >= 500


def test_records_that_are_there_are_returned_at_once_in_partition_order(sleeps):
    consumer = FakeConsumer({"p0": ["a", "b"], "p1": ["c"]})
    records = asyncio.run(subscriber().get_msg(consumer))
    assert records == ("a", "b", "c")
    assert sleeps == []


def test_a_poll_that_waited_its_whole_time_in_vain_returns_nothing_without_waiting_again(sleeps):
    consumer = FakeConsumer(None)
    records = asyncio.run(subscriber(batch_timeout_ms=50).get_msg(consumer))
    assert records == ()
    assert sleeps == []


def test_a_poll_that_came_back_empty_at_once_waits_out_its_time_so_the_loop_never_spins(sleeps):
    consumer = FakeConsumer({})
    records = asyncio.run(subscriber().get_msg(consumer))
    assert records == ()
    assert len(sleeps) == 1 and sleeps[0] == pytest.approx(POLL_WAIT_MS / 1000, rel=0.2)


def test_a_follower_lingers_after_its_first_records_and_takes_what_came_meanwhile_in_the_same_batch(sleeps):
    consumer = FakeConsumer({"p0": ["a"]}, {"p0": ["b"], "p1": ["c"]})
    records = asyncio.run(subscriber(linger_ms=250, max_records=10).get_msg(consumer))
    assert records == ("a", "b", "c")
    assert sleeps == [0.25]
    assert consumer.calls[1] == (0, 9)  # no further wait, and only room for what the batch can still take


def test_a_full_batch_does_not_linger(sleeps):
    consumer = FakeConsumer({"p0": ["a", "b"]})
    records = asyncio.run(subscriber(linger_ms=250, max_records=2).get_msg(consumer))
    assert records == ("a", "b")
    assert sleeps == []


def test_the_poll_replaces_the_faststream_version_it_was_written_against():
    """`events.runtime` replaces FastStream's BatchSubscriber.get_msg: a new FastStream may poll differently, so
    upgrading it means reading its get_msg again (and this pin with it: requirements.lock)."""
    from importlib.metadata import version

    assert version("faststream") == "0.7.8"
    assert BatchSubscriber.get_msg.__module__ == "events.runtime"
