"""The ACL matrix of events/access.py agrees with the services' subscriptions, the docs and the
local broker's configuration; a home formatted before SASL is refused with what to do."""

import importlib
from pathlib import Path

import pytest

from contracts.registry import EVENT_TOPIC
from contracts.topics import RELAY_CHECKPOINTS, DEAD_LETTER, RECEIPTS
from events import access
from events.settings import Settings, kafka_options
from farmlink.operations import infra
from farmlink.operations.processes import SERVICES

pytestmark = pytest.mark.unit


@pytest.fixture(autouse=True)
def no_kafka_environment(monkeypatch):
    """These tests build their own Settings: the environment (a CI broker, testcontainers) must not leak in."""
    for name in (
        "KAFKA_BOOTSTRAP_SERVERS",
        "KAFKA_SECURITY_PROTOCOL",
        "KAFKA_SASL_MECHANISM",
        "KAFKA_SASL_USERNAME",
        "KAFKA_SASL_PASSWORD",
    ):
        monkeypatch.delenv(name, raising=False)


ROOT = Path(__file__).resolve().parents[2]


def _subscriptions(service: str) -> list[tuple[str, set[str]]]:
    broker = importlib.import_module(f"services.{service}.app").runtime.broker
    return [(subscriber.group_id, {topic.name for topic in subscriber.topics}) for subscriber in broker.subscribers]


@pytest.mark.parametrize("service", SERVICES)
def test_a_service_may_read_exactly_what_it_subscribes_to_in_exactly_its_groups(service):
    principal = access.BY_NAME[access.service_principal(service)]
    subscriptions = _subscriptions(service)
    relay = {RELAY_CHECKPOINTS}  # read back by its outbox relay after a crash, not subscribed to
    assert {topic for _, topics in subscriptions for topic in topics} | relay == set(principal.read)
    assert {group for group, _ in subscriptions} == set(principal.groups)
    assert principal.transactional_ids == (access.relay_transactional_id(service),)


def test_every_event_topic_is_written_by_some_service_and_every_service_writes_receipts_and_dead_letters():
    written = {topic for p in access.PRINCIPALS if p.name.startswith("service-") for topic in p.write}
    assert set(EVENT_TOPIC.values()) <= written
    for service in SERVICES:
        assert {RECEIPTS, DEAD_LETTER} <= set(access.BY_NAME[access.service_principal(service)].write)


def test_producers_write_only_their_input_topic_and_the_auditor_writes_nothing():
    for topic, principal in access.INPUT_PRODUCER.items():
        assert access.BY_NAME[principal].write == (topic,)
    assert access.BY_NAME[access.AUDITOR].write == ()
    assert set(access.BY_NAME[access.AUDITOR].read) == set(access.ALL_TOPICS)


def test_the_matrix_table_in_docs_architecture_is_the_one_events_access_gives():
    docs = (ROOT / "docs" / "architecture.md").read_text()
    assert access.matrix_table() in docs, (
        "docs/architecture.md's ACL table differs from events/access.py; paste "
        "`python -c 'from events.access import matrix_table; print(matrix_table())'`"
    )


def test_the_local_broker_requires_scram_logins_and_denies_what_no_acl_allows(tmp_path):
    props = infra.server_properties(infra.Layout(tmp_path))
    assert set(props["listener.security.protocol.map"].split(",")) == {
        "SASL_PLAINTEXT:SASL_PLAINTEXT",
        "CONTROLLER:SASL_PLAINTEXT",
    }
    assert props["sasl.enabled.mechanisms"] == "SCRAM-SHA-512"
    assert props["authorizer.class.name"] == "org.apache.kafka.metadata.authorizer.StandardAuthorizer"
    assert props["super.users"] == "User:admin"
    assert props["allow.everyone.if.no.acl.found"] == "false"
    assert (tmp_path / "secrets" / "kafka-admin").stat().st_mode & 0o077 == 0


def test_a_home_formatted_before_sasl_is_refused_with_the_commands_that_fix_it(tmp_path):
    layout = infra.Layout(tmp_path)
    layout.kafka_data.mkdir(parents=True)
    (layout.kafka_data / "meta.properties").write_text("cluster.id=old\n")
    with pytest.raises(infra.InfraError) as refused:
        infra._format_kafka_storage(layout, say=lambda _: None)
    message = str(refused.value)
    assert "formatted before farmlink used SASL/SCRAM" in message
    assert f"rm -rf {layout.kafka_data} {layout.cluster_id_file}" in message


def test_local_clients_log_in_as_their_principal_with_its_generated_password(tmp_path):
    options = kafka_options(Settings(farmlink_home=tmp_path), "service-matching")
    assert options["security_protocol"] == "SASL_PLAINTEXT"
    assert options["sasl_mechanism"] == "SCRAM-SHA-512"
    assert options["sasl_plain_username"] == "service-matching"
    assert options["sasl_plain_password"] == (tmp_path / "secrets" / "kafka-service-matching").read_text().strip()


def test_an_external_broker_is_plaintext_unless_the_environment_says_sasl():
    assert kafka_options(Settings(kafka_bootstrap_servers="kafka:9092"), "buyer") == {}
    options = kafka_options(
        Settings(
            kafka_bootstrap_servers="kafka:9092",
            kafka_security_protocol="SASL_PLAINTEXT",
            kafka_sasl_username="service-buyer",
            kafka_sasl_password="pw",
        ),
        "ignored",
    )
    assert (options["sasl_plain_username"], options["sasl_mechanism"]) == ("service-buyer", "SCRAM-SHA-512")
    with pytest.raises(ValueError, match="KAFKA_SASL_USERNAME"):
        kafka_options(Settings(kafka_bootstrap_servers="kafka:9092", kafka_security_protocol="SASL_SSL"), "x")
