"""Where the tests find the real Kafka and PostgreSQL.

KAFKA_BOOTSTRAP_SERVERS / DATABASE_URL when set; otherwise testcontainers when a Docker
engine answers; otherwise the project's own launcher (`farmlink infra up`). Never a fake.
"""

import logging
import os
import uuid

import pytest

logging.getLogger("aiokafka").setLevel(logging.ERROR)


def _docker_answers() -> bool:
    try:
        import docker

        docker.from_env(timeout=3).ping()
        return True
    except Exception:
        return False


@pytest.fixture(scope="session")
def infrastructure():
    """The settings of a running real broker and database for this test session."""
    from events.settings import settings

    if os.environ.get("KAFKA_BOOTSTRAP_SERVERS") and os.environ.get("DATABASE_URL"):
        yield settings()
        return
    if _docker_answers():
        from testcontainers.kafka import KafkaContainer  # deprecated path, still works in 4.15
        from testcontainers.postgres import PostgresContainer

        with KafkaContainer("apache/kafka:4.1.1").with_kraft() as kafka, PostgresContainer("postgres:15", driver=None) as pg:
            os.environ["KAFKA_BOOTSTRAP_SERVERS"] = kafka.get_bootstrap_server()
            os.environ["DATABASE_URL"] = pg.get_connection_url()
            from farmlink.operations import infra

            infra.ensure_up()
            yield settings()
        return
    from farmlink.operations import infra

    infra.ensure_up()
    yield settings()


@pytest.fixture
def unique() -> str:
    """A short unique suffix for schemas, topics and ids of one test."""
    return uuid.uuid4().hex[:10]
