"""The container engine and compose client the container tests drive, whichever is installed.

Compose: ``docker compose`` (v2 plugin), else ``docker-compose`` (v1, which also drives podman's
Docker-compatible API). Engine state (health, leftovers) is read from the Docker Engine API on
``DOCKER_HOST`` (default ``unix:///var/run/docker.sock``), which Docker and podman both serve.
"""

from __future__ import annotations

import http.client
import json
import os
import shutil
import socket
import subprocess
import urllib.parse
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

DEFAULT_DOCKER_HOST = "unix:///var/run/docker.sock"


class EngineMissing(Exception):
    """What is missing to run the container tests, and how to get it."""


class _UnixConnection(http.client.HTTPConnection):
    def __init__(self, path: str, timeout: float) -> None:
        super().__init__("localhost", timeout=timeout)
        self._path = path

    def connect(self) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(self.timeout)
        self.sock.connect(self._path)


@dataclass(frozen=True)
class Engine:
    """A minimal Docker Engine API client (the calls both Docker and podman answer)."""

    docker_host: str

    def _connection(self, timeout: float) -> http.client.HTTPConnection:
        url = urllib.parse.urlsplit(self.docker_host)
        if url.scheme == "unix":
            return _UnixConnection(url.path, timeout)
        if url.scheme in ("tcp", "http"):
            return http.client.HTTPConnection(
                url.hostname or "localhost", url.port, timeout=timeout
            )
        raise EngineMissing(
            f"DOCKER_HOST={self.docker_host}: only unix:// and tcp:// are supported"
        )

    def request(self, method: str, path: str, timeout: float = 30.0) -> tuple[int, Any]:
        connection = self._connection(timeout)
        try:
            connection.request(method, path)
            response = connection.getresponse()
            body = response.read()
        finally:
            connection.close()
        try:
            return response.status, json.loads(body) if body else None
        except ValueError:
            return response.status, body.decode(errors="replace")

    def ping(self) -> None:
        try:
            status, _ = self.request("GET", "/_ping", timeout=5)
        except OSError as exc:
            raise EngineMissing(
                f"no container engine answers at {self.docker_host} ({exc}). Start Docker, or "
                "podman's Docker-compatible API (`podman system service --time=0 "
                "unix:///run/podman/podman.sock &` and `export "
                "DOCKER_HOST=unix:///run/podman/podman.sock`)"
            ) from exc
        if status != 200:
            raise EngineMissing(f"the container engine at {self.docker_host} answered {status}")

    def _labelled(self, kind: str, project: str, *, all_containers: bool = False) -> list[Any]:
        filters = urllib.parse.quote(
            json.dumps({"label": [f"com.docker.compose.project={project}"]})
        )
        extra = "&all=1" if all_containers else ""
        status, body = self.request("GET", f"/{kind}?filters={filters}{extra}")
        assert status == 200, (kind, status, body)
        if kind == "volumes":
            return list(body.get("Volumes") or [])
        return list(body or [])

    def containers(self, project: str) -> list[dict[str, Any]]:
        """Every container of ``project``, running or not, with its service and state."""
        found = []
        for summary in self._labelled("containers/json", project, all_containers=True):
            status, detail = self.request("GET", f"/containers/{summary['Id']}/json")
            if status != 200:
                continue  # removed meanwhile
            found.append(detail)
        return found

    def leftovers(self, project: str) -> dict[str, list[str]]:
        """Containers, networks and volumes that still carry ``project``'s label."""
        return {
            "containers": [
                c["Id"][:12]
                for c in self._labelled("containers/json", project, all_containers=True)
            ],
            "networks": [n["Name"] for n in self._labelled("networks", project)],
            "volumes": [v["Name"] for v in self._labelled("volumes", project)],
        }

    def remove_image(self, name: str) -> None:
        self.request("DELETE", f"/images/{urllib.parse.quote(name, safe='')}?force=1")


def service_of(container: dict[str, Any]) -> str:
    return str(container["Config"]["Labels"].get("com.docker.compose.service", "?"))


def health_of(container: dict[str, Any]) -> str:
    """``healthy``/``starting``/``unhealthy``, ``exited:<code>`` or ``running`` (no check)."""
    state = container["State"]
    if not state.get("Running"):
        return f"exited:{state.get('ExitCode')}"
    health = state.get("Health") or {}
    return str(health.get("Status") or "running")


@dataclass
class Compose:
    """One compose project: its command (v2 or v1), files and environment."""

    command: list[str]
    project: str
    files: Sequence[Path]
    environ: dict[str, str] = field(default_factory=dict)

    def run(
        self, *args: str, timeout: float = 600, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        files = [part for path in self.files for part in ("-f", str(path))]
        result = subprocess.run(
            [*self.command, "--project-name", self.project, *files, *args],
            capture_output=True,
            text=True,
            timeout=timeout,
            env={**os.environ, **self.environ},
            check=False,
        )
        if check and result.returncode != 0:
            raise AssertionError(
                f"{' '.join(self.command)} {' '.join(args)} failed with {result.returncode}:\n"
                f"{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
            )
        return result


def find_compose() -> list[str]:
    """``docker compose`` (v2) if it works, else ``docker-compose`` (v1), else what is missing."""
    docker = shutil.which("docker")
    if docker is not None:
        probe = subprocess.run(
            [docker, "compose", "version"], capture_output=True, text=True, check=False
        )
        if probe.returncode == 0:
            return [docker, "compose"]
    legacy = shutil.which("docker-compose")
    if legacy is not None:
        return [legacy]
    raise EngineMissing(
        "no compose client: install Docker with its compose plugin (`docker compose`), or "
        "docker-compose (`apt-get install docker-compose`, also drives podman)"
    )


def find_engine() -> Engine:
    engine = Engine(os.environ.get("DOCKER_HOST") or DEFAULT_DOCKER_HOST)
    engine.ping()
    return engine
