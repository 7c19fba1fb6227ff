"""docker-compose.yml, the Dockerfile, .dockerignore and the dependency locks stay in step with the code.

No image is built and no container runs here (there is no Docker engine on this machine): these tests
read the files as text and YAML and compare them with the settings and constants of the code. What
they cannot tell is whether Docker accepts them, whether the image builds, or whether the services
start and turn healthy in their containers. The one thing they run is the farmlink services'
health probe, a Python script, on this machine against heartbeat files they write.
"""

import json
import os
import re
import subprocess
import sys
import time
import tomllib
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import yaml
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from events.access import ADMIN, ALL_PRINCIPALS, SCRAM_MECHANISM, service_principal
from events.settings import (
    APP_ROLE,
    AUDITOR,
    LOCAL_DATABASE,
    role_env,
    role_name,
    LOCAL_KAFKA_PORT,
    LOCAL_POSTGRES_PORT,
    Settings,
)
from farmlink import health, infra, processes
from services.feeds.registrar import REGISTRAR_PASSWORD_ENV, REGISTRAR_USERNAME_ENV

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = ROOT / "docker-compose.yml"
DOCKERFILE = ROOT / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"
FULL_LOCK = ROOT / "requirements.lock"
RUNTIME_LOCK = ROOT / "requirements-runtime.lock"
APP_SERVICES = processes.SERVICES  # every farmlink service runs in a container of its own
# The environment variables events/settings.py reads (pydantic-settings: field name, upper-cased).
SETTINGS_ENV = {
    "KAFKA_BOOTSTRAP_SERVERS",
    "DATABASE_URL",
    "KAFKA_SECURITY_PROTOCOL",
    "KAFKA_SASL_MECHANISM",
    "KAFKA_SASL_USERNAME",
    "KAFKA_SASL_PASSWORD",
}
SECURITY_KEYS = (
    "sasl.enabled.mechanisms",
    "sasl.mechanism.inter.broker.protocol",
    "sasl.mechanism.controller.protocol",
    "authorizer.class.name",
    "super.users",
    "allow.everyone.if.no.acl.found",
    "auto.create.topics.enable",
)


def _password_var(principal: str) -> str:
    return "FARMLINK_KAFKA_PASSWORD_" + principal.upper().replace("-", "_")


def _kafka_properties(service: dict) -> dict[str, str]:
    """The server.properties the kafka service's start script writes (its heredoc)."""
    script = service["command"][0]
    body = script.split("<<EOF\n", 1)[1].split("\nEOF\n", 1)[0]
    return dict(line.split("=", 1) for line in body.splitlines() if line.strip())


@pytest.fixture(scope="module")
def services() -> dict:
    return yaml.safe_load(COMPOSE_FILE.read_text())["services"]


def _env(service: dict) -> dict[str, str]:
    env = service.get("environment", {})
    if isinstance(env, list):
        env = dict(item.split("=", 1) for item in env)
    return {key: str(value) for key, value in env.items()}


def _host_port(service: dict, container_port: int) -> int:
    for mapping in service["ports"]:
        parts = str(mapping).split(":")
        if int(parts[-1]) == container_port:
            return int(parts[-2])
    raise AssertionError(f"no host port published for container port {container_port}")


def test_all_services_exist(services):
    assert {"kafka", "postgres", "topics", *APP_SERVICES} <= services.keys()


def test_images(services):
    assert services["kafka"]["image"] == "apache/kafka:4.1.1"
    assert services["postgres"]["image"] == "postgres:15"
    for name in ("topics", *APP_SERVICES):
        assert services[name]["image"] == "farmlink:latest", name
    assert services["topics"]["build"] == "."


def test_host_ports_match_local_launcher(services):
    assert _host_port(services["kafka"], LOCAL_KAFKA_PORT) == LOCAL_KAFKA_PORT
    assert _host_port(services["postgres"], 5432) == LOCAL_POSTGRES_PORT


def test_env_names_are_the_ones_settings_reads():
    fields = {name.upper() for name in Settings.model_fields}
    assert SETTINGS_ENV <= fields


