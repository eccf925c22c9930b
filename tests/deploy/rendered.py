"""Reading a rendered chart the way the kubelet would hand it to a container."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from tools.chartcheck import Rendered

TLS = Path(__file__).parent.parent / "fixtures" / "tls"
TLS_MOUNT = "/etc/meetings/kafka-tls/"
# Stand-ins for the Kafka TLS Secret's files, by key (the chart's default key names).
TLS_FILES = {"ca.crt": TLS / "ca.crt", "tls.crt": TLS / "client.crt", "tls.key": TLS / "client.key"}


def one(rendered: list[Rendered], kind: str, name: str) -> dict[str, Any]:
    found = [r.obj for r in rendered if r.kind == kind and r.name == name]
    assert len(found) == 1, f"{kind}/{name}: rendered {len(found)} times"
    return found[0]


def container(workload: dict[str, Any]) -> dict[str, Any]:
    containers = workload["spec"]["template"]["spec"]["containers"]
    assert len(containers) == 1
    result: dict[str, Any] = containers[0]
    return result


def container_environment(
    rendered: list[Rendered], workload: dict[str, Any], secrets: Mapping[str, str]
) -> dict[str, str]:
    """What the workload's container sees: its ConfigMaps, then its env, each Secret value taken
    from ``secrets`` by key ('x' * 32 when absent) and the TLS mount's files from TLS_FILES."""
    spec = container(workload)
    env: dict[str, str] = {}
    for source in spec.get("envFrom", []):
        env |= one(rendered, "ConfigMap", source["configMapRef"]["name"])["data"]
    for entry in spec.get("env", []):
        if "value" in entry:
            env[entry["name"]] = entry["value"]
        else:
            env[entry["name"]] = secrets.get(entry["valueFrom"]["secretKeyRef"]["key"], "x" * 32)
    for name, value in env.items():
        if value.startswith(TLS_MOUNT):
            env[name] = str(TLS_FILES[value.removeprefix(TLS_MOUNT)])
    return env
