"""Helm, promtool and the CRDs for the chart tests: the ones ``make`` fetched (``make helm``,
``make promtool``).

``make test`` passes them as ``MEETINGS_HELM``, ``MEETINGS_PROMTOOL`` and ``MEETINGS_CHART_CRDS``;
run directly, the tests look in the cache folder the Makefile uses.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import pytest
import yaml

from tools.chartcheck import Rendered, SchemaSet, load_manifests
from tools.chartcheck.helm import Helm
from tools.chartcheck.promtool import Promtool
from tools.chartcheck.schemas import load_crds

ROOT = Path(__file__).parent.parent.parent
CHART = ROOT / "deploy" / "helm" / "meetings"
FULL: dict[str, Any] = yaml.safe_load((CHART / "ci" / "full.yaml").read_text())
"""The values of ``ci/full.yaml``: every feature of the chart on."""
DASHBOARD = CHART / "dashboards" / "meetings.json"
HELM_VERSION = "v3.22.0"
PROMETHEUS_VERSION = "3.16.0"
CRDS_NAME = "crds-keda-v2.21.0-prometheus-operator-v0.85.0"


def _cache_dir() -> Path:
    explicit = os.environ.get("MEETINGS_CACHE_DIR")
    if explicit:
        return Path(explicit)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "meetings-pipeline"


@pytest.fixture(scope="session")
def helm() -> Helm:
    binary = Path(os.environ.get("MEETINGS_HELM") or _cache_dir() / f"helm-{HELM_VERSION}" / "helm")
    if not binary.is_file():
        pytest.fail(f"no helm at {binary}: `make helm` builds it (needs Go)")
    return Helm(binary)


@pytest.fixture(scope="session")
def promtool() -> Promtool:
    binary = Path(
        os.environ.get("MEETINGS_PROMTOOL")
        or _cache_dir() / f"promtool-{PROMETHEUS_VERSION}" / "promtool"
    )
    if not binary.is_file():
        pytest.fail(f"no promtool at {binary}: `make promtool` builds it (needs Go)")
    return Promtool(binary)


@pytest.fixture(scope="session")
def crds() -> dict[tuple[str, str], Any]:
    folder = Path(os.environ.get("MEETINGS_CHART_CRDS") or _cache_dir() / CRDS_NAME)
    files = sorted(folder.glob("*.yaml"))
    if not files:
        pytest.fail(f"no CRDs in {folder}: `make chart` fetches them (needs Go)")
    return load_crds(files)


@pytest.fixture(scope="session")
def schemas(crds: dict[tuple[str, str], Any]) -> SchemaSet:
    return SchemaSet("latest", crds)


Render = Callable[[Mapping[str, Any]], list[Rendered]]


@pytest.fixture
def render(helm: Helm, tmp_path: Path) -> Render:
    """Renders the chart with these values (on top of its defaults); fails on a helm error."""

    def _render(values: Mapping[str, Any]) -> list[Rendered]:
        path = tmp_path / "values.yaml"
        path.write_text(yaml.safe_dump(dict(values)))
        outcome = helm.template(CHART, path, "1.37")
        assert outcome.ok, outcome.output
        return load_manifests(outcome.output)

    return _render


@pytest.fixture
def chart_copy(tmp_path: Path) -> Path:
    """A copy of the chart that a test may break."""
    copy = tmp_path / "meetings"
    shutil.copytree(CHART, copy)
    return copy
