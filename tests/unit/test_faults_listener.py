"""The local broker's extra listener for the chaos run's Kafka link (farmlink/operations/infra/): present only when asked
for, listening on one port and advertising the link's, with the same SASL/SCRAM login as the main listener."""

from pathlib import Path

import pytest

from farmlink.operations import infra
from farmlink.operations.infra import Layout, server_properties

pytestmark = pytest.mark.unit


def _layout(tmp_path: Path, **ports) -> Layout:
    return Layout(tmp_path, 24092, 24093, 25432, **ports)


def test_without_the_chaos_runs_ports_the_broker_has_no_fault_listener(tmp_path, monkeypatch):
    monkeypatch.delenv(infra.KAFKA_FAULT_PORT_ENV, raising=False)
    monkeypatch.setenv("FARMLINK_HOME", str(tmp_path))
    assert infra.kafka_fault_listener() == (None, None)
    properties = server_properties(_layout(tmp_path))
    assert "FAULTS" not in properties["listeners"] and "FAULTS" not in properties["advertised.listeners"]


def test_the_fault_listener_listens_on_its_port_advertises_the_links_and_logs_in_as_the_main_listener_does(tmp_path, monkeypatch):
    monkeypatch.setenv("FARMLINK_HOME", str(tmp_path))
    properties = server_properties(_layout(tmp_path, kafka_fault_port=24096, kafka_fault_advertised_port=24097))
    assert properties["listeners"].split(",") == [
        "SASL_PLAINTEXT://127.0.0.1:24092",
        "CONTROLLER://127.0.0.1:24093",
        "FAULTS://127.0.0.1:24096",
    ]
    assert properties["advertised.listeners"].split(",")[-1] == "FAULTS://127.0.0.1:24097"
    assert "FAULTS:SASL_PLAINTEXT" in properties["listener.security.protocol.map"].split(",")
    assert (
        properties["listener.name.faults.scram-sha-512.sasl.jaas.config"]
        == properties["listener.name.sasl_plaintext.scram-sha-512.sasl.jaas.config"]
    )
    assert properties["inter.broker.listener.name"] == "SASL_PLAINTEXT"


def test_the_environment_names_the_fault_listeners_ports_and_a_bad_one_is_refused_with_the_reason(monkeypatch):
    monkeypatch.setenv(infra.KAFKA_FAULT_PORT_ENV, "24096")
    monkeypatch.setenv(infra.KAFKA_FAULT_ADVERTISED_PORT_ENV, "24097")
    assert infra.kafka_fault_listener() == (24096, 24097)
    monkeypatch.setenv(infra.KAFKA_FAULT_ADVERTISED_PORT_ENV, "link")
    with pytest.raises(infra.InfraError, match="expected port numbers"):
        infra.kafka_fault_listener()
