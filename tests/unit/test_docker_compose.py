"""docker-compose.yml, the Dockerfile, .dockerignore and the dependency locks stay in step with the code.

No image is built and no container runs here (there is no Docker engine on this machine): these tests
read the files as text and YAML and compare them with the settings and constants of the code. What
they cannot tell is whether Docker accepts them, whether the image builds, or whether the services
start and turn healthy in their containers. The one thing they run is the farmlink services'
health probe, a Python script, on this machine against heartbeat files they write.
"""

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import yaml

from events.access import ADMIN, ALL_PRINCIPALS, SCRAM_MECHANISM, service_principal
from events.settings import (
    APP_ROLE,
    AUDITOR,
    LOCAL_DATABASE,
    role_env,
    role_name,
    LOCAL_KAFKA_PORT,
    LOCAL_POSTGRES_PORT,
    Settings,
)
from farmlink.operations import health, infra, processes
from services.feeds.registrar import REGISTRAR_PASSWORD_ENV, REGISTRAR_USERNAME_ENV
from tests.unit.deployment_files import COMPOSE_FILE, ROOT

pytestmark = pytest.mark.unit


APP_SERVICES = processes.SERVICES  # every farmlink service runs in a container of its own
# The environment variables events/settings.py reads (pydantic-settings: field name, upper-cased).
SETTINGS_ENV = {
    "KAFKA_BOOTSTRAP_SERVERS",
    "DATABASE_URL",
    "KAFKA_SECURITY_PROTOCOL",
    "KAFKA_SASL_MECHANISM",
    "KAFKA_SASL_USERNAME",
    "KAFKA_SASL_PASSWORD",
}
SECURITY_KEYS = (
    "sasl.enabled.mechanisms",
    "sasl.mechanism.inter.broker.protocol",
    "sasl.mechanism.controller.protocol",
    "authorizer.class.name",
    "super.users",
    "allow.everyone.if.no.acl.found",
    "auto.create.topics.enable",
)


def _password_var(principal: str) -> str:
    return "FARMLINK_KAFKA_PASSWORD_" + principal.upper().replace("-", "_")


def _kafka_properties(service: dict) -> dict[str, str]:
    """The server.properties the kafka service's start script writes (its heredoc)."""
    script = service["command"][0]
    body = script.split("<<EOF\n", 1)[1].split("\nEOF\n", 1)[0]
    return dict(line.split("=", 1) for line in body.splitlines() if line.strip())


@pytest.fixture(scope="module")
def services() -> dict:
    return yaml.safe_load(COMPOSE_FILE.read_text())["services"]


def _env(service: dict) -> dict[str, str]:
    env = service.get("environment", {})
    if isinstance(env, list):
        env = dict(item.split("=", 1) for item in env)
    return {key: str(value) for key, value in env.items()}


def _host_port(service: dict, container_port: int) -> int:
    for mapping in service["ports"]:
        parts = str(mapping).split(":")
        if int(parts[-1]) == container_port:
            return int(parts[-2])
    raise AssertionError(f"no host port published for container port {container_port}")


def test_all_services_exist(services):
    assert {"kafka", "postgres", "topics", *APP_SERVICES} <= services.keys()


def test_images(services):
    assert services["kafka"]["image"] == "apache/kafka:4.1.1"
    assert services["postgres"]["image"] == "postgres:15"
    for name in ("topics", *APP_SERVICES):
        assert services[name]["image"] == "farmlink:latest", name
    assert services["topics"]["build"] == "."


def test_host_ports_match_local_launcher(services):
    assert _host_port(services["kafka"], LOCAL_KAFKA_PORT) == LOCAL_KAFKA_PORT
    assert _host_port(services["postgres"], 5432) == LOCAL_POSTGRES_PORT


def test_env_names_are_the_ones_settings_reads():
    fields = {name.upper() for name in Settings.model_fields}
    assert SETTINGS_ENV <= fields


