"""The layout is the architecture: who may import whom, and where topic names are written."""

from __future__ import annotations

import ast
import importlib
import sys
from collections.abc import Iterable, Iterator
from pathlib import Path

import pytest

from schemas.topics import ALL_TOPICS, DEFAULT_PREFIX

ROOT = Path(__file__).resolve().parent.parent
SERVICES = ("ingest", "processor", "servicekit")
"""What the container image holds, besides the contract."""
TOOLING = ("tools", "tests", "bench")


def python_files(*packages: str) -> Iterator[Path]:
    for package in packages:
        yield from sorted((ROOT / package).rglob("*.py"))


def imported_modules(path: Path) -> Iterator[str]:
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            yield node.module


def top_level(module: str) -> str:
    return module.split(".")[0]


@pytest.mark.parametrize("package", SERVICES)
def test_services_never_import_tools(package: str) -> None:
    wrong = {
        f"{path.relative_to(ROOT)}: {module}"
        for path in python_files(package)
        for module in imported_modules(path)
        if top_level(module) in TOOLING
    }
    assert wrong == set()


def test_schemas_import_only_the_standard_library_and_msgspec() -> None:
    allowed = {"schemas", "msgspec", *sys.stdlib_module_names}
    wrong = {
        f"{path.relative_to(ROOT)}: {module}"
        for path in python_files("schemas")
        for module in imported_modules(path)
        if top_level(module) not in allowed
    }
    assert wrong == set()


def test_topic_names_are_written_only_in_the_topic_declaration() -> None:
    names = {topic.name_under(DEFAULT_PREFIX) for topic in ALL_TOPICS}
    declaration = ROOT / "schemas" / "topics.py"
    found = set()
    for path in python_files("schemas", *SERVICES, *TOOLING):
        if path == declaration:
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Constant) and isinstance(node.value, str):
                found |= {
                    f"{path.relative_to(ROOT)}: {name}" for name in names if name in node.value
                }
    assert found == set()


DEPENDENCY_PUBLIC_MODULES = {
    "aiohttp": {"aiohttp", "aiohttp.web", "aiohttp.hdrs", "aiohttp.abc"},
    "aiokafka": {
        "aiokafka",
        "aiokafka.abc",
        "aiokafka.errors",
        "aiokafka.helpers",
        "aiokafka.structs",
        "aiokafka.admin",
        "aiokafka.admin.config_resource",  # the argument type of the admin client's configs calls
    },
}
"""The modules each dependency documents. Anything else is an internal."""
INTERNALS_MODULES = {
    "aiohttp": ROOT / "servicekit" / "aiohttp_internals.py",
    "aiokafka": ROOT / "servicekit" / "aiokafka_internals.py",
}
"""The one module per dependency allowed its internals, each guarded by tests/contracts."""


UNDOCUMENTED_MEMBERS = {"client", "cluster", "protocol"}
"""Members without an underscore but without documentation either (aiokafka's
``producer.client.cluster``, aiohttp's ``request.protocol``): reached only through the
internals modules."""


def is_private(name: str) -> bool:
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def service_files_outside_internals() -> Iterator[Path]:
    internals = set(INTERNALS_MODULES.values())
    return (path for path in python_files(*SERVICES) if path not in internals)


@pytest.mark.parametrize("dependency", sorted(DEPENDENCY_PUBLIC_MODULES))
def test_services_import_only_the_documented_modules_of_a_dependency(dependency: str) -> None:
    public = DEPENDENCY_PUBLIC_MODULES[dependency]
    wrong = {
        f"{path.relative_to(ROOT)}: {module}"
        for path in service_files_outside_internals()
        for module in imported_modules(path)
        if top_level(module) == dependency and module not in public
    }
    assert wrong == set(), f"only {INTERNALS_MODULES[dependency].name} may import these"


