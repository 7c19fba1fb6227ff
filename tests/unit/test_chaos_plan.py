"""The chaos run's plan and workload are reproducible and within bounds (pure parts of farmlink/operations/chaos/)."""

import pytest

from contracts.inputs import INPUT_TYPES
from farmlink.operations.chaos import NETWORK_FAULTS, plan_faults
from farmlink.operations.workload import Workload
from farmlink.operations.processes import SERVICES

pytestmark = pytest.mark.unit


def test_every_service_is_killed_the_asked_number_of_times_and_kafka_and_postgres_once_each():
    faults = plan_faults(seed=7, kills_per_service=3)
    kills = [f.target for f in faults if f.kind == "kill-service"]
    assert sorted(kills) == sorted(SERVICES * 3)
    assert sorted(f.kind for f in faults if f.kind != "kill-service") == ["kafka-sigkill", "kafka-sigterm", "postgres-restart"]


def test_faults_strike_between_five_and_ninety_percent_of_the_run_in_order():
    faults = plan_faults(seed=2020, kills_per_service=2)
    assert all(0.05 <= f.at <= 0.9 for f in faults)
    assert [f.at for f in faults] == sorted(f.at for f in faults)


def test_the_same_seed_gives_the_same_plan_and_the_same_inputs():
    assert plan_faults(3, 1, ("matching",)) == plan_faults(3, 1, ("matching",))
    first, second = Workload("run", 11), Workload("run", 11)
    assert first.registrations() == second.registrations()
    assert [first.next_input() for _ in range(500)] == [second.next_input() for _ in range(500)]


def test_the_workload_registers_everyone_first_and_then_sends_only_known_input_types():
    workload = Workload("run", 5)
    registrations = workload.registrations()
    assert {kind for kind, _ in registrations} == {
        "price_feed.registered",
        "settlement_desk.registered",
        "cooperative.registered",
        "buyer.registered",
    }
    stream = [workload.next_input() for _ in range(2000)]
    assert {kind for kind, _ in stream} <= set(INPUT_TYPES)
    cancelled = [payload for kind, payload in stream if kind == "order.cancelled"]
    assert cancelled and all("buyer_id" in payload for payload in cancelled)


def test_the_faults_beyond_kill_strike_the_named_service_once_each_and_the_wal_volume_once():
    faults = plan_faults(seed=7, kills_per_service=1, network=NETWORK_FAULTS, network_service="settlement", wal_full=True)
    network = [f for f in faults if f.kind in NETWORK_FAULTS]
    assert sorted(f.kind for f in network) == sorted(NETWORK_FAULTS)
    assert {f.target for f in network} == {"settlement"}
    assert [f.label for f in faults if f.kind == "wal-full"] == ["wal-full"]
    assert all(0.05 <= f.at <= 0.9 for f in faults) and [f.at for f in faults] == sorted(f.at for f in faults)


def test_adding_faults_beyond_kill_leaves_a_seeds_kills_and_bounces_where_they_were():
    before = plan_faults(seed=2020, kills_per_service=2)
    after = plan_faults(
        seed=2020, kills_per_service=2, network=("kafka-latency", "postgres-partition"), network_service="matching", wal_full=True
    )
    assert [f for f in after if f.kind not in (*NETWORK_FAULTS, "wal-full")] == before
    assert sorted(f.label for f in after if f not in before) == [
        "kafka-latency matching",
        "postgres-partition matching",
        "wal-full",
    ]


def test_an_unknown_network_fault_or_a_network_fault_without_its_service_is_refused_with_the_reason():
    with pytest.raises(ValueError, match="unknown network fault kafka-jitter"):
        plan_faults(seed=1, kills_per_service=0, network=("kafka-jitter",), network_service="matching")
    with pytest.raises(ValueError, match="need a service to strike"):
        plan_faults(seed=1, kills_per_service=0, network=("kafka-latency",), network_service="")
