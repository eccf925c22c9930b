"""The chart's alerts and dashboard: off unless asked for, every alert linked to its section of
the operations guide, scoped to the callback routes, the dashboard shipped as the file it is and
its queries valid PromQL. (That the metrics they name exist: ``test_metric_names``.)"""

from __future__ import annotations

import json
import re
import subprocess
import tarfile
from pathlib import Path

import pytest

from ingest.routes import CALLBACK_ROUTES, VIDEO_ROUTES
from tests.markdown import anchors_of
from tools.chartcheck import SchemaSet
from tools.chartcheck.helm import Helm
from tools.chartcheck.promtool import Promtool

from .conftest import CHART, DASHBOARD, FULL, ROOT, Render
from .promql import alert_rules, dashboard_queries
from .rendered import one

RUNBOOK = FULL["prometheusRule"]["runbookBaseUrl"]
# The headings of docs/operations.md the alerts link to, one alert each.
ANCHORS = {
    "#lag-rising",
    "#dlq-filling",
    "#a-partition-failed",
    "#processor-not-ready",
    "#ingest-answering-503",
    "#ingest-5xx",
    "#no-callbacks-arriving",
}
# The panels the dashboard promises (the operations guide refers to them by title).
PANELS = {
    "Callbacks in",
    "Responses",
    "Kafka acknowledgement latency",
    "Lag per partition",
    "Records processed",
    "Commit latency",
    "Dead-lettered records",
    "Restore time",
    "Sessions in memory",
}


def test_alerts_and_dashboard_are_off_by_default(render: Render) -> None:
    rendered = render({})
    assert not [r for r in rendered if r.kind == "PrometheusRule"]
    assert not [r for r in rendered if r.kind == "ConfigMap" and r.name.endswith("-dashboard")]


def test_every_alert_links_its_section_of_the_operations_guide(render: Render) -> None:
    rendered = render(FULL)
    rule = one(rendered, "PrometheusRule", "meetings")
    assert rule["metadata"]["labels"]["release"] == "prometheus"  # prometheusRule.labels
    found = alert_rules(rendered)
    assert len(found) == len(ANCHORS)
    anchors = []
    for alert in found:
        annotations = alert["annotations"]
        assert {"summary", "description", "runbook_url"} <= annotations.keys(), alert["alert"]
        assert annotations["summary"].strip()
        assert annotations["description"].strip()
        base, anchor = annotations["runbook_url"].split("#")
        assert base == RUNBOOK
        anchors.append(f"#{anchor}")
        assert alert["labels"]["severity"] in ("warning", "critical")
        assert alert["labels"]["team"] == "meetings"  # prometheusRule.alertLabels
    assert sorted(anchors) == sorted(ANCHORS)


def test_every_runbook_anchor_is_a_heading_of_the_operations_guide() -> None:
    headings = {f"#{anchor}" for anchor in anchors_of(ROOT / "docs" / "operations.md")}
    assert headings >= ANCHORS, sorted(ANCHORS - headings)


def test_thresholds_selectors_and_switches_come_from_the_values(render: Render) -> None:
    rendered = render(
        {
            **FULL,
            "prometheusRule": {
                **FULL["prometheusRule"],
                "processorSelector": 'app="p-{{ .Release.Name }}"',
                "alerts": {
                    "lagRising": {"threshold": 123, "for": "7m", "severity": "page"},
                    "noCallbacks": {"minutes": 90},
                    "ingest5xx": {"enabled": False},
                },
            },
        }
    )
    by_name = {alert["alert"]: alert for alert in alert_rules(rendered)}
    assert "MeetingsIngestServerErrors" not in by_name
    lag = by_name["MeetingsProcessorLagRising"]
    assert 'processor_consumer_lag{app="p-meetings"}) > 123' in lag["expr"]
    assert (lag["for"], lag["labels"]["severity"]) == ("7m", "page")
    assert "[90m]" in by_name["MeetingsNoCallbacks"]["expr"]


def test_alerts_on_callbacks_count_only_the_callback_routes(render: Render) -> None:
    """ingest_requests_total counts the probes and /metrics too: a readiness probe answered 503
    while a pod drains is not a callback refused."""
    alerts = alert_rules(render(FULL))
    expressions = [alert["expr"] for alert in alerts]
    regexes = {m for e in expressions for m in re.findall(r'route=~"([^"]+)"', e)}
    assert len(regexes) == 1
    # PromQL regexes are RE2 and anchored at both ends; this one is plain enough for Python's.
    routes = re.compile(f"^(?:{regexes.pop()})$")
    for route in (*CALLBACK_ROUTES, *VIDEO_ROUTES):
        assert routes.match(route), route
    for other in ("/healthz", "/readyz", "/metrics", "unparsed", "/callbacksx", "/video"):
        assert not routes.match(other), other
    by_alert = {alert["alert"]: alert["expr"] for alert in alerts}
    for name in ("MeetingsIngestAnswering503", "MeetingsNoCallbacks"):
        assert all(
            "route=~" in selector
            for selector in re.findall(r"ingest_requests_total\{[^}]*\}", by_alert[name])
        ), name