def private_names_defined_in(paths: Iterable[Path]) -> set[str]:
    """Every underscore name the modules at ``paths`` define, wherever they define it."""
    names: set[str] = set()
    for path in paths:
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
                names.add(node.name)
            elif isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Store):
                names.add(node.attr)
            elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
                names.add(node.id)
            elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
                names.add(node.target.id)
    return {name for name in names if is_private(name)}


def own_private_names() -> set[str]:
    return private_names_defined_in(python_files("schemas", *SERVICES))


def dependency_private_names() -> set[str]:
    found: set[str] = set()
    for dependency in DEPENDENCY_PUBLIC_MODULES:
        package = Path(importlib.import_module(dependency).__file__ or "").parent
        found |= private_names_defined_in(sorted(package.rglob("*.py")))
    return found


def dependency_aliases(tree: ast.Module) -> set[str]:
    """The names a module binds to things imported from aiohttp or aiokafka."""
    aliases: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            aliases |= {
                (alias.asname or alias.name).split(".")[0]
                for alias in node.names
                if top_level(alias.name) in DEPENDENCY_PUBLIC_MODULES
            }
        elif (
            isinstance(node, ast.ImportFrom)
            and node.module
            and node.level == 0
            and top_level(node.module) in DEPENDENCY_PUBLIC_MODULES
        ):
            aliases |= {alias.asname or alias.name for alias in node.names}
    return aliases


def root_name(node: ast.expr) -> str | None:
    while isinstance(node, ast.Attribute | ast.Subscript | ast.Call):
        node = node.func if isinstance(node, ast.Call) else node.value
    return node.id if isinstance(node, ast.Name) else None


def private_uses(path: Path, own: set[str], theirs: set[str]) -> Iterator[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    aliases = dependency_aliases(tree)
    where = path.relative_to(ROOT)
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and is_private(node.attr) and node.attr not in own:
            yield f"{where}:{node.lineno}: .{node.attr}"
        if isinstance(node, ast.Attribute) and node.attr in UNDOCUMENTED_MEMBERS:
            yield f"{where}:{node.lineno}: .{node.attr} (undocumented)"
        if isinstance(node, ast.ClassDef) and any(root_name(b) in aliases for b in node.bases):
            assigned = {
                target.attr
                for inner in ast.walk(node)
                if isinstance(inner, ast.Assign | ast.AnnAssign)
                for target in (inner.targets if isinstance(inner, ast.Assign) else [inner.target])
                if isinstance(target, ast.Attribute)
            }
            for inner in ast.walk(node):
                if isinstance(inner, ast.FunctionDef | ast.AsyncFunctionDef) and (
                    inner.name in theirs
                ):
                    yield f"{where}:{inner.lineno}: {node.name} overrides {inner.name}"
                if (
                    isinstance(inner, ast.Attribute)
                    and isinstance(inner.value, ast.Name)
                    and inner.value.id == "self"
                    and inner.attr in theirs
                    and inner.attr not in assigned
                ):
                    yield f"{where}:{inner.lineno}: {node.name} reads inherited self.{inner.attr}"


def test_services_touch_no_private_name_of_a_dependency() -> None:
    """Outside the internals modules: no underscore attribute the project does not define
    itself, and no class built on aiohttp's or aiokafka's overrides or reads their private
    members."""
    own, theirs = own_private_names(), dependency_private_names()
    wrong = {
        use for path in service_files_outside_internals() for use in private_uses(path, own, theirs)
    }
    assert wrong == set()


@pytest.mark.parametrize("dependency", sorted(INTERNALS_MODULES))
def test_each_internals_module_says_so_and_has_its_contract_test(dependency: str) -> None:
    module = INTERNALS_MODULES[dependency]
    docstring = ast.get_docstring(ast.parse(module.read_text(encoding="utf-8"))) or ""
    assert f"internals of {dependency}" in docstring.lower()
    assert (ROOT / "tests" / "contracts" / f"test_{module.stem}.py").is_file()
