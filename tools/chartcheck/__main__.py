"""``python -m tools.chartcheck CHART [VALUES...] --helm PATH [--crds DIR] [--promtool PATH]``;
see the package."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from tools.chartcheck.check import check_chart
from tools.chartcheck.helm import Helm
from tools.chartcheck.promtool import Promtool
from tools.chartcheck.schemas import SchemaSet, load_crds

DEFAULT_KUBE_VERSIONS = ("latest", "1.29")


def main(argv: list[str] | None = None) -> int:
    """Exit status 0 when every step passes, 1 when one fails, 2 when the check cannot run."""
    parser = argparse.ArgumentParser(prog="python -m tools.chartcheck", description=__doc__)
    parser.add_argument("chart", type=Path)
    parser.add_argument("values", type=Path, nargs="*", help="more values files to check")
    parser.add_argument("--helm", type=Path, required=True, help="the helm binary")
    parser.add_argument("--crds", type=Path, help="a folder of CRD manifests (*.yaml)")
    parser.add_argument(
        "--promtool",
        type=Path,
        help="Prometheus's promtool: checks the rendered PrometheusRules and runs the chart's "
        "rules-tests/ (without it, rules are only validated against the CRD)",
    )
    parser.add_argument(
        "--kube-version",
        action="append",
        help="Kubernetes version to validate for, repeatable ('latest' = newest bundled; "
        f"default: {' '.join(DEFAULT_KUBE_VERSIONS)})",
    )
    args = parser.parse_args(argv)
    if not (args.chart / "Chart.yaml").is_file():
        sys.stderr.write(f"chartcheck: {args.chart} has no Chart.yaml\n")
        return 2
    if not args.helm.is_file():
        sys.stderr.write(f"chartcheck: no helm at {args.helm} (make helm builds it)\n")
        return 2
    crd_files = sorted(args.crds.glob("*.yaml")) if args.crds else []
    if args.crds and not crd_files:
        sys.stderr.write(f"chartcheck: no CRDs in {args.crds}\n")
        return 2
    crds = load_crds(crd_files)
    try:
        schema_sets = [SchemaSet(v, crds) for v in args.kube_version or DEFAULT_KUBE_VERSIONS]
    except ValueError as exc:
        sys.stderr.write(f"chartcheck: {exc}\n")
        return 2
    if args.promtool is not None and not args.promtool.is_file():
        sys.stderr.write(f"chartcheck: no promtool at {args.promtool} (make promtool builds it)\n")
        return 2
    helm = Helm(args.helm)
    promtool = Promtool(args.promtool) if args.promtool is not None else None
    versions = " ".join(s.kube_version for s in schema_sets)
    custom = ", ".join(sorted({kind for _, kind in crds})) or "none (custom resources skipped)"
    rules = f"promtool {promtool.version()}" if promtool else "no promtool"
    sys.stdout.write(
        f"chartcheck: chart {args.chart}; helm {helm.version()}; Kubernetes {versions}; "
        f"CRDs: {custom}; {rules}\n"
    )
    report = check_chart(args.chart, helm, schema_sets, sys.stdout, args.values, promtool)
    if report.ok:
        sys.stdout.write(f"chartcheck: all {report.steps} steps pass\n")
        return 0
    sys.stdout.write(
        f"chartcheck: {len(report.failed)} of {report.steps} steps fail: "
        f"{', '.join(report.failed)}\n"
    )
    return 1


if __name__ == "__main__":
    sys.exit(main())
