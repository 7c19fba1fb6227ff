"""All five services as real processes on the real broker and database, started clean."""

import pytest

from farmlink import infra, processes


@pytest.fixture
def clean_system(infrastructure):
    """Stop the services, wipe farmlink's topics and schemas, start the services again."""
    processes.stop_all(say=lambda _: None)
    infra.reset_data(progress=lambda _: None)
    processes.start_all(say=lambda _: None)
    yield infrastructure
    processes.stop_all(say=lambda _: None)
