"""Lint, render and validate a chart for each values case and Kubernetes version."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

from tools.chartcheck.helm import Helm
from tools.chartcheck.manifests import ManifestError, Rendered, load_manifests
from tools.chartcheck.promtool import Promtool, rule_groups
from tools.chartcheck.rules import semantic_errors
from tools.chartcheck.schemas import SchemaSet

MAX_ERRORS_PER_OBJECT = 15
RULE_TESTS = "rules-tests"
"""The chart's folder of promtool unit tests: ``<stem>.yaml`` tests the rules rendered with
``ci/<stem>.yaml`` (``default.yaml``: with the chart's defaults)."""


@dataclass(frozen=True, slots=True)
class Case:
    """One set of values the chart is rendered with (None: the chart's defaults)."""

    name: str
    values: Path | None
    rule_tests: Path | None = None
    """promtool unit tests of the alerting rules this case renders."""

    @property
    def label(self) -> str:
        return self.name if self.values is None else f"{self.name} ({self.values})"


def cases_of(chart: Path, extra_values: Sequence[Path] = ()) -> list[Case]:
    """The defaults, every ``ci/*.yaml`` of the chart (Helm's convention), then ``extra_values``."""

    def tests_of(stem: str) -> Path | None:
        path = chart / RULE_TESTS / f"{stem}.yaml"
        return path if path.is_file() else None

    found = [Case("default", None, tests_of("default"))]
    found += [Case(f"ci-{p.stem}", p, tests_of(p.stem)) for p in sorted(chart.glob("ci/*.y*ml"))]
    found += [Case(f"values-{p.stem}", p) for p in extra_values]
    return found


def orphan_rule_tests(chart: Path, cases: Sequence[Case]) -> list[Path]:
    """Unit-test files no case renders rules for (a renamed or misspelt ci file)."""
    used = {case.rule_tests for case in cases}
    return [p for p in sorted(chart.glob(f"{RULE_TESTS}/*")) if p not in used]


def validate_render(schemas: SchemaSet, rendered: list[Rendered]) -> tuple[list[str], list[str]]:
    """(failures, notes) for one render: schema, rules, and objects rendered twice."""
    failures: list[str] = []
    notes: list[str] = []
    everything = [r.obj for r in rendered]
    seen: Counter[tuple[str, str, str, str]] = Counter()
    for item in rendered:
        meta = item.obj.get("metadata") or {}
        group = str(item.obj.get("apiVersion", "")).rpartition("/")[0]
        ident = (group, item.kind, str(meta.get("namespace", "")), item.name)
        seen[ident] += 1
        checked = schemas.errors(item.obj)
        if checked is None:
            notes.append(f"  note {item.label}: no CRD for {item.obj.get('apiVersion')}; skipped")
            against, errors = "", list[str]()
        else:
            against, errors = checked
        against = f" (schema: {against})" if errors and against else ""
        errors += semantic_errors(item.obj, everything)
        if seen[ident] == 2:
            errors.append("rendered twice (same kind, namespace and name)")
        if errors:
            shown = errors[:MAX_ERRORS_PER_OBJECT]
            if len(errors) > len(shown):
                shown.append(f"... and {len(errors) - len(shown)} more")
            source = f" from {item.source}" if item.source else ""
            failures.append(
                f"  FAIL {item.label}{source}{against}:\n" + "\n".join(f"       {e}" for e in shown)
            )
    if not rendered:
        failures.append("  FAIL the chart renders no object")
    return failures, notes


@dataclass
class Report:
    steps: int = 0
    failed: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.failed


def check_rules(
    case: Case, rendered: list[Rendered], promtool: Promtool | None, out: TextIO, report: Report
) -> None:
    """promtool on the alerting rules of one case's render, and on their unit tests."""
    groups = rule_groups(rendered)
    if not groups and case.rule_tests is None:
        return
    if promtool is None:
        out.write(f"== rules {case.label}: not checked (no --promtool)\n")
        return
    report.steps += 1
    if not groups:
        out.write(f"== rules {case.label}: FAIL\n   {case.rule_tests} tests rules, ")
        out.write("but this case renders no PrometheusRule\n")
        report.failed.append(f"rules {case.name}")
        return
    checked = promtool.check_rules(groups)
    rules = sum(len(group.get("rules") or []) for group in groups)
    out.write(f"== rules {case.label}: {'ok' if checked.ok else 'FAIL'} ({rules} rules)\n")
    if not checked.ok:
        out.write("".join(f"   {line}\n" for line in checked.output.splitlines()[:40]))
        report.failed.append(f"rules {case.name}")
        return
    if case.rule_tests is None:
        return
    report.steps += 1
    tested = promtool.test_rules(groups, case.rule_tests)
    out.write(f"== rule tests {case.rule_tests}: {'ok' if tested.ok else 'FAIL'}\n")
    if not tested.ok:
        out.write("".join(f"   {line}\n" for line in tested.output.splitlines()[:60]))
        report.failed.append(f"rule tests {case.name}")


def check_chart(
    chart: Path,
    helm: Helm,
    schema_sets: Sequence[SchemaSet],
    out: TextIO,
    extra_values: Sequence[Path] = (),
    promtool: Promtool | None = None,
) -> Report:
    report = Report()
    cases = cases_of(chart, extra_values)
    for orphan in orphan_rule_tests(chart, cases):
        report.steps += 1
        out.write(f"== rule tests {orphan}: FAIL\n   no ci/{orphan.stem}.yaml renders the rules ")
        out.write("it tests (default.yaml: the chart's defaults)\n")
        report.failed.append(f"rule tests {orphan.name}")
    for case in cases:
        rules_checked = False
        report.steps += 1
        lint = helm.lint(chart, case.values)
        out.write(f"== lint {case.label}: {'ok' if lint.ok else 'FAIL'}\n")
        if not lint.ok:
            out.write("".join(f"   {line}\n" for line in lint.output.splitlines()))
            report.failed.append(f"lint {case.name}")
        for schemas in schema_sets:
            version = schemas.kube_version
            report.steps += 1
            step = f"{case.label} @ Kubernetes {version}"
            render = helm.template(chart, case.values, version)
            if not render.ok:
                out.write(f"== render {step}: FAIL\n")
                out.write("".join(f"   {line}\n" for line in render.output.splitlines()[:30]))
                report.failed.append(f"render {case.name}@{version}")
                continue
            try:
                rendered = load_manifests(render.output)
            except ManifestError as exc:
                failures, notes = [f"  FAIL not valid YAML: {exc}"], list[str]()
                rendered = []
            else:
                failures, notes = validate_render(schemas, rendered)
            out.write(f"== validate {step}: {'FAIL' if failures else 'ok'}\n")
            kinds = Counter(r.kind for r in rendered)
            summary = ", ".join(f"{kind} {n}" for kind, n in sorted(kinds.items()))
            out.write("".join(f"{line}\n" for line in [*failures, *notes]))
            out.write(f"  {len(rendered)} objects ({summary or 'none'})\n")
            if failures:
                report.failed.append(f"validate {case.name}@{version}")
            if rendered and not rules_checked:  # the rules do not depend on Kubernetes' version
                rules_checked = True
                check_rules(case, rendered, promtool, out, report)
    return report
