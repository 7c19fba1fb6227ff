"""An operator cannot break running services silently: `farmlink infra reset` stops them before it
wipes, and `farmlink status` says when a service runs but does not work, and why."""

import asyncio
import os
import signal
import time

import pytest
from typer.testing import CliRunner

from farmlink.operations import health, infra, processes
from farmlink.cli import app

pytestmark = pytest.mark.e2e

runner = CliRunner()


def test_a_service_whose_schema_was_wiped_under_it_is_reported_as_not_working(clean_system):
    infra.reset_data(progress=lambda _: None)  # what `infra reset` did before it stopped the services first

    verdicts = asyncio.run(health.check())

    assert all(v.running and not v.healthy for v in verdicts)
    assert all(any("schema" in problem and v.service in problem for problem in v.problems) for v in verdicts)
    result = runner.invoke(app, ["status", "--format", "jsonl"])
    assert result.exit_code == 1
    assert "is missing" in result.output


def test_infra_reset_stops_the_running_services_before_it_wipes_and_up_brings_them_back_working(clean_system):
    result = runner.invoke(app, ["infra", "reset", "--yes"])

    assert result.exit_code == 0, result.output
    said = " ".join(result.output.split())
    assert "Stopped cooperative, buyer, market, matching, settlement" in said and "before the wipe" in said
    assert all(processes.running_count(service) == 0 for service in processes.SERVICES)
    processes.start_all(say=lambda _: None)
    assert all(v.healthy for v in asyncio.run(health.settled()))


def test_a_hung_service_is_reported_by_its_stale_heartbeat(clean_system):
    pid = processes.running_pid("market")
    assert pid is not None
    os.kill(pid, signal.SIGSTOP)
    try:
        time.sleep(health.STALE_HEARTBEAT_S + 1)
        verdicts = {v.service: v for v in asyncio.run(health.check(("market", "buyer")))}
    finally:
        os.kill(pid, signal.SIGCONT)
    assert any("no heartbeat" in problem for problem in verdicts["market"].problems), verdicts["market"].problems
    assert verdicts["buyer"].healthy, verdicts["buyer"].problems
