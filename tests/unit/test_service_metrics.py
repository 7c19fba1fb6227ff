"""Each service process serves its own /metrics: a port per instance from one base, inputs accepted and
rejected by type counted once their batch committed, dead letters, fills by price basis, the outbox read at
scrape time without ever holding up the consumer, the relay's last failure, FastStream's own series."""

import asyncio
import json
import socket
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from types import SimpleNamespace

import pytest
from prometheus_client import generate_latest

from events import metrics
from events.consumer import Delivery
from events.runtime import ServiceRuntime
from events.unit import MemoryUnitOfWork
from events.handling import decide_one
from farmlink.operations import processes
from services.buyer import app as buyer_service
from tests.signed_inputs import signed

pytestmark = pytest.mark.unit

ORDER = {
    "order_id": "o1",
    "buyer_id": "tongren-mart",
    "product": "chili",
    "min_grade": "B",
    "quantity": "80",
    "limit_price_fen": 500,
    "deliver_from": "2020-08-01",
    "deliver_to": "2020-08-31",
    "regions": [],
}


def sample(registry, name: str, **labels: str) -> float | None:
    return registry.get_sample_value(name, labels)


@pytest.fixture
def event_loop_thread() -> Iterator[asyncio.AbstractEventLoop]:
    """An event loop running in a thread of its own, as a service's loop runs beside the metrics server's thread."""
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    yield loop
    loop.call_soon_threadsafe(loop.stop)
    thread.join(timeout=5)
    loop.close()


# -- the port scheme -------------------------------------------------------------------------------------------


def test_each_service_has_its_ten_ports_from_the_base_in_the_order_of_services(monkeypatch):
    monkeypatch.delenv(processes.METRICS_PORT_ENV, raising=False)
    assert [processes.metrics_port(s) for s in processes.SERVICES] == [18100, 18110, 18120, 18130, 18140, 18150, 18160]
    assert processes.metrics_port("matching", 2) == 18131
    assert processes.metrics_port("settlement", 10) == 18149


def test_no_metrics_port_is_the_gateways_or_another_instances():
    ports = [processes.metrics_port(s, i, base=18100) for s in processes.SERVICES for i in range(1, 11)]
    assert len(set(ports)) == len(ports) == 10 * len(processes.SERVICES)
    assert 18080 not in ports


def test_farmlink_metrics_port_moves_the_whole_scheme_and_zero_turns_it_off(monkeypatch):
    monkeypatch.setenv(processes.METRICS_PORT_ENV, "25100")
    assert processes.metrics_port("cooperative") == 25100 and processes.metrics_port("pairing", 3) == 25152
    monkeypatch.setenv(processes.METRICS_PORT_ENV, "0")
    assert processes.metrics_port("cooperative") is None


@pytest.mark.parametrize("bad", ["abc", "-5", "80", "65500"])
def test_a_farmlink_metrics_port_that_is_no_usable_base_is_refused_naming_the_variable(monkeypatch, bad):
    monkeypatch.setenv(processes.METRICS_PORT_ENV, bad)
    with pytest.raises(ValueError, match="FARMLINK_METRICS_PORT"):
        processes.metrics_port("cooperative")


def test_an_instance_past_the_tenth_serves_no_metrics_rather_than_take_the_next_services_port():
    assert processes.metrics_port("cooperative", 11, base=18100) is None
    with pytest.raises(ValueError, match="unknown service"):
        processes.metrics_port("gateway", base=18100)


# -- the counters ----------------------------------------------------------------------------------------------


class Buyer:
    """The buyer service's own handlers on an in-memory unit of work; each delivery's batch commits at once."""

    def __init__(self) -> None:
        self.metrics = metrics.ServiceMetrics("buyer")
        self.uow = MemoryUnitOfWork("buyer", "service:buyer", lambda envelope: None)
        self.offset = 0

    def deliver(self, value: bytes, commit: bool = True) -> bool:
        self.offset += 1
        self.uow.outcomes.clear()
        events, accepted = decide_one(
            self.uow, buyer_service.CONSUMER, Delivery("farmlink.buyer.input", 0, self.offset, None, value, [])
        )
        if commit:  # the batch of this one delivery: its outcomes and events
            self.metrics.committed(SimpleNamespace(outcomes=self.uow.outcomes, envelopes=events))
        return accepted

    def count(self, kind: str, outcome: str) -> float | None:
        return sample(self.metrics.registry, "farmlink_inputs_total", consumer="buyer", type=kind, outcome=outcome)


