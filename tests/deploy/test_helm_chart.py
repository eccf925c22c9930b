"""What the chart promises: settings the services accept, secrets never rendered, topics made by
a hook Job, processors bounded by the partition count, locked-down pods."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from ingest.routes import CALLBACK_ROUTES, VIDEO_ROUTES
from ingest.settings import IngestSettings
from ingest.settings import load_settings as load_ingest_settings
from processor.settings import ProcessorSettings
from processor.settings import load_settings as load_processor_settings
from servicekit.settings import declared
from tools.chartcheck import Rendered
from tools.chartcheck.helm import Helm

from .conftest import CHART, FULL, Render
from .rendered import container, container_environment, one

SECRET_VARIABLES = {
    "INGEST_AUTH_TOKEN",
    "INGEST_JWT_SECRET",
    "INGEST_VIDEO_SESSIONS_SECRET",
    "INGEST_VIDEO_ARCHIVES_SECRET",
    "KAFKA_SASL_PASSWORD",
    "KAFKA_SSL_KEY_PASSWORD",
}
# What ci/full.yaml's Secret keys hold, where a value matters.
SECRET_VALUES = {"kafka-key-password": "client-key-secret"}


def environment(rendered: list[Rendered], component: str) -> dict[str, str]:
    deployment = one(rendered, "Deployment", f"meetings-{component}")
    return container_environment(rendered, deployment, SECRET_VALUES)


def test_the_configuration_is_valid_for_the_services(render: Render) -> None:
    rendered = render({})
    ingest_env = environment(rendered, "ingest")
    processor_env = environment(rendered, "processor")
    ingest = load_ingest_settings(ingest_env)
    processor = load_processor_settings(processor_env)
    ingest_container = container(one(rendered, "Deployment", "meetings-ingest"))
    processor_container = container(one(rendered, "Deployment", "meetings-processor"))
    assert {p["name"]: p["containerPort"] for p in ingest_container["ports"]}["http"] == ingest.port
    assert processor_container["ports"][0]["containerPort"] == processor.http_port
    assert processor.create_topics is False
    grace = one(rendered, "Deployment", "meetings-ingest")["spec"]["template"]["spec"][
        "terminationGracePeriodSeconds"
    ]
    pause = int(ingest_container["lifecycle"]["preStop"]["exec"]["command"][1])
    assert grace > pause + ingest.drain_delay_s + ingest.shutdown_timeout_s
    assert ingest.drain_delay_s >= ingest_container["readinessProbe"]["periodSeconds"]


@pytest.mark.parametrize("component", ["ingest", "processor"])
def test_every_variable_the_chart_sets_is_read_by_the_service(
    render: Render, component: str
) -> None:
    rendered = render(FULL)
    env = environment(rendered, component)
    loader = load_ingest_settings if component == "ingest" else load_processor_settings
    loader(env)  # the chart's values are valid settings
    settings_class = IngestSettings if component == "ingest" else ProcessorSettings
    unknown = set(env) - {declaration.spec.env for declaration in declared(settings_class)}
    assert not unknown, f"the chart sets variables {component} never reads: {sorted(unknown)}"


def test_secrets_come_from_the_existing_secret_and_are_never_rendered(render: Render) -> None:
    rendered = render(FULL)
    assert not [r for r in rendered if r.kind == "Secret"]
    for configmap in (r.obj for r in rendered if r.kind == "ConfigMap"):
        assert not SECRET_VARIABLES & set(configmap["data"])
    for workload in (r for r in rendered if r.kind in ("Deployment", "Job")):
        for entry in container(workload.obj).get("env", []):
            if entry["name"] in SECRET_VARIABLES:
                assert entry["valueFrom"]["secretKeyRef"]["name"] == "meetings-secrets"


def test_each_video_route_has_its_signature_secret(render: Render) -> None:
    """Vonage signs each callback type with its own secret: one key each in the Secret."""
    ingest = container(one(render(FULL), "Deployment", "meetings-ingest"))
    keys = {
        entry["name"]: entry["valueFrom"]["secretKeyRef"]["key"]
        for entry in ingest["env"]
        if "valueFrom" in entry
    }
    assert keys["INGEST_VIDEO_SESSIONS_SECRET"] == "video-sessions-secret"
    assert keys["INGEST_VIDEO_ARCHIVES_SECRET"] == "video-archives-secret"


def test_topics_are_made_by_a_hook_job_not_by_the_processor(render: Render) -> None:
    rendered = render({"topics": {"partitions": 24, "replicationFactor": 3}})
    job = one(rendered, "Job", "meetings-topics")
    assert job["metadata"]["annotations"]["helm.sh/hook"] == "pre-install,pre-upgrade"
    spec = container(job)
    assert spec["command"][:4] == ["python", "-m", "processor", "topics"]
    env = {e["name"]: e.get("value") for e in spec["env"]}
    settings = load_processor_settings({k: v for k, v in env.items() if v is not None})
    assert (settings.topic_partitions, settings.topic_replication_factor) == (24, 3)
    assert environment(rendered, "processor")["PROCESSOR_CREATE_TOPICS"] == "false"


def test_compaction_values_reach_the_topics_job_and_the_processor(render: Render) -> None:
    compaction = {
        "segmentMs": 120_000,
        # Large enough that a float printed as is would read 3.3554432e+07.
        "segmentBytes": 33_554_432,
        "minCleanableDirtyRatio": 0.2,
        "deleteRetentionMs": 7_200_000,
    }
    rendered = render({"topics": {"compaction": compaction}})
    job_env = {
        e["name"]: e.get("value") for e in container(one(rendered, "Job", "meetings-topics"))["env"]
    }
    for env in (
        {k: v for k, v in job_env.items() if v is not None},
        environment(rendered, "processor"),
    ):
        settings = load_processor_settings(env)
        assert (
            settings.changelog_segment_ms,
            settings.changelog_segment_bytes,
            settings.changelog_min_cleanable_dirty_ratio,
            settings.changelog_delete_retention_ms,
        ) == (120_000, 33_554_432, 0.2, 7_200_000)
    # Left at null, the processor's defaults apply: nothing is rendered.
    defaults = environment(render({}), "processor")
    assert not [name for name in defaults if name.startswith("CHANGELOG_")]


def test_a_replay_job_runs_only_when_enabled_with_the_processors_settings(
    render: Render,
) -> None:
    assert not [r for r in render({}) if r.kind == "Job" and "replay" in r.name]
    rendered = render(
        {"replay": {"enabled": True, "toPrefix": "Replay_2026.12.", "fromTime": "1700000000000"}}
    )
    job = one(rendered, "Job", "meetings-replay-replay-2026-12")
    assert "helm.sh/hook" not in job["metadata"].get("annotations", {})  # not on every upgrade
    spec = container(job)
    assert spec["command"] == [
        "python", "-m", "processor", "replay", "--to-prefix", "Replay_2026.12.",
        "--report-every", "30", "--from-time", "1700000000000",
    ]  # fmt: skip
    assert spec["envFrom"] == [{"configMapRef": {"name": "meetings-processor"}}]
    assert job["spec"]["template"]["spec"]["restartPolicy"] == "Never"


def test_keda_scales_on_the_group_lag_up_to_the_partition_count(render: Render) -> None:
    rendered = render(
        {
            "topics": {"partitions": 16, "prefix": "x."},
            "processor": {"groupId": "g1"},
            "autoscaling": {"processor": {"enabled": True}},
        }
    )
    scaled = one(rendered, "ScaledObject", "meetings-processor")
    assert scaled["spec"]["maxReplicaCount"] == 16
    trigger = scaled["spec"]["triggers"][0]
    assert trigger["type"] == "kafka"
    assert trigger["metadata"]["topic"] == "x.callbacks.raw"
    assert trigger["metadata"]["consumerGroup"] == "g1"
    assert trigger["metadata"]["allowIdleConsumers"] == "false"
    assert "replicas" not in one(rendered, "Deployment", "meetings-processor")["spec"]


@pytest.mark.parametrize(
    ("values", "message"),
    [
        (
            {"autoscaling": {"processor": {"enabled": True, "maxReplicas": 13}}},
            "autoscaling.processor.maxReplicas (13) exceeds topics.partitions (12)",
        ),
        ({"processor": {"replicas": 13}}, "processor.replicas (13) exceeds topics.partitions"),
        (
            {"ingest": {"terminationGracePeriodSeconds": 20}},
            "ingest.terminationGracePeriodSeconds (20) must exceed",
        ),
        ({"ingest": {"drainDelaySeconds": 1}}, "must be at least the readiness probe's"),
        (
            {"ingest": {"produceTimeoutSeconds": 30}},
            "ingest.shutdownTimeoutSeconds (20) must be at least produceTimeoutSeconds (30)",
        ),
        (
            {"kafka": {"securityProtocol": "SASL_SSL", "sasl": {"username": "u"}}},
            "needs secrets.existingSecret and secrets.keys.kafkaSaslPassword",
        ),
        ({"ingest": {"env": {"INGEST_AUTH_TOKEN": "t" * 20}}}, "INGEST_AUTH_TOKEN is a secret"),
        (
            {"ingest": {"env": {"INGEST_VIDEO_ARCHIVES_SECRET": "t" * 20}}},
            "INGEST_VIDEO_ARCHIVES_SECRET is a secret",
        ),
        ({"autoscalling": {}}, "additional properties 'autoscalling' not allowed"),
        ({"replay": {"enabled": True}}, "replay.toPrefix is required with replay.enabled"),
        # No repository address ships with the chart: a default would link nowhere.
        (
            {"prometheusRule": {"enabled": True}},
            "prometheusRule.runbookBaseUrl: set it to where docs/operations.md is published",
        ),
        (
            {"replay": {"enabled": True, "toPrefix": "meetings."}},
            'replay.toPrefix "meetings." is topics.prefix',
        ),
    ],
)
def test_the_chart_refuses_values_that_cannot_work(
    helm: Helm, tmp_path: Path, values: dict[str, Any], message: str
) -> None:
    path = tmp_path / "values.yaml"
    path.write_text(yaml.safe_dump(values))
    outcome = helm.template(CHART, path, "1.37")
    assert not outcome.ok
    assert message in outcome.output


def test_every_pod_is_locked_down(render: Render) -> None:
    rendered = render(FULL)
    pods = [r.obj["spec"]["template"]["spec"] for r in rendered if r.kind in ("Deployment", "Job")]
    pods += [r.obj["spec"] for r in rendered if r.kind == "Pod"]  # `helm test`
    assert len(pods) == 5  # ingest, processor, the topics and replay Jobs, the helm test
    for pod in pods:
        assert pod["securityContext"]["runAsUser"] == 10001  # the image's user is a name
        assert pod["securityContext"]["runAsNonRoot"] is True
        assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
        assert pod["automountServiceAccountToken"] is False
        (spec,) = pod["containers"]
        assert spec["securityContext"]["readOnlyRootFilesystem"] is True
        assert spec["securityContext"]["allowPrivilegeEscalation"] is False
        assert spec["securityContext"]["capabilities"] == {"drop": ["ALL"]}
        assert spec["resources"]["limits"]["memory"]
    for workload in (r.obj for r in rendered if r.kind in ("Deployment", "Job")):
        mounts = {m["mountPath"] for m in container(workload)["volumeMounts"]}
        assert "/tmp" in mounts  # the one writable place (ingest workers keep metrics there)


def test_the_ingress_exposes_only_the_callback_routes(render: Render) -> None:
    rendered = render(FULL)
    ingress = one(rendered, "Ingress", "meetings-ingest")
    paths = [p["path"] for rule in ingress["spec"]["rules"] for p in rule["http"]["paths"]]
    assert paths == ["/callbacks", *VIDEO_ROUTES]
    # Prefix paths match whole path segments: every callback route is reached, nothing else.
    for route in (*CALLBACK_ROUTES, *VIDEO_ROUTES):
        assert any(route == path or route.startswith(path + "/") for path in paths), route
    service = one(rendered, "Service", "meetings-ingest")
    assert [p["name"] for p in service["spec"]["ports"]] == ["http", "metrics"]


@pytest.mark.parametrize("metrics_port", [9090, None])
def test_the_network_policy_lets_callers_and_scrapers_in_and_the_pods_reach_kafka(
    render: Render, metrics_port: int | None
) -> None:
    callers = [{"ipBlock": {"cidr": "10.0.0.0/8"}}]
    scrapers = [{"podSelector": {"matchLabels": {"app": "prometheus"}}}]
    rendered = render(
        {
            "ingest": {"metricsPort": metrics_port},
            "networkPolicy": {"enabled": True, "ingestFrom": callers, "metricsFrom": scrapers},
        }
    )
    test_pod = {
        "app.kubernetes.io/name": "meetings",
        "app.kubernetes.io/instance": "meetings",
        "app.kubernetes.io/component": "test",
    }
    pod_labels = one(rendered, "Pod", "meetings-test-readiness")["metadata"]["labels"]
    assert test_pod.items() <= pod_labels.items()
    tests = [{"podSelector": {"matchLabels": test_pod}}]
    rules = one(rendered, "NetworkPolicy", "meetings-ingest")["spec"]["ingress"]
    allowed = {rule["ports"][0]["port"]: rule["from"] for rule in rules}
    if metrics_port is None:  # one port: both may call it, and `helm test`
        assert allowed == {"http": callers + scrapers + tests}
    else:
        assert allowed == {"http": callers + tests, "metrics": scrapers}
    processor = one(rendered, "NetworkPolicy", "meetings-processor")["spec"]["ingress"]
    assert [rule["from"] for rule in processor] == [scrapers + tests]
    for component in ("ingest", "processor"):
        egress = one(rendered, "NetworkPolicy", f"meetings-{component}")["spec"]["egress"]
        assert [p["port"] for p in egress[0]["ports"]] == [9092, 9093]
        assert {p["port"] for p in egress[1]["ports"]} == {53}


def test_one_image_for_every_pod_pinned_by_digest_when_given(render: Render) -> None:
    digest = "sha256:" + "ab" * 32
    rendered = render(
        {"image": {"repository": "r.example/meetings", "tag": "1.2", "digest": digest}}
    )
    images = {
        c["image"]
        for r in rendered
        if r.kind in ("Deployment", "Job")
        for c in r.obj["spec"]["template"]["spec"]["containers"]
    }
    assert images == {f"r.example/meetings@{digest}"}
    commands = [
        container(one(rendered, "Deployment", f"meetings-{c}"))["command"]
        for c in ("ingest", "processor")
    ]
    assert commands == [["python", "-m", "ingest"], ["python", "-m", "processor"]]
