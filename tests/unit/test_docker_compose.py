"""docker-compose.yml stays in step with the local launcher and events/settings.py.

No Docker engine is needed: the file is parsed and compared with the settings.
"""

from pathlib import Path
from urllib.parse import urlsplit

import pytest
import yaml

from events.settings import APP_ROLE, LOCAL_DATABASE, LOCAL_KAFKA_PORT, LOCAL_POSTGRES_PORT, Settings

pytestmark = pytest.mark.unit

COMPOSE_FILE = Path(__file__).resolve().parents[2] / "docker-compose.yml"
APP_SERVICES = ("cooperative", "buyer", "market", "matching", "settlement")
# The environment variables events/settings.py reads (pydantic-settings: field name, upper-cased).
SETTINGS_ENV = {"KAFKA_BOOTSTRAP_SERVERS", "DATABASE_URL"}


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
    assert set(env) == SETTINGS_ENV
    assert env["KAFKA_BOOTSTRAP_SERVERS"] == "kafka:9092"
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
    env = _env(services["kafka"])
    assert env["KAFKA_PROCESS_ROLES"] == "broker,controller"
    assert env["KAFKA_AUTO_CREATE_TOPICS_ENABLE"] == "false"
    assert "INTERNAL://kafka:9092" in env["KAFKA_ADVERTISED_LISTENERS"]
    assert f"://127.0.0.1:{LOCAL_KAFKA_PORT}" in env["KAFKA_ADVERTISED_LISTENERS"]
    assert env["KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR"] == "1"