def test_two_valid_inputs_and_a_bad_one_count_as_accepted_and_rejected_by_their_types_with_one_dead_letter():
    buyer = Buyer()
    assert buyer.deliver(signed("buyer.registered", {"buyer_id": "tongren-mart", "name": "Tongren mart"}))
    assert buyer.deliver(signed("order.placed", ORDER))
    assert not buyer.deliver(signed("order.placed", {**ORDER, "order_id": "o2", "quantity": "0"}))  # refused by the model
    assert buyer.count("buyer.registered", "accepted") == 1
    assert buyer.count("order.placed", "accepted") == 1
    assert buyer.count("order.placed", "rejected") == 1
    assert sample(buyer.metrics.registry, "farmlink_dead_letters_total", consumer="buyer") == 1
    assert sample(buyer.metrics.registry, "farmlink_events_total", type="OrderPlaced") == 1


def test_nothing_is_counted_before_the_batch_commits():
    buyer = Buyer()
    buyer.deliver(signed("buyer.registered", {"buyer_id": "tongren-mart", "name": "Tongren mart"}), commit=False)
    assert buyer.count("buyer.registered", "accepted") is None
    metrics.committed("a-schema-no-service-runs-here", buyer.uow)  # a unit of work of a schema without metrics: nothing
    assert buyer.count("buyer.registered", "accepted") is None


def test_a_redelivered_input_the_inbox_already_holds_counts_once():
    buyer = Buyer()
    registration = signed("buyer.registered", {"buyer_id": "tongren-mart", "name": "Tongren mart"})
    buyer.deliver(registration)
    buyer.deliver(registration)
    assert buyer.count("buyer.registered", "accepted") == 1


def test_the_hook_counts_for_the_service_attached_to_the_batchs_schema_and_never_raises():
    service = metrics.ServiceMetrics("buyer")
    schema = f"buyer_{uuid.uuid4().hex[:8]}"
    metrics.attach(schema, service)
    try:
        metrics.committed(schema, SimpleNamespace(outcomes={("buyer", "order.placed", "rejected"): 2}, envelopes=[]))
        metrics.committed(schema, SimpleNamespace(outcomes=None, envelopes=[object()]))  # broken: swallowed
    finally:
        metrics.detach(schema, service)
    assert sample(service.registry, "farmlink_inputs_total", consumer="buyer", type="order.placed", outcome="rejected") == 2
    assert sample(service.registry, "farmlink_dead_letters_total", consumer="buyer") == 2


def test_fills_and_their_fen_are_counted_by_price_basis():
    service = metrics.ServiceMetrics("matching")
    fill = lambda basis, fen: SimpleNamespace(event_type="FillMade", payload={"price_basis": basis, "revenue_fen": fen})  # noqa: E731
    offer = SimpleNamespace(event_type="OfferShrunk", payload={})
    service.committed(
        SimpleNamespace(outcomes={}, envelopes=[fill("limit", 40_000), fill("floor", 12_500), fill("limit", 1_000), offer])
    )
    assert sample(service.registry, "farmlink_fills_total", price_basis="limit") == 2
    assert sample(service.registry, "farmlink_fill_fen_total", price_basis="limit") == 41_000
    assert sample(service.registry, "farmlink_fill_fen_total", price_basis="floor") == 12_500
    assert sample(service.registry, "farmlink_events_total", type="FillMade") == 3


@pytest.mark.parametrize(
    "value, kind",
    [
        (json.dumps({"type": "order.placed", "payload": {"quantity": "0"}}).encode(), "order.placed"),
        (json.dumps({"type": "whatever.anyone.sends", "payload": {}}).encode(), "unknown"),
        (b"\xff\xfe not utf-8", "unknown"),
        (b"[1, 2]", "unknown"),
        (b"", "unknown"),
    ],
)
def test_a_record_that_could_not_be_decoded_is_counted_under_its_input_type_only_when_that_is_a_known_one(value, kind):
    assert metrics.kind_of(Delivery("t", 0, 0, None, value, []), None) == kind


# -- looked up at scrape time ----------------------------------------------------------------------------------


def test_the_outbox_gauges_are_read_on_the_services_event_loop_when_scraped(event_loop_thread):
    service = metrics.ServiceMetrics("cooperative")
    looked_on = []

    async def probe():
        looked_on.append(asyncio.get_running_loop())
        return 3, 12.5

    service.state.watch(event_loop_thread, probe)
    text = generate_latest(service.registry).decode()
    assert looked_on == [event_loop_thread]
    assert 'farmlink_outbox_depth{service="cooperative"} 3.0' in text
    assert 'farmlink_outbox_oldest_age_seconds{service="cooperative"} 12.5' in text
    assert 'farmlink_outbox_probe_success{service="cooperative"} 1.0' in text


