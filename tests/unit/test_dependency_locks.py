"""The dependency locks: every package hashed, the full lock holding every pin, the runtime lock a part of it, how
to regenerate them, and that ./dev and CI use them."""

import re
import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from tests.unit.deployment_files import FULL_LOCK, ROOT, RUNTIME_LOCK

pytestmark = pytest.mark.unit


def _lock(path: Path) -> dict[str, tuple[str, list[str]]]:
    """{canonical name: (version, hashes)} of a pip-compile lock."""
    entries = {}
    for block in re.split(r"\n(?=[A-Za-z0-9])", path.read_text()):
        match = re.match(r"([A-Za-z0-9][A-Za-z0-9._-]*)==(\S+)", block)
        if match:
            entries[canonicalize_name(match[1])] = (match[2], re.findall(r"--hash=sha256:([0-9a-f]{64})", block))
    return entries


def _pyproject() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())


def _pins(requirements: list[str]) -> dict[str, str]:
    pins = {}
    for text in requirements:
        requirement = Requirement(text)
        [spec] = requirement.specifier
        assert spec.operator == "==", f"pyproject.toml pins exactly: {text}"
        pins[canonicalize_name(requirement.name)] = spec.version
    return pins


def test_every_locked_package_has_hashes():
    for path in (FULL_LOCK, RUNTIME_LOCK):
        lock = _lock(path)
        assert len(lock) > 30
        assert not [name for name, (_, hashes) in lock.items() if not hashes], path.name


def test_the_full_lock_holds_every_pin_of_pyproject_and_the_build_backend():
    project = _pyproject()
    pins = _pins(project["project"]["dependencies"])
    for extra in ("test", "bench"):
        pins |= _pins(project["project"]["optional-dependencies"][extra])
    lock = _lock(FULL_LOCK)
    assert {name: lock.get(name, (None,))[0] for name in pins} == pins, "pyproject.toml changed: run ./dev lock"
    assert "pip-audit" in pins  # .ci/run's audit runs .venv/bin/pip-audit
    for backend in project["build-system"]["requires"]:
        requirement = Requirement(backend)
        assert requirement.specifier.contains(lock[canonicalize_name(requirement.name)][0])


def test_the_runtime_lock_is_the_runtime_part_of_the_full_lock():
    project = _pyproject()
    runtime, full = _lock(RUNTIME_LOCK), _lock(FULL_LOCK)
    pins = _pins(project["project"]["dependencies"])
    assert {name: runtime.get(name, (None,))[0] for name in pins} == pins
    assert not {name for name in runtime if runtime[name] != full.get(name)}, "the two locks disagree: run ./dev lock"
    assert not {"pytest", "mypy", "ruff", "pip-audit", "eventsourcing"} & runtime.keys()
    backend = Requirement(project["build-system"]["requires"][0])
    assert backend.specifier.contains(runtime[canonicalize_name(backend.name)][0])


def test_each_lock_says_how_to_regenerate_it_with_the_pinned_tool():
    dev = (ROOT / "dev").read_text()
    [tool] = re.findall(r'^PIP_TOOLS="(pip-tools==[\d.]+)"', dev, re.M)
    for path in (FULL_LOCK, RUNTIME_LOCK):
        header = path.read_text().split("\n\n")[0]
        assert "#    ./dev lock" in header and f"with {tool} on CPython 3.11" in header
        assert re.search(rf"#    pip-compile .*--generate-hashes .*-o {path.name} pyproject\.toml", header)


def test_dev_installs_from_the_lock_with_hashes_and_reinstalls_when_it_changes():
    dev = (ROOT / "dev").read_text()
    body = dev.split("setup_python() {", 1)[1].split("\n}", 1)[0]
    assert re.search(rf"pip install .*--require-hashes -r {FULL_LOCK.name}", body)
    assert re.search(r"pip install .*--no-deps --no-build-isolation -e \.", body)
    assert f"[ {FULL_LOCK.name} -nt .venv/.installed ]" in body and "[ pyproject.toml -nt .venv/.installed ]" in body
    assert "pip install -q -e" not in body


def test_ci_audits_the_lock():
    run = (ROOT / ".ci" / "run").read_text()
    assert re.search(rf"\.venv/bin/pip-audit -r {FULL_LOCK.name} --require-hashes", run)
    assert "dependency audit skipped:" in run  # an unreachable vulnerability source is said, not hidden
