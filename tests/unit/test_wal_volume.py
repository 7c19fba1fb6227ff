"""Before a chaos run puts pg_wal on its small volume, a cleanly stopped server's segments recycled ahead of its last
checkpoint are removed (they hold nothing); a server that did not stop cleanly keeps every segment."""

from types import SimpleNamespace

import pytest

from farmlink.operations.infra import faults

pytestmark = pytest.mark.unit

CHECKPOINT_IN = "000000010000000900000030"
SEGMENTS = [
    CHECKPOINT_IN,
    "00000001000000090000002F",
    "000000010000000900000031",
    "00000001000000090000006F",
    "00000001000000100000000A",
]


def _data_dir(tmp_path):
    wal = tmp_path / "pg_wal"
    (wal / "archive_status").mkdir(parents=True)
    for name in SEGMENTS:
        (wal / name).write_bytes(b"")
    (wal / "00000002.history").write_text("1\t0/9000000\tno recovery target\n")
    return SimpleNamespace(pg_data=tmp_path)


def _control(state: str) -> str:
    return f"Database cluster state:               {state}\nLatest checkpoint's REDO WAL file:    {CHECKPOINT_IN}\n"


def test_a_cleanly_stopped_servers_segments_after_its_checkpoint_are_removed(tmp_path, monkeypatch):
    layout = _data_dir(tmp_path)
    monkeypatch.setattr(faults, "_run", lambda cmd, what: _control("shut down"))
    faults._drop_recycled_segments(layout)
    left = sorted(entry.name for entry in (tmp_path / "pg_wal").iterdir())
    assert left == sorted(["00000001000000090000002F", CHECKPOINT_IN, "00000002.history", "archive_status"])


@pytest.mark.parametrize("state", ["in production", "in crash recovery", "shut down in recovery"])
def test_a_server_that_did_not_stop_cleanly_keeps_every_segment(tmp_path, monkeypatch, state):
    layout = _data_dir(tmp_path)
    monkeypatch.setattr(faults, "_run", lambda cmd, what: _control(state))
    faults._drop_recycled_segments(layout)
    assert len(list((tmp_path / "pg_wal").iterdir())) == len(SEGMENTS) + 2
