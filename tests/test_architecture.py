"""The layout is the architecture: who may import whom, and where topic names are written."""

from __future__ import annotations

import ast
import sys
from collections.abc import Iterator
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
