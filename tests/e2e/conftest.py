"""All five services as real processes on the real broker and database, started clean."""

import pytest

from farmlink.operations import infra, processes


@pytest.fixture
def clean_system(infrastructure):
    """Stop the services, wipe farmlink's topics and schemas, start the services again."""
    processes.stop_all(say=lambda _: None)
    infra.reset_data(progress=lambda _: None)
    processes.start_all(say=lambda _: None)
    yield infrastructure
    processes.stop_all(say=lambda _: None)


@pytest.fixture(scope="module")
def gateway_system(infrastructure):
    """Everything stopped, farmlink's data wiped, the services and the gateway started."""
    processes.stop_gateway(say=lambda _: None)
    processes.stop_all(say=lambda _: None)
    infra.reset_data(progress=lambda _: None)
    processes.start_all(say=lambda _: None)
    processes.start_gateway(say=lambda _: None)
    yield infrastructure
    processes.stop_gateway(say=lambda _: None)
    processes.stop_all(say=lambda _: None)
