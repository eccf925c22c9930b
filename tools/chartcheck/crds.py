"""The KEDA and Prometheus-operator CRDs, taken once from their Go modules into a folder.

``python -m tools.chartcheck.crds DIR --keda v2.21.0 --prometheus-operator v0.85.0`` (what ``make
chart`` runs) downloads both modules through the Go module proxy and copies the CRD files the
chart's custom resources need; a complete folder is left as it is.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

KEDA_CRDS = (
    "scaledobjects",
    "scaledjobs",
    "triggerauthentications",
    "clustertriggerauthentications",
)
PROMETHEUS_CRDS = ("servicemonitors", "podmonitors", "prometheusrules")
COMPLETE = ".complete"


def module_dir(module: str, version: str) -> Path:
    """Where ``go mod download`` put ``module@version``."""
    with tempfile.TemporaryDirectory() as scratch:  # outside any module of ours
        done = subprocess.run(
            ["go", "mod", "download", "-json", f"{module}@{version}"],
            cwd=scratch, capture_output=True, text=True, check=False, timeout=900,
        )  # fmt: skip
    if done.returncode != 0:
        raise RuntimeError(f"go mod download {module}@{version} failed: {done.stderr.strip()}")
    return Path(json.loads(done.stdout)["Dir"])


def fetch(into: Path, keda: str, prometheus_operator: str) -> None:
    if (into / COMPLETE).exists():
        return
    keda_dir = module_dir("github.com/kedacore/keda/v2", keda) / "config" / "crd" / "bases"
    prometheus_dir = (
        module_dir("github.com/prometheus-operator/prometheus-operator", prometheus_operator)
        / "example"
        / "prometheus-operator-crd"
    )
    into.mkdir(parents=True, exist_ok=True)
    for name in KEDA_CRDS:
        shutil.copyfile(keda_dir / f"keda.sh_{name}.yaml", into / f"keda.sh_{name}.yaml")
    for name in PROMETHEUS_CRDS:
        source = prometheus_dir / f"monitoring.coreos.com_{name}.yaml"
        shutil.copyfile(source, into / source.name)
    (into / COMPLETE).touch()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.chartcheck.crds", description=__doc__)
    parser.add_argument("into", type=Path)
    parser.add_argument("--keda", required=True)
    parser.add_argument("--prometheus-operator", required=True)
    args = parser.parse_args(argv)
    try:
        fetch(args.into, args.keda, args.prometheus_operator)
    except (RuntimeError, OSError) as exc:
        sys.stderr.write(f"chartcheck: cannot fetch the CRDs: {exc}\n")
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
