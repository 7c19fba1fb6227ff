"""The image: a farmlink home its user owns, the runtime lock installed with hashes, and a build context without secrets."""

import re

import pytest

from tests.unit.deployment_files import DOCKERFILE, DOCKERIGNORE, ROOT, RUNTIME_LOCK

pytestmark = pytest.mark.unit


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
