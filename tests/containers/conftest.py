"""The compose stack of ``docker-compose.yml``, built and started once for the container tests.

``make test-containers`` runs these (never ``make test``: a CI runner may have no container
engine); ``COMPOSE_STACK=docker-compose.cluster.yml make test-containers`` runs them on the
three-broker file. A missing compose client or engine fails the run with a message naming what
is missing. Whatever happens, the project's containers, network and volumes are removed at the
end, with the image built for the run; a test then proves nothing was left behind.
"""

from __future__ import annotations

import os
import socket
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from tests.containers.engine import (
    Compose,
    Engine,
    EngineMissing,
    find_compose,
    find_engine,
    health_of,
    service_of,
)

ROOT = Path(__file__).parent.parent.parent
HOST_PORTS = (8080, 9092)
"""Published by docker-compose.yml on the host: ingest and the broker's host listener."""


@dataclass
class Stack:
    compose: Compose
    engine: Engine
    image: str
    brokers: list[str]
    """The Kafka services of the compose file."""

    def healthy(self, processors: int = 1) -> dict[str, int]:
        """What a running stack has: every broker, ingest and ``processors`` processors."""
        return {**dict.fromkeys(self.brokers, 1), "ingest": 1, "processor": processors}

    def states(self) -> dict[str, list[str]]:
        states: dict[str, list[str]] = {}
        for container in self.engine.containers(self.compose.project):
            states.setdefault(service_of(container), []).append(health_of(container))
        return states

    def wait_healthy(self, expected: dict[str, int], within: float = 240.0) -> None:
        """Until ``expected[service]`` containers of each service are healthy and ``topics``
        has exited 0; fails early on an unhealthy or failed container."""
        deadline = time.monotonic() + within
        while True:
            states = self.states()
            failed = {
                service: found
                for service, found in states.items()
                if any(
                    state == "unhealthy" or (state.startswith("exited:") and state != "exited:0")
                    for state in found
                )
            }
            if failed:
                raise AssertionError(f"containers failed: {failed}\n{self.logs(*failed)}")
            done = states.get("topics") == ["exited:0"] and all(
                states.get(service, []).count("healthy") == count
                for service, count in expected.items()
            )
            if done:
                return
            if time.monotonic() > deadline:
                raise AssertionError(f"not healthy within {within:.0f} s: {states}\n{self.logs()}")
            time.sleep(1.0)  # poll interval of a condition wait (health checks tick every 5 s)

    def logs(self, *services: str) -> str:
        return self.compose.run("logs", "--no-color", "--tail", "40", *services, check=False).stdout


def port_in_use(port: int) -> bool:
    with socket.socket() as probe:
        probe.settimeout(0.5)
        return probe.connect_ex(("127.0.0.1", port)) == 0


@pytest.fixture(scope="session")
def stack() -> Iterator[Stack]:
    try:
        command = find_compose()
        engine = find_engine()
    except EngineMissing as exc:
        pytest.fail(f"make test-containers needs a container engine: {exc}", pytrace=False)
    busy = [port for port in HOST_PORTS if port_in_use(port)]
    if busy:
        pytest.fail(
            f"host ports {busy} are in use (make run? another stack?); docker-compose.yml "
            "publishes them: stop what holds them",
            pytrace=False,
        )
    run_id = uuid.uuid4().hex[:8]
    image = f"meetings-pipeline:test-{run_id}"
    compose_file = ROOT / os.environ.get("COMPOSE_STACK", "docker-compose.yml")
    services = yaml.safe_load(compose_file.read_text())["services"]
    compose = Compose(
        command=command,
        project=f"meetings-test-{run_id}",
        files=[compose_file],
        environ={"MEETINGS_IMAGE": image},
    )
    built = Stack(compose, engine, image, sorted(s for s in services if s.startswith("kafka")))
    try:
        compose.run("build", "topics", timeout=1200)  # one image for topics, ingest, processor
        compose.run("up", "--detach", "--no-build", timeout=600)
        built.wait_healthy(built.healthy())
        yield built
    finally:
        compose.run("down", "--volumes", "--remove-orphans", "--timeout", "30", check=False)
        engine.remove_image(image)
