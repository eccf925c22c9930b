"""A three-node Kafka cluster for the fault tests, started once for this package.

These tests kill and restart brokers, so they always run on a cluster of their own (never on
``KAFKA_BOOTSTRAP_SERVERS``). The figures they measure are printed in pytest's summary.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tools.devkafka import BrokerError
from tools.devkafka.cluster import EmbeddedKafkaCluster

FIGURES = pytest.StashKey[list[str]]()


@pytest.fixture(scope="package")
def kafka_cluster() -> Iterator[EmbeddedKafkaCluster]:
    cluster = EmbeddedKafkaCluster(3)
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
        for line in figures:
            terminalreporter.write_line(line)