def test_the_dashboard_ships_as_the_file_for_the_grafana_sidecar(render: Render) -> None:
    rendered = render(
        {
            "grafanaDashboard": {
                "enabled": True,
                "labels": {"team": "meetings"},
                "annotations": {"grafana_folder": "Meetings"},
            }
        }
    )
    configmap = one(rendered, "ConfigMap", "meetings-dashboard")
    assert configmap["metadata"]["labels"]["grafana_dashboard"] == "1"
    assert configmap["metadata"]["labels"]["team"] == "meetings"
    assert configmap["metadata"]["annotations"] == {"grafana_folder": "Meetings"}
    assert configmap["data"] == {"meetings.json": DASHBOARD.read_text().rstrip("\n")}
    other = render(
        {
            "grafanaDashboard": {
                "enabled": True,
                "labelKey": "example.com/dashboard",
                "labelValue": "yes",
                "namespace": "monitoring",
            }
        }
    )
    moved = one(other, "ConfigMap", "meetings-dashboard")
    assert moved["metadata"]["namespace"] == "monitoring"
    assert moved["metadata"]["labels"]["example.com/dashboard"] == "yes"
    assert "grafana_dashboard" not in moved["metadata"]["labels"]


def test_the_packaged_chart_has_the_dashboard_and_not_the_rule_tests(
    helm: Helm, tmp_path: Path
) -> None:
    """.helmignore decides what `helm package` (and so .Files.Get in an installed chart) sees."""
    done = subprocess.run(
        [str(helm.binary), "package", str(CHART), "--destination", str(tmp_path)],
        capture_output=True, text=True, check=False, timeout=60,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    (package,) = tmp_path.glob("*.tgz")
    with tarfile.open(package) as archive:
        names = set(archive.getnames())
    assert "meetings/dashboards/meetings.json" in names
    assert not [name for name in names if "/rules-tests/" in name or "/ci/" in name]


def test_the_dashboard_has_its_panels_and_a_datasource_variable() -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"
    titles = {p["title"] for p in dashboard["panels"] if p["type"] != "row"}
    assert titles >= PANELS, PANELS - titles
    ids = [p["id"] for p in dashboard["panels"]]
    assert len(ids) == len(set(ids))
    for panel in dashboard["panels"]:
        if panel["type"] == "row":
            continue
        assert panel["datasource"]["uid"] == "${datasource}", panel["title"]
        for target in panel["targets"]:
            assert target["datasource"]["uid"] == "${datasource}", panel["title"]
            assert 'namespace="$namespace"' in target["expr"], panel["title"]
    for variable in dashboard["templating"]["list"]:
        if variable["type"] == "query":
            assert variable["datasource"]["uid"] == "${datasource}", variable["name"]


def test_the_dashboard_queries_are_promql(promtool: Promtool) -> None:
    """promtool parses each query as the expression of a recording rule, with Grafana's
    variables replaced by what Grafana would put there."""
    replacements = {
        "$__rate_interval": "1m",
        "$namespace": "meetings",
        "$ingest_job": "meetings-ingest",
        "$processor_job": "meetings-processor",
    }
    rules = []
    for i, (_, query) in enumerate(dashboard_queries(DASHBOARD)):
        for variable, value in replacements.items():
            query = query.replace(variable, value)
        assert "$" not in query, f"a variable the dashboard does not define: {query}"
        rules.append({"record": f"dashboard:query_{i}", "expr": query})
    outcome = promtool.check_rules([{"name": "dashboard", "rules": rules}])
    assert outcome.ok, outcome.output


@pytest.mark.parametrize("metric", ["ingest_requests_total", "processor_consumer_lag"])
def test_the_dashboard_and_the_alerts_select_by_the_same_labels(
    render: Render, metric: str
) -> None:
    """The default selectors (namespace, job) are what the dashboard's variables choose."""
    alerts = alert_rules(render(FULL))
    expressions = [alert["expr"] for alert in alerts]
    selectors = {s for e in expressions for s in re.findall(rf"{metric}\{{([^}}]*)\}}", e)}
    assert selectors
    for selector in selectors:
        assert re.match(r'namespace="meetings", job="meetings-(ingest|processor)"', selector)


@pytest.mark.parametrize(
    ("off", "groups"),
    [
        (["lagRising", "dlqFilling", "partitionFailed", "processorNotReady"], ["meetings-ingest"]),
        (["ingest503", "ingest5xx", "noCallbacks"], ["meetings-processor"]),
        (["lagRising", "dlqFilling", "partitionFailed", "processorNotReady", "ingest503",
          "ingest5xx", "noCallbacks"], []),
    ],
)  # fmt: skip
def test_a_group_whose_alerts_are_all_off_is_left_out(
    render: Render, schemas: SchemaSet, off: list[str], groups: list[str]
) -> None:
    """The CRD refuses a group without rules."""
    alerts = {name: {"enabled": False} for name in off}
    rendered = render({"prometheusRule": {**FULL["prometheusRule"], "alerts": alerts}})
    rule = one(rendered, "PrometheusRule", "meetings")
    assert [group["name"] for group in rule["spec"]["groups"]] == groups
    assert schemas.errors(rule) == ("the PrometheusRule CRD", [])
