"""Layers point one way: contracts <- events <- services, the matcher stands alone, no service imports another."""

import ast
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]
OURS = frozenset({"contracts", "events", "matcher", "services", "farmlink", "tests"})


@dataclass(frozen=True)
class Import:
    """One import of one of our modules: where it is written and what it names."""

    file: str
    line: int
    module: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line} imports {self.module}"


def _package_of(module_path: str, is_package: bool) -> list[str]:
    parts = module_path.split(".")
    return parts if is_package else parts[:-1]


def imports_in(source: str, module_path: str, file: str, is_package: bool = False) -> Iterator[Import]:
    """Every import of our modules in `source` (absolute or relative, anywhere in the file)."""
    for node in ast.walk(ast.parse(source, filename=file)):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                package = _package_of(module_path, is_package)
                base = package[: len(package) - (node.level - 1)]
                stem = ".".join([*base, node.module] if node.module else base)
            else:
                stem = node.module or ""
            # `from services import buyer` imports the module services.buyer.
            names = [f"{stem}.{alias.name}" if alias.name != "*" else stem for alias in node.names]
        else:
            continue
        for name in names:
            if name.split(".")[0] in OURS:
                yield Import(file, node.lineno, name)


def imports_of(layer: str) -> list[Import]:
    found = []
    for path in sorted((ROOT / layer).rglob("*.py")):
        relative = path.relative_to(ROOT)
        is_package = path.name == "__init__.py"
        module_path = ".".join(relative.with_suffix("").parts[:-1] if is_package else relative.with_suffix("").parts)
        found += imports_in(path.read_text(encoding="utf-8"), module_path, str(relative), is_package)
    return found


def top(module: str) -> str:
    return module.split(".")[0]


def violations(layer: str, allowed: set[str]) -> list[str]:
    return [str(imported) for imported in imports_of(layer) if top(imported.module) not in allowed]


# ---------------------------------------------------------------- the rules


def test_contracts_import_nothing_of_ours_but_contracts():
    assert violations("contracts", {"contracts"}) == []


def test_the_matcher_imports_nothing_of_ours_but_the_matcher():
    assert violations("matcher", {"matcher"}) == []


def test_events_import_only_contracts_and_events():
    assert violations("events", {"contracts", "events"}) == []


def test_services_never_import_farmlink_or_tests():
    assert violations("services", {"contracts", "events", "matcher", "services"}) == []


def test_no_service_imports_another_service():
    crossing = []
    for imported in imports_of("services"):
        parts = Path(imported.file).parts  # ("services", "<name>", ...)
        if top(imported.module) != "services" or len(parts) < 3:
            continue
        target = imported.module.split(".")
        if len(target) >= 2 and target[1] != parts[1]:
            crossing.append(str(imported))
    assert crossing == []


@pytest.mark.parametrize("layer", ["contracts", "events", "matcher", "services"])
def test_no_library_layer_imports_farmlink_or_tests(layer):
    assert [str(i) for i in imports_of(layer) if top(i.module) in {"farmlink", "tests"}] == []


def test_every_layer_has_python_files_to_check():
    for layer in ("contracts", "events", "matcher", "services"):
        assert list((ROOT / layer).rglob("*.py")), layer


# ---------------------------------------------------------------- the checker itself


def test_the_checker_finds_absolute_relative_and_nested_imports_with_their_lines():
    source = "\n".join(
        [
            "import json",
            "from contracts.inputs import Receipt",
            "from . import domain",
            "from ..settlement import domain as other",
            "def later():",
            "    import farmlink.cli",
        ]
    )
    found = list(imports_in(source, "services.buyer.app", "services/buyer/app.py"))
    assert [(i.line, i.module) for i in found] == [
        (2, "contracts.inputs.Receipt"),
        (3, "services.buyer.domain"),
        (4, "services.settlement.domain"),
        (6, "farmlink.cli"),
    ]
    assert str(found[3]) == "services/buyer/app.py:6 imports farmlink.cli"


def test_the_checker_resolves_relative_imports_in_a_package_init():
    found = list(imports_in("from .domain import place_order", "services.buyer", "services/buyer/__init__.py", is_package=True))
    assert [i.module for i in found] == ["services.buyer.domain.place_order"]


def test_the_checker_sees_the_imports_the_code_really_makes():
    seen = {(i.file, i.module) for i in imports_of("services")}
    assert ("services/buyer/domain.py", "events.consumer.Rejection") in seen
    assert ("services/buyer/app.py", "services.buyer.domain") in seen


def test_no_two_test_modules_share_a_basename():
    """The test folders are not packages, so pytest imports each test module by its file name: two of one name in
    different tiers stop the whole run at collection ("import file mismatch")."""
    root = Path(__file__).resolve().parents[1]
    names: dict[str, list[str]] = {}
    for path in sorted(root.rglob("test_*.py")):
        names.setdefault(path.name, []).append(str(path.relative_to(root)))
    assert {name: paths for name, paths in names.items() if len(paths) > 1} == {}