@pytest.mark.parametrize("name", ("topics", *APP_SERVICES))
def test_app_services_set_exactly_the_settings_env(services, name):
    env = _env(services[name])
    roles = {role_env(n) for n in (*APP_SERVICES, AUDITOR)} if name == "topics" else {role_env(name)}
    registrar = {REGISTRAR_USERNAME_ENV, REGISTRAR_PASSWORD_ENV} if name == "feeds" else set()  # its admin login
    assert set(env) == SETTINGS_ENV | roles | registrar  # the topics job creates every role; a service connects as its own
    for variable in roles:
        role = urlsplit(env[variable])
        assert role.username == role_name(variable.removeprefix("DATABASE_URL_").lower())
        assert "dev-only" in role.password and (role.hostname, role.port, role.path) == ("postgres", 5432, f"/{LOCAL_DATABASE}")
    assert env["KAFKA_BOOTSTRAP_SERVERS"] == "kafka:9092"
    assert (env["KAFKA_SECURITY_PROTOCOL"], env["KAFKA_SASL_MECHANISM"]) == ("SASL_PLAINTEXT", SCRAM_MECHANISM)
    principal = ADMIN if name == "topics" else service_principal(name)
    assert env["KAFKA_SASL_USERNAME"] == principal
    assert env["KAFKA_SASL_PASSWORD"] == _env(services["kafka"])[_password_var(principal)]
    db = urlsplit(env["DATABASE_URL"])
    assert (db.hostname, db.port) == ("postgres", 5432)


@pytest.mark.parametrize("name", APP_SERVICES)
def test_app_services_run_their_service_after_topics(services, name):
    service = services[name]
    assert service["command"] == ["serve", name]
    assert service["depends_on"]["kafka"]["condition"] == "service_healthy"
    assert service["depends_on"]["postgres"]["condition"] == "service_healthy"
    assert service["depends_on"]["topics"]["condition"] == "service_completed_successfully"


def test_topics_job_runs_infra_up(services):
    assert services["topics"]["command"] == ["infra", "up"]


def test_postgres_role_and_database_agree_with_the_local_launcher(services):
    env = _env(services["postgres"])
    assert env["POSTGRES_USER"] == APP_ROLE
    assert env["POSTGRES_DB"] == LOCAL_DATABASE
    assert "dev-only" in env["POSTGRES_PASSWORD"], "a committed default password must say it is development-only"
    for name in ("topics", *APP_SERVICES):
        app_db = urlsplit(_env(services[name])["DATABASE_URL"])
        assert (app_db.username, app_db.password, app_db.path) == (APP_ROLE, env["POSTGRES_PASSWORD"], f"/{LOCAL_DATABASE}")


def test_kafka_is_kraft_combined_without_auto_topic_creation(services):
    props = _kafka_properties(services["kafka"])
    assert props["process.roles"] == "broker,controller"
    assert props["auto.create.topics.enable"] == "false"
    assert "INTERNAL://kafka:9092" in props["advertised.listeners"]
    assert f"://127.0.0.1:{LOCAL_KAFKA_PORT}" in props["advertised.listeners"]
    assert props["offsets.topic.replication.factor"] == "1"


def test_kafka_has_the_local_launchers_sasl_and_acl_settings_on_every_listener(services, tmp_path):
    props = _kafka_properties(services["kafka"])
    local = infra.server_properties(infra.Layout(tmp_path))
    assert {key: props[key] for key in SECURITY_KEYS} == {key: local[key] for key in SECURITY_KEYS}
    protocols = dict(item.split(":") for item in props["listener.security.protocol.map"].split(","))
    assert set(protocols.values()) == {"SASL_PLAINTEXT"}
    for listener in protocols:
        assert f"listener.name.{listener.lower()}.scram-sha-512.sasl.jaas.config" in props


def test_every_principal_gets_a_scram_credential_at_format_time_with_a_dev_only_default(services):
    env = _env(services["kafka"])
    script = services["kafka"]["command"][0]
    [listed] = re.findall(r"for principal in ([^;]+);", script)
    assert listed.split() == list(ALL_PRINCIPALS)
    assert "--add-scram" in script and "format --ignore-formatted" in script
    for principal in ALL_PRINCIPALS:
        var = _password_var(principal)
        assert env[var] == f"${{{var}:-dev-only-{principal}}}", "a committed default password must say it is development-only"


# -- stopping, health checks -------------------------------------------------------------------------