@pytest.mark.parametrize("name", ("topics", *APP_SERVICES))
def test_app_services_set_exactly_the_settings_env(services, name):
    env = _env(services[name])
    roles = {role_env(n) for n in (*APP_SERVICES, AUDITOR)} if name == "topics" else {role_env(name)}
    registrar = {REGISTRAR_USERNAME_ENV, REGISTRAR_PASSWORD_ENV} if name == "feeds" else set()  # its admin login
    assert set(env) == SETTINGS_ENV | roles | registrar  # the topics job creates every role; a service connects as its own
    for variable in roles:
        role = urlsplit(env[variable])
        assert role.username == role_name(variable.removeprefix("DATABASE_URL_").lower())
        assert "dev-only" in role.password and (role.hostname, role.port, role.path) == ("postgres", 5432, f"/{LOCAL_DATABASE}")
    assert env["KAFKA_BOOTSTRAP_SERVERS"] == "kafka:9092"
    assert (env["KAFKA_SECURITY_PROTOCOL"], env["KAFKA_SASL_MECHANISM"]) == ("SASL_PLAINTEXT", SCRAM_MECHANISM)
    principal = ADMIN if name == "topics" else service_principal(name)
    assert env["KAFKA_SASL_USERNAME"] == principal
    assert env["KAFKA_SASL_PASSWORD"] == _env(services["kafka"])[_password_var(principal)]
    db = urlsplit(env["DATABASE_URL"])
    assert (db.hostname, db.port) == ("postgres", 5432)


@pytest.mark.parametrize("name", APP_SERVICES)
def test_app_services_run_their_service_after_topics(services, name):
    service = services[name]
    assert service["command"] == ["serve", name]
    assert service["depends_on"]["kafka"]["condition"] == "service_healthy"
    assert service["depends_on"]["postgres"]["condition"] == "service_healthy"
    assert service["depends_on"]["topics"]["condition"] == "service_completed_successfully"


def test_topics_job_runs_infra_up(services):
    assert services["topics"]["command"] == ["infra", "up"]


def test_postgres_role_and_database_agree_with_the_local_launcher(services):
    env = _env(services["postgres"])
    assert env["POSTGRES_USER"] == APP_ROLE
    assert env["POSTGRES_DB"] == LOCAL_DATABASE
    assert "dev-only" in env["POSTGRES_PASSWORD"], "a committed default password must say it is development-only"
    for name in ("topics", *APP_SERVICES):
        app_db = urlsplit(_env(services[name])["DATABASE_URL"])
        assert (app_db.username, app_db.password, app_db.path) == (APP_ROLE, env["POSTGRES_PASSWORD"], f"/{LOCAL_DATABASE}")


def test_kafka_is_kraft_combined_without_auto_topic_creation(services):
    props = _kafka_properties(services["kafka"])
    assert props["process.roles"] == "broker,controller"
    assert props["auto.create.topics.enable"] == "false"
    assert "INTERNAL://kafka:9092" in props["advertised.listeners"]
    assert f"://127.0.0.1:{LOCAL_KAFKA_PORT}" in props["advertised.listeners"]
    assert props["offsets.topic.replication.factor"] == "1"


def test_kafka_has_the_local_launchers_sasl_and_acl_settings_on_every_listener(services, tmp_path):
    props = _kafka_properties(services["kafka"])
    local = infra.server_properties(infra.Layout(tmp_path))
    assert {key: props[key] for key in SECURITY_KEYS} == {key: local[key] for key in SECURITY_KEYS}
    protocols = dict(item.split(":") for item in props["listener.security.protocol.map"].split(","))
    assert set(protocols.values()) == {"SASL_PLAINTEXT"}
    for listener in protocols:
        assert f"listener.name.{listener.lower()}.scram-sha-512.sasl.jaas.config" in props


def test_every_principal_gets_a_scram_credential_at_format_time_with_a_dev_only_default(services):
    env = _env(services["kafka"])
    script = services["kafka"]["command"][0]
    [listed] = re.findall(r"for principal in ([^;]+);", script)
    assert listed.split() == list(ALL_PRINCIPALS)
    assert "--add-scram" in script and "format --ignore-formatted" in script
    for principal in ALL_PRINCIPALS:
        var = _password_var(principal)
        assert env[var] == f"${{{var}:-dev-only-{principal}}}", "a committed default password must say it is development-only"


# -- stopping, health checks -------------------------------------------------------------------------


def _seconds(duration: str) -> float:
    """A compose duration (`30s`, `1m30s`, `1m`) in seconds."""
    units = {"h": 3600, "m": 60, "s": 1, "ms": 0.001}
    parts = re.findall(r"(\d+(?:\.\d+)?)(ms|h|m|s)", str(duration))
    assert parts and "".join(n + u for n, u in parts) == str(duration), f"not a duration: {duration!r}"
    return sum(float(n) * units[u] for n, u in parts)


