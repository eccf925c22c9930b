"""The chart check's own rules, on hand-written objects (no helm needed)."""

from __future__ import annotations

from typing import Any

import pytest

from tools.chartcheck import load_manifests, semantic_errors
from tools.chartcheck.manifests import ManifestError
from tools.chartcheck.rules import label_errors, port_name_errors, quantity


@pytest.mark.parametrize(
    ("text", "value"),
    [("250m", 0.25), ("1", 1.0), ("0.5", 0.5), ("128Mi", 128 * 2**20), ("1G", 1e9), ("2e3", 2e3)],
)
def test_quantities(text: str, value: float) -> None:
    assert quantity(text) == pytest.approx(value)


@pytest.mark.parametrize("text", ["256MB", "1 Gi", "", "Mi", "1.2.3"])
def test_not_quantities(text: str) -> None:
    assert quantity(text) is None


def test_label_and_port_names() -> None:
    assert label_errors("l", {"app.kubernetes.io/name": "meetings", "team": ""}) == []
    assert label_errors("l", {"-bad": "x"}) == ["l: invalid label key '-bad'"]
    assert "invalid value" in label_errors("l", {"a": "x" * 64})[0]
    assert port_name_errors("p", "metrics") == []
    assert port_name_errors("p", "processor-metrics")  # 17 characters
    assert port_name_errors("p", "8080")  # needs a letter


def deployment(labels: dict[str, str], selector: dict[str, str]) -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "d"},
        "spec": {
            "selector": {"matchLabels": selector},
            "template": {
                "metadata": {"labels": labels},
                "spec": {
                    "containers": [
                        {
                            "name": "c",
                            "ports": [{"name": "http", "containerPort": 80}],
                            "resources": {"requests": {"cpu": "2"}, "limits": {"cpu": "1"}},
                        }
                    ]
                },
            },
        },
    }


def test_workload_and_service_rules() -> None:
    broken = deployment({"app": "a"}, {"app": "b"})
    service = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "Svc"},
        "spec": {"selector": {"app": "b"}, "ports": [{"port": 80}]},
    }
    errors = semantic_errors(broken, [broken, service])
    assert "spec.selector.matchLabels: does not match spec.template.metadata.labels" in errors
    assert "spec.template.spec.containers.0.resources.requests.cpu: above its limit" in errors
    service_errors = semantic_errors(service, [broken, service])
    assert "metadata.name: 'Svc' is not a DNS-1035 label (at most 63 characters)" in service_errors
    assert "spec.selector: selects no pod template rendered by this chart" in service_errors


def test_rendered_text_names_its_template_and_refuses_duplicate_keys() -> None:
    text = "---\n# Source: meetings/templates/a.yaml\nkind: A\nmetadata: {name: a}\n"
    (rendered,) = load_manifests(text)
    assert (rendered.source, rendered.label) == ("meetings/templates/a.yaml", "A/a")
    with pytest.raises(ManifestError, match=r"duplicate key 'kind'.*meetings/templates/b.yaml"):
        load_manifests("---\n# Source: meetings/templates/b.yaml\nkind: A\nkind: B\n")


def test_a_json_key_of_a_configmap_must_hold_json() -> None:
    """A Grafana sidecar skips a dashboard that does not parse, with a log line nobody reads."""
    configmap = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "dashboards"},
        "data": {"good.json": '{"panels": []}', "bad.json": '{"panels": [}', "notes.txt": "{"},
    }
    (error,) = semantic_errors(configmap, [configmap])
    assert error.startswith("data.bad.json: not valid JSON")