def test_a_scrape_whose_outbox_query_hangs_answers_with_everything_else_within_its_timeout(event_loop_thread):
    service = metrics.ServiceMetrics("cooperative")
    service.state.timeout = 0.2
    service.inputs.labels("cooperative", "harvest.recorded", "accepted").inc()

    async def hangs():
        await asyncio.sleep(3600)
        return 0, 0.0

    service.state.watch(event_loop_thread, hangs)
    started = time.monotonic()
    text = generate_latest(service.registry).decode()
    assert time.monotonic() - started < 2
    assert 'farmlink_outbox_probe_success{service="cooperative"} 0.0' in text
    assert "farmlink_outbox_depth{" not in text
    assert 'farmlink_inputs_total{consumer="cooperative",outcome="accepted",type="harvest.recorded"} 1.0' in text
    assert _settles(event_loop_thread), "the hanging query is cancelled, not left on the service's loop"


def _settles(loop: asyncio.AbstractEventLoop) -> bool:
    """The hanging query was cancelled: no task of it is left on the loop a moment later."""
    time.sleep(0.2)
    return asyncio.run_coroutine_threadsafe(_pending(), loop).result(2) == 0


async def _pending() -> int:
    return len([t for t in asyncio.all_tasks() if t is not asyncio.current_task()])


def test_a_scrape_whose_outbox_query_fails_or_whose_loop_has_stopped_answers_without_the_outbox(event_loop_thread):
    service = metrics.ServiceMetrics("market")

    async def schema_gone():
        raise RuntimeError('relation "market.outbox" does not exist')

    service.state.watch(event_loop_thread, schema_gone)
    assert sample(service.registry, "farmlink_outbox_probe_success", service="market") == 0
    stopped = asyncio.new_event_loop()
    service.state.watch(stopped, schema_gone)
    assert sample(service.registry, "farmlink_outbox_probe_success", service="market") == 0
    stopped.close()
    service.state.watch(stopped, schema_gone)
    assert sample(service.registry, "farmlink_outbox_probe_success", service="market") == 0


def test_the_relays_last_failure_is_shown_until_it_publishes_again():
    service = metrics.ServiceMetrics("settlement")
    relay = SimpleNamespace(
        published=41, failure='UndefinedTableError: relation "settlement.outbox" does not exist', failure_at=1_800_000_000.0
    )
    service.state.watch(None, None, relay)
    registry = service.registry
    assert sample(registry, "farmlink_relay_published_rows_total", service="settlement") == 41
    assert sample(registry, "farmlink_relay_last_failure_timestamp_seconds", service="settlement") == 1_800_000_000.0
    assert sample(registry, "farmlink_relay_last_failure_info", service="settlement", error=relay.failure) == 1
    relay.failure = relay.failure_at = None
    assert sample(registry, "farmlink_relay_last_failure_timestamp_seconds", service="settlement") is None


# -- served over HTTP ------------------------------------------------------------------------------------------


def test_metrics_are_served_on_loopback_and_the_port_is_free_again_once_stopped():
    service = metrics.ServiceMetrics("pairing")
    service.inputs.labels("pairing", "pairing.registered", "accepted").inc()
    server = metrics.serve(service.registry, 0)
    assert server is not None
    try:
        with urllib.request.urlopen(server.url, timeout=5) as answer:
            text = answer.read().decode()
        assert answer.status == 200
        assert 'farmlink_inputs_total{consumer="pairing",outcome="accepted",type="pairing.registered"} 1.0' in text
    finally:
        server.stop()
    with pytest.raises(urllib.error.URLError):
        urllib.request.urlopen(server.url, timeout=2)
    again = metrics.serve(service.registry, server.port)
    assert again is not None
    again.stop()


def test_a_port_already_taken_leaves_the_service_without_metrics_not_without_its_consumer():
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        assert metrics.serve(metrics.ServiceMetrics("buyer").registry, taken.getsockname()[1]) is None


def test_a_services_registry_carries_faststreams_prometheus_middleware_series_and_serves_nowhere_by_default():
    runtime = ServiceRuntime("cooperative")
    names = {metric.name for metric in runtime.metrics.registry.collect()}
    assert {"faststream_received_messages", "faststream_received_processed_messages_duration_seconds"} <= names
    assert {"farmlink_inputs", "farmlink_dead_letters", "farmlink_outbox_depth"} <= names
    assert runtime.metrics_port is None and runtime.metrics_server is None
