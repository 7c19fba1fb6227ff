"""The short chaos run: a few thousand inputs through every service while a service is
SIGKILLed, the broker is stopped with SIGTERM and with SIGKILL, and PostgreSQL restarts.
Nothing may be lost or done twice, and the audit must be clean.

It runs `farmlink chaos` on a broker and server of its own (its own FARMLINK_HOME and ports),
so killing them disturbs no other test.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from events.settings import settings

pytestmark = pytest.mark.chaos

PORTS = {"FARMLINK_KAFKA_PORT": "17092", "FARMLINK_KAFKA_CONTROLLER_PORT": "17093", "FARMLINK_POSTGRES_PORT": "14432"}


@pytest.fixture(scope="module")
def chaos_env():
    home = settings().home / "chaos-test"
    home.mkdir(parents=True, exist_ok=True)
    shared_libs = settings().home / "kafka" / "libs"
    own_libs = home / "kafka" / "libs"
    if shared_libs.is_dir() and not own_libs.exists():  # the same jars: no second Maven run
        own_libs.parent.mkdir(parents=True, exist_ok=True)
        own_libs.symlink_to(shared_libs, target_is_directory=True)
    env = {k: v for k, v in os.environ.items() if k not in ("KAFKA_BOOTSTRAP_SERVERS", "DATABASE_URL")}
    env |= PORTS | {"FARMLINK_HOME": str(home), "PYTHONUNBUFFERED": "1"}
    yield env
    subprocess.run([sys.executable, "-m", "farmlink.cli", "down"], env=env, capture_output=True, timeout=120)
    subprocess.run([sys.executable, "-m", "farmlink.cli", "infra", "down"], env=env, capture_output=True, timeout=180)


@pytest.mark.timeout(1200)
def test_a_short_chaos_run_loses_nothing_duplicates_nothing_and_audits_clean(chaos_env, tmp_path: Path):
    figures_file = tmp_path / "chaos.json"
    run = subprocess.run(
        [sys.executable, "-m", "farmlink.cli", "chaos", "--events", "2000", "--kills-per-service", "1",
         "--services", "matching,settlement", "--window", "500", "--yes", "--json", str(figures_file)],
        env=chaos_env, capture_output=True, text=True, timeout=1100,
    )
    assert run.returncode == 0, run.stdout[-6000:] + run.stderr[-6000:]
    figures = json.loads(figures_file.read_text())
    assert figures["ok"] is True
    assert figures["lost"] == 0 and figures["outcomes"] == figures["events"] == 2000
    assert figures["journal_missing"] == 0 and figures["journal_duplicates"] == 0
    assert figures["fills"] > 0 and figures["duplicate_fills"] == 0 and figures["settled_fills"] == figures["fills"]
    assert figures["fill_redeliveries_on_kafka"] == 0
    assert figures["payments"] > 0 and figures["duplicate_payments"] == 0 and figures["paid_fen"] == figures["income_fen"]
    assert figures["audit_clean"] is True and figures["state_hash_postgres"] == figures["state_hash_kafka"]
    assert figures["fault_count"] == {"kill-service": 2, "kafka-sigterm": 1, "kafka-sigkill": 1, "postgres-restart": 1}
    assert sorted(recovery["fault"] for recovery in figures["recoveries"]) == [
        "kafka-sigkill", "kafka-sigterm", "kill-service matching", "kill-service settlement", "postgres-restart"]
