"""Running the services as background processes: `farmlink up`, `farmlink down`, `farmlink serve`."""

import asyncio
import importlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from events.settings import settings

SERVICES = ("cooperative", "buyer", "market", "matching", "settlement")
READY_TIMEOUT_S = 60.0


def run_dir() -> Path:
    path = settings().farmlink_home.resolve() / "run"
    path.mkdir(parents=True, exist_ok=True)
    return path


def log_dir() -> Path:
    path = settings().farmlink_home.resolve() / "logs"
    path.mkdir(parents=True, exist_ok=True)
    return path


def pid_file(name: str) -> Path:
    return run_dir() / f"{name}.pid"


def ready_file(name: str) -> Path:
    return run_dir() / f"{name}.ready"


def service_app(name: str):
    """The FastStream app of a service, imported by name."""
    if name not in SERVICES:
        raise ValueError(f"unknown service {name!r}; known: {', '.join(SERVICES)}")
    return importlib.import_module(f"services.{name}.app").app


def serve(name: str) -> None:
    """Run one service in this process until SIGTERM or Ctrl-C; mark it ready once it consumes."""
    app = service_app(name)

    @app.after_startup
    async def mark_ready() -> None:
        ready_file(name).write_text(str(os.getpid()))

    try:
        asyncio.run(app.run())
    finally:
        ready_file(name).unlink(missing_ok=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    state = Path(f"/proc/{pid}/stat")
    return not (state.exists() and state.read_text().split(") ")[-1].startswith("Z"))


def running_pid(name: str) -> int | None:
    path = pid_file(name)
    if not path.exists():
        return None
    pid = int(path.read_text().strip() or 0)
    return pid if pid and _alive(pid) else None


def start_all(say=print) -> None:
    """Start every service that is not running, then wait until each consumes."""
    started = []
    for name in SERVICES:
        if running_pid(name):
            continue
        ready_file(name).unlink(missing_ok=True)
        log = (log_dir() / f"{name}.log").open("ab")
        process = subprocess.Popen(
            [sys.executable, "-m", "farmlink.cli", "serve", name],
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        pid_file(name).write_text(str(process.pid))
        started.append(name)
        say(f"started {name} (pid {process.pid}, log {log_dir() / (name + '.log')})")
    deadline = time.monotonic() + READY_TIMEOUT_S
    for name in started:
        while not ready_file(name).exists():
            if not running_pid(name):
                raise RuntimeError(f"service {name} exited during start; see {log_dir() / (name + '.log')}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"service {name} not ready after {READY_TIMEOUT_S:.0f} s; see {log_dir() / (name + '.log')}")
            time.sleep(0.1)


def stop_all(say=print, timeout: float = 20.0) -> None:
    """Stop every running service with SIGTERM (SIGKILL after `timeout`)."""
    for name in SERVICES:
        pid = running_pid(name)
        if pid is None:
            pid_file(name).unlink(missing_ok=True)
            continue
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while _alive(pid) and time.monotonic() < deadline:
            time.sleep(0.1)
        if _alive(pid):
            os.kill(pid, signal.SIGKILL)
        pid_file(name).unlink(missing_ok=True)
        ready_file(name).unlink(missing_ok=True)
        say(f"stopped {name}")


def service_status() -> dict[str, int | None]:
    return {name: running_pid(name) for name in SERVICES}
