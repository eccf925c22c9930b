"""Suite-wide fixtures: one real Kafka broker per test session.

The broker is the embedded Apache Kafka of ``tools.devkafka`` unless ``KAFKA_BOOTSTRAP_SERVERS``
names an existing cluster. Tests that take the ``kafka_bootstrap`` fixture are marked ``kafka``
automatically; when one fails, the broker's log tail is attached to its report.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Awaitable, Callable, Generator, Iterator, Mapping
from dataclasses import dataclass

import pytest
from hypothesis import settings

from tests.kafka_helpers import create_topic, unique_name
from tools.devkafka import BrokerError, EmbeddedKafka


@dataclass
class KafkaOrigin:
    """Where the session's Kafka came from, for the summary and failure reports."""

    bootstrap_servers: str
    broker: EmbeddedKafka | None = None

    def describe(self) -> str:
        if self.broker is None:
            return f"external cluster at {self.bootstrap_servers} (KAFKA_BOOTSTRAP_SERVERS)"
        started = self.broker.last_start_seconds or 0.0
        return (
            f"embedded Apache Kafka {self.broker.kafka_version} at {self.bootstrap_servers}, "
            f"started by this run in {started:.1f} s (pid {self.broker.last_pid}, "
            f"log {self.broker.log_path})"
        )


_ORIGIN = pytest.StashKey[KafkaOrigin]()


@pytest.fixture(autouse=True)
def restore_root_logger() -> Iterator[None]:
    """Entry points run in-process (``main()``) configure the root logger, and its handler's
    filter lowers aiokafka's records in place: undone after each test, so none sees another's."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


@pytest.fixture(scope="session")
def kafka_bootstrap(request: pytest.FixtureRequest) -> Iterator[str]:
    """Bootstrap address of the session's Kafka cluster."""
    external = os.environ.get("KAFKA_BOOTSTRAP_SERVERS")
    if external:
        request.config.stash[_ORIGIN] = KafkaOrigin(external)
        yield external
        return
    broker = EmbeddedKafka()
    try:
        broker.start()
    except BrokerError as exc:
        broker.close()
        pytest.fail(f"could not start the embedded Kafka broker: {exc}", pytrace=False)
    request.config.stash[_ORIGIN] = KafkaOrigin(broker.bootstrap_servers, broker)
    try:
        yield broker.bootstrap_servers
    finally:
        died = not broker.is_running()
        tail = broker.log_tail()
        broker.close()
        if died:
            pytest.fail(f"the embedded Kafka broker died during the run; log tail:\n{tail}")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "kafka_bootstrap" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.kafka)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    origin = item.config.stash.get(_ORIGIN, None)
    if report.failed and origin is not None and origin.broker is not None:
        state = "running" if origin.broker.is_running() else "NOT RUNNING"
        report.sections.append(
            (f"embedded Kafka broker ({state}): log tail", origin.broker.log_tail(40))
        )
    return report


def pytest_terminal_summary(
    terminalreporter: pytest.TerminalReporter, config: pytest.Config
) -> None:
    origin = config.stash.get(_ORIGIN, None)
    terminalreporter.section("kafka")
    if origin is None:
        terminalreporter.write_line("no test in this run used Kafka")
        return
    outcomes = {
        outcome: sum(
            1
            for report in terminalreporter.stats.get(outcome, [])
            if report.when == "call" and "kafka" in report.keywords
        )
        for outcome in ("passed", "failed", "skipped")
    }
    terminalreporter.write_line(origin.describe())
    terminalreporter.write_line(
        "ran {total} tests against it ({passed} passed, {failed} failed, {skipped} skipped)".format(
            total=sum(outcomes.values()), **outcomes
        )
    )


TopicFactory = Callable[..., Awaitable[str]]


@pytest.fixture
def new_topic(kafka_bootstrap: str) -> TopicFactory:
    """``await new_topic(partitions=4, config={...})`` creates a topic unique to the test."""

    async def create(
        prefix: str = "test", *, partitions: int = 1, config: Mapping[str, str] | None = None
    ) -> str:
        return await create_topic(
            kafka_bootstrap, unique_name(prefix), partitions=partitions, config=config
        )

    return create


# Shared 2-core machines stall now and then: no per-example deadline, and always print the
# blob that reproduces a failure.
settings.register_profile("default", deadline=None, print_blob=True)
settings.load_profile("default")
