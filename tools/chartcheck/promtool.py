"""``promtool check rules`` and ``promtool test rules`` on the alerting rules a render holds.

A PrometheusRule's ``spec`` is a Prometheus rule file (``groups: [...]``): the rules are taken
out of the rendered objects, written as one file, and handed to Prometheus's own checker, which
parses every expression the way the server will. Unit tests of the alerts (promtool's format,
``rule_files: [rules.yaml]``) run against that file.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from tools.chartcheck.manifests import Rendered

RULES_FILE = "rules.yaml"
"""The name unit tests list in ``rule_files``."""


@dataclass(frozen=True, slots=True)
class Outcome:
    ok: bool
    output: str


def rule_groups(rendered: Sequence[Rendered]) -> list[dict[str, Any]]:
    """Every rule group of every PrometheusRule in ``rendered``, in order."""
    groups: list[dict[str, Any]] = []
    for item in rendered:
        if item.kind == "PrometheusRule":
            groups += (item.obj.get("spec") or {}).get("groups") or []
    return groups


@dataclass(frozen=True, slots=True)
class Promtool:
    binary: Path

    def _run(self, *args: str, cwd: Path) -> Outcome:
        done = subprocess.run(
            [str(self.binary), *args], cwd=cwd, capture_output=True, text=True, check=False,
            timeout=120,
        )  # fmt: skip
        return Outcome(done.returncode == 0, (done.stdout + done.stderr).strip())

    def version(self) -> str:
        """``3.16.0``, from ``promtool, version 3.16.0 (branch: ...)``."""
        with tempfile.TemporaryDirectory() as scratch:
            output = self._run("--version", cwd=Path(scratch)).output
        found = re.search(r"version (\S+)", output)
        return found.group(1) if found else "unknown"

    def check_rules(self, groups: list[dict[str, Any]]) -> Outcome:
        """``promtool check rules`` with every lint, lint findings fatal (a duplicate rule is a
        copy-and-paste mistake, never intended)."""
        with tempfile.TemporaryDirectory() as scratch:
            folder = Path(scratch)
            _write_rules(folder, groups)
            return self._run("check", "rules", "--lint=all", "--lint-fatal", RULES_FILE, cwd=folder)

    def test_rules(self, groups: list[dict[str, Any]], tests: Path) -> Outcome:
        """``promtool test rules`` of the unit-test file ``tests`` against ``groups``."""
        with tempfile.TemporaryDirectory() as scratch:
            folder = Path(scratch)
            _write_rules(folder, groups)
            copy = f"test-{tests.name}"  # never the rule file's own name
            shutil.copyfile(tests, folder / copy)
            return self._run("test", "rules", copy, cwd=folder)


def _write_rules(folder: Path, groups: list[dict[str, Any]]) -> None:
    text = yaml.safe_dump({"groups": groups}, sort_keys=False, allow_unicode=True)
    (folder / RULES_FILE).write_text(text, encoding="utf-8")
