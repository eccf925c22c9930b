"""``helm lint`` and ``helm template``, rendering as a cluster with KEDA and Prometheus operator."""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path

# Announced to helm so that `.Capabilities.APIVersions.Has` checks render these kinds.
CUSTOM_API_VERSIONS = (
    "keda.sh/v1alpha1",
    "keda.sh/v1alpha1/ScaledObject",
    "keda.sh/v1alpha1/TriggerAuthentication",
    "monitoring.coreos.com/v1",
    "monitoring.coreos.com/v1/ServiceMonitor",
    "monitoring.coreos.com/v1/PodMonitor",
    "monitoring.coreos.com/v1/PrometheusRule",
)


@dataclass(frozen=True, slots=True)
class Outcome:
    ok: bool
    output: str


@dataclass(frozen=True, slots=True)
class Helm:
    binary: Path
    release: str = "meetings"
    namespace: str = "meetings"

    def _run(self, *args: str) -> Outcome:
        done = subprocess.run(
            [str(self.binary), *args], capture_output=True, text=True, check=False, timeout=120
        )
        if done.returncode != 0:
            return Outcome(False, done.stderr + done.stdout)
        return Outcome(True, done.stdout)

    def version(self) -> str:
        return self._run("version", "--template", "{{.Version}}").output.strip()

    def lint(self, chart: Path, values: Path | None) -> Outcome:
        """``helm lint --strict``: warnings fail too."""
        outcome = self._run("lint", "--strict", str(chart), *_values_args(values))
        if outcome.ok:
            return outcome
        problems = [
            line
            for line in outcome.output.splitlines()
            if "[ERROR]" in line or "[WARNING]" in line or line.startswith("Error")
        ]
        return Outcome(False, "\n".join(problems[:30]) or outcome.output)

    def template(self, chart: Path, values: Path | None, kube_version: str) -> Outcome:
        api_args = [arg for api in CUSTOM_API_VERSIONS for arg in ("--api-versions", api)]
        return self._run(
            "template", self.release, str(chart), "--namespace", self.namespace,
            *_values_args(values), "--kube-version", f"{kube_version}.0", *api_args,
        )  # fmt: skip


def _values_args(values: Path | None) -> list[str]:
    return ["-f", str(values)] if values is not None else []
