"""Running things for the launcher: commands to completion (`_run`, secrets masked in errors), coroutines from
sync code (`_run_sync`), loopback port probes, log tails, and the default progress callback.
"""

from __future__ import annotations

import asyncio
import logging
import os
import shlex
import socket
import subprocess
from collections.abc import Callable, Coroutine, Iterable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

from farmlink.operations.infra.layout import InfraError


log = logging.getLogger("farmlink.infra")

Progress = Callable[[str], None]
T = TypeVar("T")

LOG_TAIL_LINES = 25


# ---------------------------------------------------------------------------------------------
# Small process helpers


def _is_root() -> bool:
    return os.geteuid() == 0


def _tail(path: Path, lines: int = LOG_TAIL_LINES) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


def _run(cmd: list[str], *, what: str, log_file: Path | None = None, timeout: float = 300, secrets: Iterable[str] = ()) -> str:
    """Run a command to completion and return its stdout; raise InfraError naming the command and log
    (with `secrets` masked)."""
    shown = shlex.join(cmd)
    for secret in secrets:
        shown = shown.replace(secret, "***")
    out = open(log_file, "a") if log_file else None
    try:
        proc = subprocess.run(
            cmd,
            stdin=subprocess.DEVNULL,
            stdout=out or subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            timeout=timeout,
            start_new_session=True,  # pg_ctl's postmaster must not share our terminal's signals
        )
    except FileNotFoundError as exc:
        raise InfraError(f"{what}: {cmd[0]} is not installed or not on PATH") from exc
    except subprocess.TimeoutExpired as exc:
        raise InfraError(f"{what}: `{shown}` did not finish in {timeout:.0f} s") from exc
    finally:
        if out:
            out.close()
    if proc.returncode != 0:
        detail = _tail(log_file) if log_file else (proc.stdout or "").strip()
        where = f"\nLog: {log_file}" if log_file else ""
        for secret in secrets:
            detail = detail.replace(secret, "***")
        raise InfraError(f"{what} failed (exit {proc.returncode}): `{shown}`\n{detail}{where}")
    return proc.stdout or ""


def _port_in_use(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((host, port)) == 0


def _check_port_free(port: int, what: str) -> None:
    if _port_in_use(port):
        raise InfraError(
            f"Port 127.0.0.1:{port} ({what}) is taken by another process, not the farmlink one in this "
            f"FARMLINK_HOME. Stop it, or point farmlink at it with the environment variables."
        )


def _run_sync(coro: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine from sync code, also when the caller already runs an event loop."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coro)
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, coro).result()


def _quiet(_: str) -> None:
    pass


def _log_progress(message: str) -> None:
    log.info(message)