@pytest.mark.parametrize("name", APP_SERVICES)
def test_services_get_longer_than_the_launchers_stop_timeout_to_stop(services, name):
    """Docker's default is 10 s; the local launcher gives a service STOP_TIMEOUT_S to finish its batch and drain."""
    assert _seconds(services[name]["stop_grace_period"]) > processes.STOP_TIMEOUT_S


def test_kafka_gets_longer_than_the_launchers_kafka_stop_timeout_to_stop(services):
    assert _seconds(services["kafka"]["stop_grace_period"]) > infra.KAFKA_STOP_TIMEOUT_S


def test_postgres_is_healthy_only_when_it_answers_over_tcp(services):
    """The image's init server listens on the Unix socket only: a socket probe says ready too early."""
    [kind, command] = services["postgres"]["healthcheck"]["test"]
    assert kind == "CMD-SHELL"
    assert command.split()[0] == "pg_isready"
    assert re.search(r"(^|\s)-h 127\.0\.0\.1(\s|$)", command)
    assert f"-U {APP_ROLE}" in command and f"-d {LOCAL_DATABASE}" in command


@pytest.mark.parametrize("name", APP_SERVICES)
def test_every_farmlink_service_has_the_heartbeat_healthcheck(services, name):
    check = services[name]["healthcheck"]
    assert check["test"][:3] == ["CMD", "python", "-c"]  # the image has Python, not curl
    assert _seconds(check["start_period"]) >= processes.READY_TIMEOUT_S
    assert _seconds(check["interval"]) > processes.HEARTBEAT_S
    assert check["retries"] >= 1


def _probe(services: dict, home: Path) -> subprocess.CompletedProcess:
    """Run a farmlink service's healthcheck script here, as the container would, with FARMLINK_HOME=home."""
    script = services["cooperative"]["healthcheck"]["test"][3]
    assert "$" not in script, "compose would interpolate it"
    env = {**os.environ, "FARMLINK_HOME": str(home)}
    return subprocess.run([sys.executable, "-c", script], env=env, cwd=ROOT, capture_output=True, text=True, timeout=60)


def _beat(home: Path, monkeypatch, **state) -> None:
    """Write the heartbeat file where `farmlink serve` writes it, in its format (farmlink/processes.py serve)."""
    monkeypatch.setenv("FARMLINK_HOME", str(home))
    path = processes.health_file("cooperative")
    assert path.parent == home.resolve() / "run"
    path.write_text(json.dumps({"pid": os.getpid(), "at": time.time(), "relay_failure": None, "relay_failure_at": None} | state))


def test_the_healthcheck_wants_a_heartbeat(services, tmp_path):
    result = _probe(services, tmp_path)
    assert result.returncode == 1 and "no heartbeat yet" in result.stderr


def test_the_healthcheck_passes_on_a_fresh_heartbeat(services, tmp_path, monkeypatch):
    _beat(tmp_path, monkeypatch)
    result = _probe(services, tmp_path)
    assert result.returncode == 0, result.stderr


def test_the_healthcheck_fails_on_a_stale_heartbeat(services, tmp_path, monkeypatch):
    _beat(tmp_path, monkeypatch, at=time.time() - health.STALE_HEARTBEAT_S - 5)
    result = _probe(services, tmp_path)
    assert result.returncode == 1 and "no heartbeat for" in result.stderr


def test_the_healthcheck_fails_while_the_relay_is_failing(services, tmp_path, monkeypatch):
    _beat(tmp_path, monkeypatch, relay_failure="ConnectionRefusedError", relay_failure_at=time.time())
    result = _probe(services, tmp_path)
    assert result.returncode == 1 and "relay failing: ConnectionRefusedError" in result.stderr
    _beat(
        tmp_path, monkeypatch, relay_failure="ConnectionRefusedError", relay_failure_at=time.time() - health.RELAY_FAILING_S - 5
    )
    assert _probe(services, tmp_path).returncode == 0  # an old failure, since recovered


# -- the image ---------------------------------------------------------------------------------------


def _dockerfile() -> list[tuple[str, str]]:
    """(instruction, arguments) of each Dockerfile instruction, continuation lines joined."""
    text = re.sub(
        r"\\\n", " ", "\n".join(line for line in DOCKERFILE.read_text().splitlines() if not line.lstrip().startswith("#"))
    )
    return [(line.split(None, 1)[0].upper(), line.split(None, 1)[1]) for line in text.splitlines() if line.strip()]


