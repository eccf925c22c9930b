"""Rules the API server (or the kubelet) enforces that no OpenAPI schema expresses, and a few
mistakes that only show up as a chart bug: a probe on a port nobody declares, a Service or
PodDisruptionBudget that selects no pod of the chart, an autoscaler aimed at nothing."""

from __future__ import annotations

import json
import re
from collections import Counter
from typing import Any

DNS1123_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
DNS1123_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
DNS1035_LABEL = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")
LABEL_NAME = re.compile(r"^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$")
PORT_NAME = re.compile(r"^[a-z0-9]([a-z0-9-]*[a-z0-9])?$")
QUANTITY = re.compile(
    r"^([+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+))(?:([eE][+-]?[0-9]+)|([KMGTPE]i|[numkMGTPE]))?$"
)
SCALE = {
    "n": 1e-9, "u": 1e-6, "m": 1e-3, "k": 1e3, "M": 1e6, "G": 1e9, "T": 1e12, "P": 1e15,
    "E": 1e18, "Ki": 2.0**10, "Mi": 2.0**20, "Gi": 2.0**30, "Ti": 2.0**40, "Pi": 2.0**50,
    "Ei": 2.0**60,
}  # fmt: skip
PULL_POLICIES = {"Always", "IfNotPresent", "Never"}
PROTOCOLS = {"TCP", "UDP", "SCTP"}
SERVICE_TYPES = {"ClusterIP", "NodePort", "LoadBalancer", "ExternalName"}
WORKLOADS = {"Deployment", "StatefulSet", "DaemonSet", "ReplicaSet"}
SUBDOMAIN_NAMED = WORKLOADS | {
    "ConfigMap", "Secret", "ServiceAccount", "PodDisruptionBudget", "HorizontalPodAutoscaler",
    "NetworkPolicy", "Job", "CronJob", "Ingress", "Pod",
}  # fmt: skip
Obj = dict[str, Any]


def _dict(value: Any) -> Obj:
    return value if isinstance(value, dict) else {}


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def label_errors(where: str, labels: Any) -> list[str]:
    errors = []
    for key, value in _dict(labels).items():
        prefix, _, name = str(key).rpartition("/")
        bad_prefix = bool(prefix) and (len(prefix) > 253 or not DNS1123_SUBDOMAIN.match(prefix))
        if bad_prefix or len(name) > 63 or not LABEL_NAME.match(name):
            errors.append(f"{where}: invalid label key {key!r}")
        if not isinstance(value, str) or (
            value and (len(value) > 63 or not LABEL_NAME.match(value))
        ):
            errors.append(
                f"{where}: invalid value {value!r} for label {key!r} (at most 63 characters: "
                "alphanumerics, '-', '_', '.', beginning and ending alphanumeric)"
            )
    return errors


def port_name_errors(where: str, name: Any) -> list[str]:
    if not isinstance(name, str):
        return []
    if len(name) > 15 or not PORT_NAME.match(name) or "--" in name or not re.search("[a-z]", name):
        return [
            f"{where}: port name {name!r} is not an IANA service name (at most 15 characters, "
            "lower-case alphanumerics and '-', at least one letter)"
        ]
    return []


