"""The faults `farmlink chaos` inflicts on the local broker and server: stop or kill Kafka, restart PostgreSQL, and
the WAL volume (pg_wal moved onto a small tmpfs for the run and back; root only).

The TCP links that slow down or cut a service's network are farmlink/operations/chaos/faults.py; the run itself,
farmlink/operations/chaos/.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
from pathlib import Path

from tenacity import Retrying, retry_if_result, stop_after_delay, wait_fixed

from events.settings import settings
from farmlink.operations.infra.commands import Progress, _is_root, _log_progress, _port_in_use, _run, _run_sync
from farmlink.operations.infra.kafka import KAFKA_STOP_TIMEOUT_S, _kafka_alive, _stop_kafka, kafka_pid
from farmlink.operations.infra.layout import InfraError, Layout
from farmlink.operations.infra.postgres import (
    _chown_to_pg_user,
    _connect_superuser,
    _ensure_postgres_running,
    _literal,
    _pg,
    _stop_postgres,
    postgres_running,
)


# ---------------------------------------------------------------------------------------------
# Faults, for `farmlink chaos` (the local broker and server only)


def kill_kafka(sig: signal.Signals, progress: Progress | None = None) -> None:
    """Stop the local broker with `sig`: SIGTERM waits for its clean shutdown, SIGKILL for the process to vanish."""
    say = progress or _log_progress
    layout = Layout.of()
    if sig == signal.SIGTERM:
        _stop_kafka(layout, say)
    else:
        pid = kafka_pid(layout)
        if pid is None:
            raise InfraError("Kafka is not running here; nothing to kill")
        say(f"Killing Kafka (pid {pid}) with {sig.name} ...")
        os.kill(pid, sig)
        Retrying(
            stop=stop_after_delay(KAFKA_STOP_TIMEOUT_S),
            wait=wait_fixed(0.1),
            retry=retry_if_result(bool),
            retry_error_callback=lambda state: state.outcome.result(),
        )(_kafka_alive, layout, pid)
        layout.kafka_pid_file.unlink(missing_ok=True)
    # A dying JVM may still hold its listeners for a moment after /proc stops naming it.
    Retrying(
        stop=stop_after_delay(30),
        wait=wait_fixed(0.1),
        retry=retry_if_result(bool),
        retry_error_callback=lambda state: state.outcome.result(),
    )(
        lambda: (
            _port_in_use(layout.kafka_port)
            or _port_in_use(layout.kafka_controller_port)
            or (layout.kafka_fault_port is not None and _port_in_use(layout.kafka_fault_port))
        )
    )


def restart_postgres(progress: Progress | None = None) -> None:
    """Restart the local server (pg_ctl restart -m fast): every connection is cut, then it accepts again."""
    say = progress or _log_progress
    layout = Layout.of()
    if not postgres_running(layout):
        raise InfraError("PostgreSQL is not running here; nothing to restart")
    say("Restarting PostgreSQL ...")
    _run(
        _pg("pg_ctl", "-D", str(layout.pg_data), "-l", str(layout.postgres_log), "-m", "fast", "-w", "-t", "60", "restart"),
        what=f"Restarting PostgreSQL (log: {layout.postgres_log})",
    )


# ---------------------------------------------------------------------------------------------
# The WAL volume, for `farmlink chaos` (the local server only; root only: it mounts a tmpfs)

WAL_VOLUME_SETTINGS = {"wal_recycle": "off", "max_wal_size": "64MB", "min_wal_size": "32MB"}
"""While pg_wal is on the small volume: every new WAL segment is a new file (no recycling by renaming), so a
full volume stops WAL writes at the next segment, and the checkpoints keep the volume's use small."""


def wal_volume(layout: Layout | None = None) -> Path:
    """Where `move_wal_to_volume` mounts the tmpfs that holds pg_wal during a chaos run."""
    return (layout or Layout.of()).pg / "wal-volume"


def wal_on_volume(layout: Layout | None = None) -> bool:
    layout = layout or Layout.of()
    wal = layout.pg_data / "pg_wal"
    return wal.is_symlink() and os.path.ismount(wal_volume(layout))


async def _alter_system(layout: Layout, values: dict[str, str | None]) -> None:
    """ALTER SYSTEM SET (or RESET, for None) each setting as the superuser, then reload."""
    conn = await _connect_superuser(layout)
    try:
        for name, value in values.items():
            if not re.fullmatch(r"[a-z_]+", name):
                raise InfraError(f"not a PostgreSQL setting name: {name!r}")
            await conn.execute(f"ALTER SYSTEM RESET {name}" if value is None else f"ALTER SYSTEM SET {name} = {_literal(value)}")
        await conn.execute("SELECT pg_reload_conf()")
    finally:
        await conn.close()


async def _checkpoint(layout: Layout) -> None:
    conn = await _connect_superuser(layout)
    try:
        await conn.execute("CHECKPOINT")
    finally:
        await conn.close()


def _megabytes_in(path: Path) -> int:
    return sum(entry.stat().st_size for entry in path.rglob("*") if entry.is_file()) // (1024 * 1024)


_SEGMENT = re.compile(r"[0-9A-F]{24}")


