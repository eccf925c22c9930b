"""docker-compose.yml and the Dockerfile agree with what the services actually read."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from ingest.settings import IngestSettings
from ingest.settings import load_settings as load_ingest_settings
from processor.settings import ProcessorSettings
from processor.settings import load_settings as load_processor_settings
from servicekit.settings import declared
from tests.containers.engine import EngineMissing, find_compose, find_engine
from tools.devkafka import KAFKA_VERSION

ROOT = Path(__file__).parent.parent
COMPOSE: dict[str, Any] = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
SERVICES: dict[str, Any] = COMPOSE["services"]


def variables_read_by(settings_class: type[Any]) -> set[str]:
    """Every environment variable a service reads: its settings declarations say."""
    return {declaration.spec.env for declaration in declared(settings_class)}


INGEST_VARIABLES = variables_read_by(IngestSettings)
PROCESSOR_VARIABLES = variables_read_by(ProcessorSettings)


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
    # `make test-containers` builds under its own tag (MEETINGS_IMAGE) and removes it after.
    assert spec["image"] == "${MEETINGS_IMAGE:-meetings-pipeline:latest}"
    assert spec["build"] == "."
    assert spec["command"] == command
    assert spec["environment"]["KAFKA_BOOTSTRAP_SERVERS"] == "kafka:9092"


@pytest.mark.parametrize(
    ("service", "read"),
    [
        ("ingest", INGEST_VARIABLES),
        ("processor", PROCESSOR_VARIABLES),
        ("topics", PROCESSOR_VARIABLES),
        ("replay", PROCESSOR_VARIABLES),
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
    load_processor_settings(environment("replay"))
    assert ingest.port == 8080
    assert SERVICES["ingest"]["ports"] == [f"{ingest.port}:{ingest.port}"]
    for service, port in (("ingest", ingest.port), ("processor", processor.http_port)):
        test = SERVICES[service]["healthcheck"]["test"]
        # podman's Docker API splits exec-form arguments at spaces; CMD-SHELL means the same
        # under Docker and survives it.
        assert test[0] == "CMD-SHELL", test
        assert len(test) == 2, test
        assert f"127.0.0.1:{port}/readyz" in test[1]


def test_processor_can_scale_and_waits_for_its_topics() -> None:
    processor = SERVICES["processor"]
    assert "ports" not in processor  # host ports would stop `--scale processor=3`
    assert "container_name" not in processor
    for service in ("ingest", "processor"):
        assert SERVICES[service]["depends_on"] == {
            "topics": {"condition": "service_completed_successfully"}
        }
    assert SERVICES["topics"]["depends_on"] == {"kafka": {"condition": "service_healthy"}}


def test_the_replay_runs_only_when_asked_for_and_never_restarts() -> None:
    replay = SERVICES["replay"]
    assert replay["profiles"] == ["replay"]  # `docker compose up` leaves it out
    assert replay["command"] == [
        "python",
        "-m",
        "processor",
        "replay",
        "--to-prefix",
        "${REPLAY_PREFIX:-}",  # unset: the replay refuses the empty prefix, naming it
    ]
    assert replay["restart"] == "no"
    assert replay["depends_on"] == {"topics": {"condition": "service_completed_successfully"}}


def test_no_host_paths_are_mounted_and_the_root_is_read_only() -> None:
    for name, spec in SERVICES.items():
        assert "volumes" not in spec, name
    for name in ("topics", "ingest", "processor", "replay"):
        assert SERVICES[name]["read_only"] is True, name
        assert SERVICES[name]["tmpfs"] == ["/tmp"], name  # ingest workers' metrics files


def test_the_broker_has_a_host_listener_for_tools_on_the_host() -> None:
    kafka = environment("kafka")
    assert "HOST://127.0.0.1:9092" in kafka["KAFKA_ADVERTISED_LISTENERS"].split(",")
    assert "HOST://:19092" in kafka["KAFKA_LISTENERS"].split(",")
    assert "HOST:PLAINTEXT" in kafka["KAFKA_LISTENER_SECURITY_PROTOCOL_MAP"].split(",")
    assert SERVICES["kafka"]["ports"] == ["127.0.0.1:9092:19092"]
    assert kafka["KAFKA_AUTO_CREATE_TOPICS_ENABLE"] == "false"


def test_dockerfile_is_multi_stage_non_root_with_exec_form_commands() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert len(re.findall(r"^FROM python:\$\{PYTHON_VERSION\}-slim", dockerfile, re.M)) == 2
    # Numeric: no useradd in the build, and runAsNonRoot can be verified by an orchestrator.
    assert re.search(r"^USER 10001:10001$", dockerfile, re.M)
    assert "useradd" not in dockerfile
    assert re.search(r'^CMD \["python", "-m", "ingest"\]$', dockerfile, re.M)
    final_stage = dockerfile.rsplit("FROM ", 1)[1]
    assert "pip install" not in final_stage  # no build tools in the final image


def test_the_image_holds_only_what_the_services_run() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    copied = set(re.findall(r"^COPY (\S+) ", dockerfile, re.M)) - {"--from=build"}
    assert copied == {
        "requirements/main.txt",
        "pyproject.toml",
        "schemas",
        "servicekit",
        "ingest",
        "processor",
    }
    ignore = (ROOT / ".dockerignore").read_text().splitlines()
    assert ignore[ignore.index("*") + 1 :][:1] == ["!pyproject.toml"]  # everything else opted in
    assert not {"!devkafka/", "!tools/", "!tests/", "!bench/", "!requirements/dev.txt"} & set(
        ignore
    )


def test_the_image_installs_the_locked_dependencies_only() -> None:
    build_stage = (ROOT / "Dockerfile").read_text().split("FROM ")[1]
    installs = [line.strip() for line in re.findall(r"pip install ([^&\n\\]+)", build_stage)]
    assert installs == ["--require-hashes --no-deps -r requirements/main.txt", "--no-deps ."]


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


CLUSTER: dict[str, Any] = yaml.safe_load((ROOT / "docker-compose.cluster.yml").read_text())
CLUSTER_SERVICES: dict[str, Any] = CLUSTER["services"]
BROKERS = ("kafka-1", "kafka-2", "kafka-3")


def cluster_environment(service: str) -> dict[str, str]:
    return {k: str(v) for k, v in CLUSTER_SERVICES[service].get("environment", {}).items()}


def test_the_cluster_file_has_three_voters_replicating_everything_three_times() -> None:
    ids = {cluster_environment(broker)["KAFKA_NODE_ID"] for broker in BROKERS}
    assert ids == {"1", "2", "3"}
    for broker in BROKERS:
        kafka = cluster_environment(broker)
        assert CLUSTER_SERVICES[broker]["image"] == f"apache/kafka:{KAFKA_VERSION}"
        assert kafka["KAFKA_CONTROLLER_QUORUM_VOTERS"] == (
            "1@kafka-1:9093,2@kafka-2:9093,3@kafka-3:9093"
        )
        assert kafka["KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR"] == "3"
        assert kafka["KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR"] == "3"
        assert kafka["KAFKA_TRANSACTION_STATE_LOG_MIN_ISR"] == "2"
        assert kafka["KAFKA_MIN_INSYNC_REPLICAS"] == "2"
        assert kafka["KAFKA_AUTO_CREATE_TOPICS_ENABLE"] == "false"
    assert len({cluster_environment(b)["CLUSTER_ID"] for b in BROKERS}) == 1


@pytest.mark.parametrize(
    ("service", "read"),
    [
        ("ingest", INGEST_VARIABLES),
        ("processor", PROCESSOR_VARIABLES),
        ("topics", PROCESSOR_VARIABLES),
    ],
)
def test_cluster_services_read_every_variable_and_reach_all_brokers(
    service: str, read: set[str]
) -> None:
    values = cluster_environment(service)
    assert not set(values) - read
    assert values["KAFKA_BOOTSTRAP_SERVERS"] == "kafka-1:9092,kafka-2:9092,kafka-3:9092"
    assert CLUSTER_SERVICES[service]["command"] == SERVICES[service]["command"]
    assert CLUSTER_SERVICES[service]["read_only"] is True


def test_cluster_topics_are_replicated_to_every_broker() -> None:
    topics = load_processor_settings(cluster_environment("topics"))
    assert topics.topic_replication_factor == 3
    load_ingest_settings(cluster_environment("ingest"))
    load_processor_settings(cluster_environment("processor"))


def test_docker_compose_cluster_config_is_valid_where_compose_exists() -> None:
    compose = shutil.which("docker-compose")
    if compose is None:
        pytest.skip("no docker-compose client on this machine")
    result = subprocess.run(
        [compose, "-f", str(ROOT / "docker-compose.cluster.yml"), "config", "-q"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize("services", [SERVICES, CLUSTER_SERVICES], ids=["single", "cluster"])
def test_grace_periods_cover_draining_and_the_produce_timeout(services: dict[str, Any]) -> None:
    ingest = load_ingest_settings({k: str(v) for k, v in services["ingest"]["environment"].items()})
    grace = {
        name: int(services[name]["stop_grace_period"].rstrip("s"))
        for name in ("ingest", "processor")
    }
    # SIGTERM: drain delay, then in-flight requests (each bounded by the produce timeout).
    assert ingest.shutdown_timeout_s > ingest.produce_timeout_s
    assert grace["ingest"] > ingest.drain_delay_s + ingest.shutdown_timeout_s + 5
    assert grace["processor"] >= 30


def test_make_test_containers_names_a_missing_compose_client(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(EngineMissing, match=r"no compose client: install Docker .*docker-compose"):
        find_compose()


def test_make_test_containers_names_a_missing_engine(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path / 'docker.sock'}")
    with pytest.raises(EngineMissing, match=r"no container engine answers at unix://.*podman"):
        find_engine()
