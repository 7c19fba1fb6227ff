"""Each service, as `farmlink up` starts it, serves its own /metrics: two valid inputs and a bad one published on
the real broker move the accepted and rejected counters of their types in the services that own them, the
dead letter is counted, every service shows its outbox, its relay and FastStream's own series, and each
instance's heartbeat names where it serves them."""

import asyncio
import json
import urllib.request

import pytest
from prometheus_client.parser import text_string_to_metric_families

from events.relay import idempotent_producer
from farmlink.operations import processes
from farmlink.operations.caughtup import wait_until_caught_up
from tests.e2e.inputs import fresh, valid_input, valid_payload
from tests.kafka_helpers import login

pytestmark = pytest.mark.e2e

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def scrape(service: str) -> Samples:
    """Every sample a service's /metrics answers, by name and labels."""
    port = processes.metrics_port(service)
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as answer:
        text = answer.read().decode()
    return {
        (s.name, frozenset(s.labels.items())): s.value for family in text_string_to_metric_families(text) for s in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float | None:
    return samples.get((name, frozenset(labels.items())))


async def until(check, timeout: float = 60.0):
    """Wait until `check()` gives something true; its last answer."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        found = await asyncio.to_thread(check)
        if found or loop.time() > deadline:
            return found
        await asyncio.sleep(0.3)


async def test_two_valid_inputs_and_a_bad_one_move_the_owning_services_counters_by_type(clean_system):
    cooperative = valid_input("cooperative.registered", valid_payload("cooperative.registered"))
    buyer = valid_input("buyer.registered", valid_payload("buyer.registered"))
    bad = valid_input("harvest.recorded", {**valid_payload("harvest.recorded"), "lot_id": f"lot-{fresh()}", "quantity": "0"})
    producer = idempotent_producer(clean_system.bootstrap, **login())
    await producer.start()
    try:
        for record in (cooperative, buyer, bad):
            await producer.send_and_wait(record.topic, record.value, key=record.key)
    finally:
        await producer.stop()
    await wait_until_caught_up(clean_system.bootstrap, clean_system.dsn)

    def counted() -> tuple[Samples, Samples] | None:
        coop, buy = scrape("cooperative"), scrape("buyer")
        done = value(
            coop, "farmlink_inputs_total", consumer="cooperative", type="harvest.recorded", outcome="rejected"
        ) and value(buy, "farmlink_inputs_total", consumer="buyer", type="buyer.registered", outcome="accepted")
        return (coop, buy) if done else None

    found = await until(counted)
    assert found is not None, "the owning services never counted the inputs"
    coop, buy = found
    assert value(coop, "farmlink_inputs_total", consumer="cooperative", type="cooperative.registered", outcome="accepted") == 1
    assert value(coop, "farmlink_inputs_total", consumer="cooperative", type="harvest.recorded", outcome="rejected") == 1
    assert value(coop, "farmlink_dead_letters_total", consumer="cooperative") == 1
    assert value(coop, "farmlink_events_total", type="CooperativeRegistered") == 1
    assert value(buy, "farmlink_inputs_total", consumer="buyer", type="buyer.registered", outcome="accepted") == 1
    assert value(buy, "farmlink_dead_letters_total", consumer="buyer") is None, "the buyer refused nothing"
    received = value(
        coop,
        "faststream_received_messages_total",
        app_name="farmlink-cooperative",
        broker="kafka",
        handler="farmlink.cooperative.input",
    )
    assert received is not None and received >= 2, "FastStream's middleware counted the records the subscriber received"


async def test_every_service_shows_its_outbox_and_its_relay_and_its_heartbeat_names_its_metrics_port(clean_system):
    for service in processes.SERVICES:
        samples = await asyncio.to_thread(scrape, service)
        assert value(samples, "farmlink_outbox_probe_success", service=service) == 1, service
        assert value(samples, "farmlink_outbox_depth", service=service) is not None, service
        assert value(samples, "farmlink_outbox_oldest_age_seconds", service=service) is not None, service
        assert value(samples, "farmlink_relay_published_rows_total", service=service) is not None, service
        assert value(samples, "process_resident_memory_bytes") is not None, service
        heartbeat = await until(lambda: metrics_in_heartbeat(service), timeout=10)
        assert heartbeat == f"http://127.0.0.1:{processes.metrics_port(service)}/metrics"


def metrics_in_heartbeat(service: str) -> str | None:
    """Where the instance's heartbeat file says it serves /metrics (None until it says so)."""
    try:
        return json.loads(processes.health_file(service).read_text()).get("metrics")
    except (OSError, ValueError):
        return None