def _drop_recycled_segments(layout: Layout) -> None:
    """With the server stopped cleanly, remove the WAL segments after the one its last checkpoint is in: segments
    recycled ahead for reuse, which hold nothing (after a big load, pg_wal may hold a gigabyte of them)."""
    control = _run(_pg("pg_controldata", "-D", str(layout.pg_data)), what="Reading pg_control")
    if not re.search(r"Database cluster state:\s+shut down\n", control):
        return  # not stopped cleanly: WAL after the checkpoint may be needed to recover; keep every segment
    found = re.search(r"Latest checkpoint's REDO WAL file:\s+([0-9A-F]{24})", control)
    if found is None:
        raise InfraError("pg_controldata did not name the latest checkpoint's WAL file")
    for entry in (layout.pg_data / "pg_wal").iterdir():
        if _SEGMENT.fullmatch(entry.name) and entry.name[8:] > found.group(1)[8:] and entry.name[:8] == found.group(1)[:8]:
            entry.unlink()


def _shrink_wal(layout: Layout, size_mb: int, say: Progress) -> None:
    """Stop the server with only what it still needs in pg_wal, so pg_wal fits the volume: a checkpoint first, and
    after the clean stop the segments recycled ahead of it are removed. Refuses, naming the sizes, when what is left
    would not fit (the server is stopped then; `move_wal_back` or `farmlink infra up` starts it)."""
    if postgres_running(layout):
        _run_sync(_checkpoint(layout))
    _stop_postgres(layout, say)
    _drop_recycled_segments(layout)
    held = _megabytes_in(layout.pg_data / "pg_wal")
    if held > size_mb // 2:
        raise InfraError(
            f"pg_wal holds {held} MB after a checkpoint, more than half of the {size_mb} MB WAL volume; "
            "leave the WAL-full fault out (--no-wal-full) or find what keeps the WAL (a replication slot?)"
        )


def move_wal_to_volume(size_mb: int, progress: Progress | None = None) -> Path:
    """Stop the local server, mount a tmpfs of `size_mb` MB at pg/wal-volume, move pg_wal onto it (pg_wal becomes a
    symlink, as `initdb --waldir` makes it) and start the server again with WAL_VOLUME_SETTINGS; the volume's path.

    Not durable across a machine crash (tmpfs): only for a chaos run's throw-away data; `move_wal_back` undoes it."""
    say = progress or _log_progress
    if not _is_root():
        raise InfraError(
            "moving pg_wal onto a tmpfs needs root (mount -t tmpfs); run farmlink chaos as root or "
            "leave the WAL-full fault out (--no-wal-full)"
        )
    s = settings()
    if s.uses_external_database:
        raise InfraError("DATABASE_URL is set: the WAL volume is only for the local server")
    layout = Layout.of(s)
    volume = wal_volume(layout)
    wal = layout.pg_data / "pg_wal"
    if not wal_on_volume(layout):
        if wal.is_symlink():
            _stop_postgres(layout, say)
        else:
            _shrink_wal(layout, size_mb, say)
        volume.mkdir(exist_ok=True)
        if not os.path.ismount(volume):
            _run(
                ["mount", "-t", "tmpfs", "-o", f"size={int(size_mb)}m,mode=0700", "farmlink-wal", str(volume)],
                what="Mounting the WAL volume",
            )
        _chown_to_pg_user(volume)
        if not wal.is_symlink():
            say(f"Moving pg_wal onto a {size_mb} MB tmpfs at {volume} ...")
            _run(["cp", "-a", f"{wal}/.", f"{volume}/"], what="Copying pg_wal onto the WAL volume")
            shutil.rmtree(wal)
            wal.symlink_to(volume, target_is_directory=True)
    _ensure_postgres_running(layout, say)
    _run_sync(_alter_system(layout, dict(WAL_VOLUME_SETTINGS)))
    return volume


def move_wal_back(progress: Progress | None = None) -> None:
    """Undo `move_wal_to_volume`: stop the server, copy pg_wal back onto the data directory's disk (every file of
    the volume but the chaos run's fillers), start it, reset the settings, unmount the volume. Idempotent."""
    say = progress or _log_progress
    layout = Layout.of()
    volume = wal_volume(layout)
    wal = layout.pg_data / "pg_wal"
    if wal.is_symlink():
        say(f"Moving pg_wal back from {volume} onto the data directory's disk ...")
        _stop_postgres(layout, say)
        staging = layout.pg_data / "pg_wal.back"
        if staging.exists():
            shutil.rmtree(staging)
        staging.mkdir(mode=0o700)
        for entry in volume.iterdir():
            if entry.name.startswith(WAL_FILLER_PREFIX):
                continue
            _run(["cp", "-a", str(entry), f"{staging}/"], what="Copying pg_wal back from the WAL volume")
        _chown_to_pg_user(staging)
        wal.unlink()
        staging.rename(wal)
        _ensure_postgres_running(layout, say)
    if os.path.ismount(volume):
        _run(["umount", str(volume)], what="Unmounting the WAL volume")
    if postgres_running(layout):
        _run_sync(_alter_system(layout, dict.fromkeys(WAL_VOLUME_SETTINGS)))


WAL_FILLER_PREFIX = "farmlink-filler"
"""The files `farmlink chaos` writes onto the WAL volume to fill it (never WAL: PostgreSQL ignores them)."""


def switch_wal() -> None:
    """Write to WAL and close its current segment (CHECKPOINT, pg_switch_wal, CHECKPOINT): the second checkpoint's
    record needs the next segment, a new file when WAL_VOLUME_SETTINGS apply. Raises when the server cannot."""

    async def switch() -> None:
        conn = await _connect_superuser(Layout.of())
        try:
            await conn.execute("CHECKPOINT")
            await conn.execute("SELECT pg_switch_wal()")
            await conn.execute("CHECKPOINT")
        finally:
            await conn.close()

    _run_sync(switch())
