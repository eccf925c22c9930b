"""A three-node Kafka cluster for the fault tests, started once for this package.

These tests kill and restart brokers, so they always run on a cluster of their own (never on
``KAFKA_BOOTSTRAP_SERVERS``). The figures they measure are printed in pytest's summary.
``BROKER_SESSION_TIMEOUT_MS`` sets the brokers' ``broker.session.timeout.ms`` (Kafka's default,
9000, otherwise): how long a dead broker goes unnoticed, which bounds the write stall.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from tools.devkafka import BrokerError
from tools.devkafka.cluster import EmbeddedKafkaCluster

FIGURES = pytest.StashKey[list[str]]()


@pytest.fixture(scope="package")
def kafka_cluster() -> Iterator[EmbeddedKafkaCluster]:
    session_timeout = os.environ.get("BROKER_SESSION_TIMEOUT_MS")
    extra = {"broker.session.timeout.ms": session_timeout} if session_timeout else None
    cluster = EmbeddedKafkaCluster(3, extra_properties=extra)
    try:
        cluster.start()
    except BrokerError as exc:
        cluster.close()
        pytest.fail(f"could not start the three-node Kafka cluster: {exc}", pytrace=False)
    try:
        yield cluster
    finally:
        cluster.close()


@pytest.fixture(autouse=True)
def whole_cluster_after_each_test(request: pytest.FixtureRequest) -> Iterator[None]:
    """A test that kills brokers must leave all three running for the next one."""
    yield
    if "kafka_cluster" in request.fixturenames:
        cluster: EmbeddedKafkaCluster = request.getfixturevalue("kafka_cluster")
        running = cluster.running()
        assert running == sorted(cluster.nodes), (
            f"only nodes {running} of the cluster run after the test:\n{cluster.log_tails(15)}"
        )


@pytest.fixture
def report_figure(request: pytest.FixtureRequest) -> Iterator[list[str]]:
    """Lines appended here appear in the ``broker faults`` section of pytest's summary."""
    lines: list[str] = []
    yield lines
    request.config.stash.setdefault(FIGURES, []).extend(lines)


def pytest_terminal_summary(
    terminalreporter: pytest.TerminalReporter, config: pytest.Config
) -> None:
    figures = config.stash.get(FIGURES, None)
    if figures:
        terminalreporter.section("broker faults")
        timeout = os.environ.get("BROKER_SESSION_TIMEOUT_MS") or "9000 (default)"
        terminalreporter.write_line(f"broker.session.timeout.ms={timeout}")
        for line in figures:
            terminalreporter.write_line(line)