def _dockerfile_env() -> dict[str, str]:
    env = {}
    for instruction, args in _dockerfile():
        if instruction == "ENV":
            env |= dict(re.findall(r"(\w+)=(\S+)", args))
    return env


def test_the_image_has_a_farmlink_home_its_user_owns():
    """`farmlink serve` writes its ready and heartbeat files under FARMLINK_HOME/run: the default (.farmlink in
    the working directory /app, owned by root) is not writable by the user the services run as."""
    home = _dockerfile_env()["FARMLINK_HOME"]
    assert home.startswith("/")
    instructions = _dockerfile()
    [user] = [args for instruction, args in instructions if instruction == "USER"]
    runs = " && ".join(args for instruction, args in instructions if instruction == "RUN")
    assert re.search(rf"useradd\b[^&]*\s{user}(\s|$)", runs)
    assert re.search(rf"install -d -o {user} -g {user} -m 0?700 {re.escape(home)}(\s|$)", runs)
    names = [name for name, _ in instructions]
    assert names.index("USER") > max(i for i, name in enumerate(names) if name == "RUN")


def test_the_image_installs_the_runtime_lock_with_hashes_then_farmlink_without_dependencies():
    runs = [args for instruction, args in _dockerfile() if instruction == "RUN"]
    copies = [args for instruction, args in _dockerfile() if instruction == "COPY"]
    assert f"{RUNTIME_LOCK.name} ./" in copies
    [lock_install] = [i for i, run in enumerate(runs) if "-r " + RUNTIME_LOCK.name in run]
    assert "--require-hashes" in runs[lock_install].split()
    [package_install] = [i for i, run in enumerate(runs) if re.search(r"pip install .*--no-deps .*\.(\s|$)", run)]
    assert "--no-build-isolation" in runs[package_install].split()  # else pip fetches an unpinned setuptools
    assert lock_install < package_install


def _dockerignore_patterns() -> list[str]:
    lines = [line.strip() for line in DOCKERIGNORE.read_text().splitlines()]
    return [line for line in lines if line and not line.startswith("#")]


def _ignored(path: str) -> bool:
    """Whether Docker leaves `path` (relative, with /) out of the build context: the last matching pattern
    wins, `!` re-includes, a pattern matching a folder matches everything in it, `**` any number of folders."""

    def regex(pattern: str) -> str:
        out, i = "", 0
        while i < len(pattern):
            if pattern.startswith("**/", i):
                out, i = out + "(?:.*/)?", i + 3
            elif pattern.startswith("**", i):
                out, i = out + ".*", i + 2
            else:
                out += {"*": "[^/]*", "?": "[^/]"}.get(pattern[i], re.escape(pattern[i]))
                i += 1
        return out

    prefixes = ["/".join(path.split("/")[: n + 1]) for n in range(path.count("/") + 1)]
    ignored = False
    for pattern in _dockerignore_patterns():
        negate = pattern.startswith("!")
        cleaned = pattern.removeprefix("!").strip("/")
        if any(re.fullmatch(regex(cleaned), prefix) for prefix in prefixes):
            ignored = not negate
    return ignored


@pytest.mark.parametrize(
    "path",
    [
        ".venv/bin/python",
        ".farmlink/keys/cooperative.pem",
        ".farmlink/secrets/kafka-admin",
        ".farmlink/run/buyer.ready",
        "bench/results/e2e.json",
        ".git/config",
        ".env",
        "deploy/prod.env",
        "somewhere/server.key",
        "tls/ca.pem",
        "farmlink/__pycache__/cli.cpython-311.pyc",
        ".hypothesis/examples/x",
        ".mypy_cache/3.11/x.json",
        "farmlink.egg-info/PKG-INFO",
    ],
)
def test_dockerignore_keeps_secrets_venv_and_results_out_of_the_build_context(path):
    assert _ignored(path), path


def test_dockerignore_keeps_what_the_dockerfile_copies():
    copied = [args.split()[0] for instruction, args in _dockerfile() if instruction == "COPY"]
    files = []
    for source in copied:
        top = ROOT / source
        assert top.exists(), source
        files += [top] if top.is_file() else [p for p in top.rglob("*") if p.is_file() and "__pycache__" not in p.parts]
    assert len(files) > 50
    kept_out = [str(f.relative_to(ROOT)) for f in files if _ignored(str(f.relative_to(ROOT)))]
    assert not kept_out


# -- the dependency locks ----------------------------------------------------------------------------


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