def quantity(value: Any) -> float | None:
    """A resource quantity's value (``250m`` -> 0.25, ``1Gi`` -> 2**30), None when malformed."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value)
    match = QUANTITY.match(str(value))
    if not match:
        return None
    return float(match.group(1) + (match.group(2) or "")) * SCALE.get(match.group(3) or "", 1.0)


def resource_errors(where: str, resources: Any) -> list[str]:
    errors = []
    parsed: dict[str, dict[str, float]] = {"requests": {}, "limits": {}}
    for section in parsed:
        for name, value in _dict(_dict(resources).get(section)).items():
            amount = quantity(value)
            if amount is None:
                errors.append(
                    f"{where}.resources.{section}.{name}: {value!r} is not a quantity "
                    "(such as 250m, 0.5, 128Mi, 1Gi)"
                )
            else:
                parsed[section][name] = amount
    for name, requested in parsed["requests"].items():
        limit = parsed["limits"].get(name)
        if limit is not None and requested > limit:
            errors.append(f"{where}.resources.requests.{name}: above its limit")
    return errors


def pod_template(obj: Obj) -> Obj | None:
    kind, spec = obj.get("kind"), _dict(obj.get("spec"))
    if kind in WORKLOADS or kind == "Job":
        return _dict(spec.get("template"))
    if kind == "CronJob":
        return _dict(_dict(_dict(spec.get("jobTemplate")).get("spec")).get("template"))
    return None


def _selects(selector: Obj, labels: Obj) -> bool:
    return bool(selector) and all(labels.get(k) == v for k, v in selector.items())


def _container_errors(where: str, container: Obj) -> tuple[list[str], set[str]]:
    errors: list[str] = []
    name = container.get("name")
    if not isinstance(name, str) or len(name) > 63 or not DNS1123_LABEL.match(name):
        errors.append(f"{where}.name: {name!r} is not a DNS-1123 label")
    errors += resource_errors(where, container.get("resources"))
    policy = container.get("imagePullPolicy", "IfNotPresent")
    if policy not in PULL_POLICIES:
        errors.append(f"{where}.imagePullPolicy: {policy!r} is not one of {sorted(PULL_POLICIES)}")
    declared: set[str] = set()
    for j, port in enumerate(_list(container.get("ports"))):
        port = _dict(port)
        errors += port_name_errors(f"{where}.ports.{j}", port.get("name"))
        if port.get("protocol", "TCP") not in PROTOCOLS:
            errors.append(f"{where}.ports.{j}.protocol: {port.get('protocol')!r} is not a protocol")
        if isinstance(port.get("name"), str):
            declared.add(port["name"])
    for probe in ("livenessProbe", "readinessProbe", "startupProbe"):
        for action in ("httpGet", "tcpSocket", "grpc"):
            target = _dict(_dict(container.get(probe)).get(action)).get("port")
            if isinstance(target, str) and target not in declared:
                errors.append(
                    f"{where}.{probe}.{action}.port: named port {target!r} is not declared by "
                    "this container (the probe could never succeed)"
                )
    return errors, declared


def _pod_errors(obj: Obj, template: Obj) -> list[str]:
    kind, spec = obj.get("kind"), _dict(obj.get("spec"))
    labels = _dict(_dict(template.get("metadata")).get("labels"))
    errors = label_errors("spec.template.metadata.labels", labels)
    if kind in WORKLOADS:
        selector = _dict(spec.get("selector"))
        match_labels = _dict(selector.get("matchLabels"))
        errors += label_errors("spec.selector.matchLabels", match_labels)
        if not match_labels and not selector.get("matchExpressions"):
            errors.append("spec.selector: empty (apps/v1 needs a selector)")
        elif match_labels and not _selects(match_labels, labels):
            errors.append("spec.selector.matchLabels: does not match spec.template.metadata.labels")
    pod = _dict(template.get("spec"))
    names: Counter[str] = Counter()
    ports: Counter[str] = Counter()
    for section in ("initContainers", "containers"):
        for i, container in enumerate(_list(pod.get(section))):
            container = _dict(container)
            found, declared = _container_errors(f"spec.template.spec.{section}.{i}", container)
            errors += found
            names[str(container.get("name"))] += 1
            ports.update(declared)
    if kind in WORKLOADS and pod.get("restartPolicy", "Always") != "Always":
        errors.append(f"spec.template.spec.restartPolicy: must be Always for a {kind}")
    for what, counts in (("container name", names), ("port name", ports)):
        errors += [
            f"spec.template.spec: {what} {n!r} used twice" for n, k in counts.items() if k > 1
        ]
    return errors


def _service_errors(spec: Obj, pod_labels: list[Obj]) -> list[str]:
    errors = []
    ports = [_dict(p) for p in _list(spec.get("ports"))]
    if len(ports) > 1 and not all(p.get("name") for p in ports):
        errors.append("spec.ports: every port needs a name when there are several")
    if spec.get("type", "ClusterIP") not in SERVICE_TYPES:
        errors.append(f"spec.type: {spec.get('type')!r} is not a Service type")
    for j, port in enumerate(ports):
        errors += port_name_errors(f"spec.ports.{j}", port.get("name"))
        errors += port_name_errors(f"spec.ports.{j}.targetPort", port.get("targetPort"))
        if port.get("protocol", "TCP") not in PROTOCOLS:
            errors.append(f"spec.ports.{j}.protocol: {port.get('protocol')!r} is not a protocol")
    selector = _dict(spec.get("selector"))
    routed = selector and spec.get("type") != "ExternalName"
    if routed and not any(_selects(selector, labels) for labels in pod_labels):
        errors.append("spec.selector: selects no pod template rendered by this chart")
    return errors


def _scaler_errors(kind: str, spec: Obj, everything: list[Obj]) -> list[str]:
    errors = []
    low, high = ("minReplicas", "maxReplicas")
    if kind == "ScaledObject":
        low, high = ("minReplicaCount", "maxReplicaCount")
    if (
        isinstance(spec.get(low), int)
        and isinstance(spec.get(high), int)
        and spec[low] > spec[high]
    ):
        errors.append(f"spec.{low}: above spec.{high}")
    ref = _dict(spec.get("scaleTargetRef"))
    target = ref.get("kind", "Deployment")
    if not any(
        o.get("kind") == target and _dict(o.get("metadata")).get("name") == ref.get("name")
        for o in everything
    ):
        errors.append(f"spec.scaleTargetRef: no {target} named {ref.get('name')!r} is rendered")
    return errors


def semantic_errors(obj: Obj, everything: list[Obj]) -> list[str]:
    """What is wrong with ``obj`` beyond its schema; ``everything`` is the whole render."""
    kind = str(obj.get("kind"))
    meta = _dict(obj.get("metadata"))
    name = meta.get("name")
    if not isinstance(name, str) or not name:
        return ["metadata.name: missing"]
    errors = []
    if kind == "Service" and (len(name) > 63 or not DNS1035_LABEL.match(name)):
        errors.append(f"metadata.name: {name!r} is not a DNS-1035 label (at most 63 characters)")
    elif kind in SUBDOMAIN_NAMED and (len(name) > 253 or not DNS1123_SUBDOMAIN.match(name)):
        errors.append(f"metadata.name: {name!r} is not a DNS-1123 subdomain")
    errors += label_errors("metadata.labels", meta.get("labels"))
    spec = _dict(obj.get("spec"))
    templates = [t for t in map(pod_template, everything) if t is not None]
    pod_labels = [_dict(_dict(t.get("metadata")).get("labels")) for t in templates]
    template = pod_template(obj)
    if template is not None:
        errors += _pod_errors(obj, template)
    if kind == "Service":
        errors += _service_errors(spec, pod_labels)
    if kind == "PodDisruptionBudget":
        if "minAvailable" in spec and "maxUnavailable" in spec:
            errors.append("spec: minAvailable and maxUnavailable cannot both be set")
        selector = _dict(_dict(spec.get("selector")).get("matchLabels"))
        if selector and not any(_selects(selector, labels) for labels in pod_labels):
            errors.append("spec.selector: selects no pod template rendered by this chart")
    if kind in ("HorizontalPodAutoscaler", "ScaledObject"):
        errors += _scaler_errors(kind, spec, everything)
    if kind == "ConfigMap":
        errors += _json_data_errors(obj)
    return errors


def _json_data_errors(configmap: Obj) -> list[str]:
    """A ``*.json`` key must hold JSON: its reader (a Grafana dashboard sidecar, say) would
    otherwise skip it with no more than a log line."""
    errors = []
    for key, value in _dict(configmap.get("data")).items():
        if str(key).endswith(".json"):
            try:
                json.loads(str(value))
            except ValueError as exc:
                errors.append(f"data.{key}: not valid JSON ({exc})")
    return errors