def _seconds(duration: str) -> float:
    """A compose duration (`30s`, `1m30s`, `1m`) in seconds."""
    units = {"h": 3600, "m": 60, "s": 1, "ms": 0.001}
    parts = re.findall(r"(\d+(?:\.\d+)?)(ms|h|m|s)", str(duration))
    assert parts and "".join(n + u for n, u in parts) == str(duration), f"not a duration: {duration!r}"
    return sum(float(n) * units[u] for n, u in parts)


@pytest.mark.parametrize("name", APP_SERVICES)
def test_services_get_longer_than_the_launchers_stop_timeout_to_stop(services, name):
    """Docker's default is 10 s; the local launcher gives a service STOP_TIMEOUT_S to finish its batch and drain."""
    assert _seconds(services[name]["stop_grace_period"]) > processes.STOP_TIMEOUT_S


def test_kafka_gets_longer_than_the_launchers_kafka_stop_timeout_to_stop(services):
    assert _seconds(services["kafka"]["stop_grace_period"]) > infra.KAFKA_STOP_TIMEOUT_S


def test_postgres_is_healthy_only_when_it_answers_over_tcp(services):
    """The image's init server listens on the Unix socket only: a socket probe says ready too early."""
    [kind, command] = services["postgres"]["healthcheck"]["test"]
    assert kind == "CMD-SHELL"
    assert command.split()[0] == "pg_isready"
    assert re.search(r"(^|\s)-h 127\.0\.0\.1(\s|$)", command)
    assert f"-U {APP_ROLE}" in command and f"-d {LOCAL_DATABASE}" in command


@pytest.mark.parametrize("name", APP_SERVICES)
def test_every_farmlink_service_has_the_heartbeat_healthcheck(services, name):
    check = services[name]["healthcheck"]
    assert check["test"][:3] == ["CMD", "python", "-c"]  # the image has Python, not curl
    assert _seconds(check["start_period"]) >= processes.READY_TIMEOUT_S
    assert _seconds(check["interval"]) > processes.HEARTBEAT_S
    assert check["retries"] >= 1


def _probe(services: dict, home: Path) -> subprocess.CompletedProcess:
    """Run a farmlink service's healthcheck script here, as the container would, with FARMLINK_HOME=home."""
    script = services["cooperative"]["healthcheck"]["test"][3]
    assert "$" not in script, "compose would interpolate it"
    env = {**os.environ, "FARMLINK_HOME": str(home)}
    return subprocess.run([sys.executable, "-c", script], env=env, cwd=ROOT, capture_output=True, text=True, timeout=60)


def _beat(home: Path, monkeypatch, **state) -> None:
    """Write the heartbeat file where `farmlink serve` writes it, in its format (farmlink/operations/processes.py serve)."""
    monkeypatch.setenv("FARMLINK_HOME", str(home))
    path = processes.health_file("cooperative")
    assert path.parent == home.resolve() / "run"
    path.write_text(json.dumps({"pid": os.getpid(), "at": time.time(), "relay_failure": None, "relay_failure_at": None} | state))


def test_the_healthcheck_wants_a_heartbeat(services, tmp_path):
    result = _probe(services, tmp_path)
    assert result.returncode == 1 and "no heartbeat yet" in result.stderr


def test_the_healthcheck_passes_on_a_fresh_heartbeat(services, tmp_path, monkeypatch):
    _beat(tmp_path, monkeypatch)
    result = _probe(services, tmp_path)
    assert result.returncode == 0, result.stderr


def test_the_healthcheck_fails_on_a_stale_heartbeat(services, tmp_path, monkeypatch):
    _beat(tmp_path, monkeypatch, at=time.time() - health.STALE_HEARTBEAT_S - 5)
    result = _probe(services, tmp_path)
    assert result.returncode == 1 and "no heartbeat for" in result.stderr


def test_the_healthcheck_fails_while_the_relay_is_failing(services, tmp_path, monkeypatch):
    _beat(tmp_path, monkeypatch, relay_failure="ConnectionRefusedError", relay_failure_at=time.time())
    result = _probe(services, tmp_path)
    assert result.returncode == 1 and "relay failing: ConnectionRefusedError" in result.stderr
    _beat(
        tmp_path, monkeypatch, relay_failure="ConnectionRefusedError", relay_failure_at=time.time() - health.RELAY_FAILING_S - 5
    )
    assert _probe(services, tmp_path).returncode == 0  # an old failure, since recovered


# -- the image ---------------------------------------------------------------------------------------
