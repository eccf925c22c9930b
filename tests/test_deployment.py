"""docker-compose.yml and the Dockerfile agree with what the services actually read."""

from __future__ import annotations

import re
import shutil
import subprocess
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
import yaml

from ingest.settings import load_settings as load_ingest_settings
from processor.settings import load_settings as load_processor_settings
from tools.devkafka import KAFKA_VERSION

ROOT = Path(__file__).parent.parent
COMPOSE: dict[str, Any] = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
SERVICES: dict[str, Any] = COMPOSE["services"]


class RecordingEnviron(Mapping[str, str]):
    """An environment that remembers every variable a settings loader asks for."""

    def __init__(self, values: Mapping[str, str]) -> None:
        self._values = dict(values)
        self.asked: set[str] = set()

    def __getitem__(self, key: str) -> str:
        self.asked.add(key)
        return self._values[key]

    def get(self, key: str, default: Any = None) -> Any:
        self.asked.add(key)
        return self._values.get(key, default)

    def __iter__(self) -> Iterator[str]:
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)


def variables_read_by(loader: Any) -> set[str]:
    environ = RecordingEnviron({})
    loader(environ)
    return environ.asked


INGEST_VARIABLES = variables_read_by(load_ingest_settings)
PROCESSOR_VARIABLES = variables_read_by(load_processor_settings)


def environment(service: str) -> dict[str, str]:
    return {key: str(value) for key, value in SERVICES[service].get("environment", {}).items()}


def test_compose_runs_kafka_at_the_tested_version() -> None:
    assert SERVICES["kafka"]["image"] == f"apache/kafka:{KAFKA_VERSION}"
    assert "healthcheck" in SERVICES["kafka"]


@pytest.mark.parametrize(
    ("service", "command"),
    [
        ("topics", ["python", "-m", "processor", "topics"]),
        ("ingest", ["python", "-m", "ingest"]),
        ("processor", ["python", "-m", "processor"]),
    ],
)
def test_pipeline_services_use_the_image_and_its_commands(service: str, command: list[str]) -> None:
    spec = SERVICES[service]
    assert spec["image"] == "meetings-pipeline:latest"
    assert spec["build"] == "."
    assert spec["command"] == command
    assert spec["environment"]["KAFKA_BOOTSTRAP_SERVERS"] == "kafka:9092"


@pytest.mark.parametrize(
    ("service", "read"),
    [
        ("ingest", INGEST_VARIABLES),
        ("processor", PROCESSOR_VARIABLES),
        ("topics", PROCESSOR_VARIABLES),
    ],
)
def test_every_compose_variable_is_a_setting_the_service_reads(
    service: str, read: set[str]
) -> None:
    unknown = set(environment(service)) - read
    assert not unknown, f"{service} sets variables its code never reads: {sorted(unknown)}"


def test_compose_values_are_valid_settings() -> None:
    ingest = load_ingest_settings(environment("ingest"))
    processor = load_processor_settings(environment("processor"))
    load_processor_settings(environment("topics"))
    assert ingest.port == 8080
    assert SERVICES["ingest"]["ports"] == [f"{ingest.port}:{ingest.port}"]
    assert f"127.0.0.1:{ingest.port}/readyz" in " ".join(SERVICES["ingest"]["healthcheck"]["test"])
    assert f"127.0.0.1:{processor.http_port}/readyz" in " ".join(
        SERVICES["processor"]["healthcheck"]["test"]
    )


def test_processor_can_scale_and_waits_for_its_topics() -> None:
    processor = SERVICES["processor"]
    assert "ports" not in processor  # host ports would stop `--scale processor=3`
    assert "container_name" not in processor
    for service in ("ingest", "processor"):
        assert SERVICES[service]["depends_on"] == {
            "topics": {"condition": "service_completed_successfully"}
        }
    assert SERVICES["topics"]["depends_on"] == {"kafka": {"condition": "service_healthy"}}


def test_no_host_paths_are_mounted() -> None:
    for name, spec in SERVICES.items():
        assert "volumes" not in spec, name


def test_dockerfile_is_multi_stage_non_root_with_exec_form_commands() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert len(re.findall(r"^FROM python:\$\{PYTHON_VERSION\}-slim", dockerfile, re.M)) == 2
    assert re.search(r"^USER meetings$", dockerfile, re.M)
    assert re.search(r'^CMD \["python", "-m", "ingest"\]$', dockerfile, re.M)
    final_stage = dockerfile.rsplit("FROM ", 1)[1]
    assert "pip install" not in final_stage  # no build tools in the final image


def test_docker_compose_config_is_valid_where_compose_exists() -> None:
    compose = shutil.which("docker-compose")
    if compose is None:
        pytest.skip("no docker-compose client on this machine")
    result = subprocess.run(
        [compose, "-f", str(ROOT / "docker-compose.yml"), "config", "-q"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
