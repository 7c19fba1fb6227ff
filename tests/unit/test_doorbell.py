"""The relay's doorbell: a writer wakes its own process's leading relay directly, and any other relay by NOTIFY."""

import asyncio

import pytest

from events.outbox import Doorbell

pytestmark = pytest.mark.unit


class FakePool:
    def __init__(self):
        self.statements: list[tuple[str, tuple]] = []

    async def execute(self, sql, *args):
        self.statements.append((sql, args))


async def _ring(doorbell: Doorbell) -> None:
    doorbell.ring()
    if doorbell._task is not None:
        await doorbell._task


def test_a_writer_wakes_the_leading_relay_of_its_own_process_without_a_notify():
    pool, woken = FakePool(), []
    doorbell = Doorbell(pool, "farmlink_outbox_buyer")
    doorbell.local = lambda: woken.append(True) or True
    asyncio.run(_ring(doorbell))
    assert woken == [True]
    assert pool.statements == []


def test_a_writer_whose_process_relay_does_not_lead_rings_the_leader_by_notify():
    pool = FakePool()
    doorbell = Doorbell(pool, "farmlink_outbox_buyer")
    doorbell.local = lambda: False  # another instance's relay holds the schema's lock
    asyncio.run(_ring(doorbell))
    assert pool.statements == [("SELECT pg_notify($1, '')", ("farmlink_outbox_buyer",))]


def test_a_writer_without_a_relay_in_its_process_rings_by_notify():
    pool = FakePool()
    asyncio.run(_ring(Doorbell(pool, "farmlink_outbox_matching")))
    assert pool.statements == [("SELECT pg_notify($1, '')", ("farmlink_outbox_matching",))]
