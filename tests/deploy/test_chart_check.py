"""The chart check fails on a broken chart, naming the object and the template at fault."""

from __future__ import annotations

import io
import re
import subprocess
from pathlib import Path

import pytest

from tools.chartcheck import SchemaSet
from tools.chartcheck.check import check_chart
from tools.chartcheck.helm import Helm
from tools.chartcheck.promtool import Promtool

from .conftest import CHART, ROOT

DEPLOYMENT = "templates/deployment-ingest.yaml"


def break_file(chart: Path, relative: str, old: str, new: str) -> None:
    path = chart / relative
    text = path.read_text()
    assert old in text, f"{old!r} is not in {relative}"
    path.write_text(text.replace(old, new, 1))


def run_check(
    chart: Path, helm: Helm, schemas: SchemaSet, promtool: Promtool | None = None
) -> tuple[bool, str]:
    out = io.StringIO()
    report = check_chart(chart, helm, [schemas], out, promtool=promtool)
    return report.ok, out.getvalue()


def test_the_chart_passes(helm: Helm, schemas: SchemaSet, promtool: Promtool) -> None:
    ok, output = run_check(CHART, helm, schemas, promtool)
    assert ok, output
    # ci/full.yaml renders every optional part, and each was validated
    for kind in (
        "ScaledObject 1",
        "TriggerAuthentication 1",
        "ServiceMonitor 2",
        "Ingress 1",
        "PrometheusRule 1",
        "ConfigMap 3",  # the dashboard's
    ):
        assert kind in output
    # ... and its alerts went through promtool, their unit tests too
    assert "== rules ci-full (deploy/helm/meetings/ci/full.yaml): ok (7 rules)" in output.replace(
        str(CHART), "deploy/helm/meetings"
    )
    assert re.search(r"^== rule tests \S*rules-tests/full\.yaml: ok$", output, re.M), output


@pytest.mark.parametrize(
    ("relative", "old", "new", "expected"),
    [
        pytest.param(
            DEPLOYMENT,
            "containerPort: {{ $i.port }}",
            'containerPort: "{{ $i.port }}"',
            "containerPort: '8080' is not of type 'integer'",
            id="string-where-an-integer-belongs",
        ),
        pytest.param(
            DEPLOYMENT,
            "readinessProbe:",
            "readinesProbe:",
            "Additional properties are not allowed ('readinesProbe' was unexpected)",
            id="misspelt-field",
        ),
        pytest.param(
            "templates/pdb.yaml",
            "apiVersion: policy/v1",
            "apiVersion: policy/v1beta1",
            "serves no PodDisruptionBudget in policy/v1beta1",
            id="api-version-not-served",
        ),
        pytest.param(
            "templates/keda.yaml",
            "lagThreshold: {{ $a.lagThreshold | quote }}",
            "lagThreshold: {{ $a.lagThreshold }}",
            "is not of type 'string'",
            id="keda-trigger-metadata-not-a-string",
        ),
        pytest.param(
            DEPLOYMENT,
            "- name: http\n",
            "- name: web\n",
            "named port 'http' is not declared by this container",
            id="probe-on-an-undeclared-port",
        ),
        pytest.param(
            DEPLOYMENT,
            "revisionHistoryLimit: 5",
            "revisionHistoryLimit: 5\n  revisionHistoryLimit: 3",
            "duplicate key 'revisionHistoryLimit'",
            id="duplicate-key",
        ),
        pytest.param(
            "values.yaml",
            "memory: 128Mi}",
            "memory: 128MB}",
            "is not a quantity",
            id="not-a-quantity",
        ),
        pytest.param(
            DEPLOYMENT,
            "{{- if not .Values.autoscaling.ingest.enabled }}",
            "{{- if not .Values.autoscaling.ingest.enabled }",
            "render",
            id="template-syntax-error",
        ),
    ],
)
def test_a_broken_template_fails_the_check(
    chart_copy: Path,
    helm: Helm,
    schemas: SchemaSet,
    relative: str,
    old: str,
    new: str,
    expected: str,
) -> None:
    break_file(chart_copy, relative, old, new)
    ok, output = run_check(chart_copy, helm, schemas)
    assert not ok
    assert "FAIL" in output
    assert expected in output, output
    if relative.startswith("templates/") and expected != "render":
        assert f"from meetings/{relative}" in output, output  # the template at fault


RULES = "templates/prometheusrule.yaml"


@pytest.mark.parametrize(
    ("relative", "old", "new", "expected"),
    [
        pytest.param(
            RULES,
            "[{{ .window }}]) > 0",
            "[{{ .window }}] > 0",
            '"MeetingsProcessorPartitionFailed": could not parse expression',
            id="promql-that-does-not-parse",
        ),
        pytest.param(
            RULES,
            "- alert: MeetingsProcessorLagRising",
            "- alert: MeetingsProcessorDeadLetters",
            "duplicate",
            id="an-alert-name-twice-with-the-same-labels",
        ),
        pytest.param(
            "templates/_helpers.tpl",
            "  or\n  ({{ .series }} unless {{ .series }} offset {{ .window }})\n",
            "",
            "FAILED",
            id="an-alert-its-unit-test-no-longer-sees-fire",
        ),
    ],
)
def test_broken_alerting_rules_fail_the_check(
    chart_copy: Path,
    helm: Helm,
    schemas: SchemaSet,
    promtool: Promtool,
    relative: str,
    old: str,
    new: str,
    expected: str,
) -> None:
    break_file(chart_copy, relative, old, new)
    ok, output = run_check(chart_copy, helm, schemas, promtool)
    assert not ok
    assert expected in output, output
    assert re.search(r"^== rule(s| tests) \S+.*: FAIL", output, re.M), output


def test_rule_tests_for_a_case_the_chart_lacks_fail_the_check(
    chart_copy: Path, helm: Helm, schemas: SchemaSet, promtool: Promtool
) -> None:
    """A rules-tests file whose ci values were renamed would otherwise silently stop running."""
    tests = chart_copy / "rules-tests"
    (tests / "full.yaml").rename(tests / "everything.yaml")
    ok, output = run_check(chart_copy, helm, schemas, promtool)
    assert not ok
    assert "no ci/everything.yaml renders the rules it tests" in output, output


def test_make_chart_fails_on_a_broken_template(
    chart_copy: Path, helm: Helm, promtool: Promtool
) -> None:
    """`make test` runs `make chart`: a broken template stops it with a non-zero status."""
    break_file(chart_copy, DEPLOYMENT, "containerPort: {{ $i.port }}", 'containerPort: "x"')
    done = subprocess.run(
        [
            "make",
            "--no-print-directory",
            "chart",
            f"CHART={chart_copy}",
            f"HELM={helm.binary}",
            f"PROMTOOL={promtool.binary}",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )
    assert done.returncode != 0, done.stdout
    assert "FAIL Deployment/meetings-ingest from meetings/templates/deployment-ingest.yaml" in (
        done.stdout
    )
    assert re.search(r"^chartcheck: \d+ of \d+ steps fail", done.stdout, re.M), done.stdout
