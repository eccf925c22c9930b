"""The embedded broker's own failure paths and process hygiene."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest
from aiokafka import AIOKafkaProducer

from tests.kafka_helpers import create_topic
from tools.devkafka import BrokerSetupError, BrokerStartError, EmbeddedKafka
from tools.devkafka.broker import answers_kafka_requests, min_heap, new_cluster_id
from tools.devkafka.jars import ensure_kafka_jars, logging_backend, render_pom
from tools.devkafka.java import find_java


def process_exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_missing_java_names_what_to_install(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv("JAVA_HOME", raising=False)
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(BrokerSetupError, match=r"Java was not found.*openjdk-17.*KAFKA_BOOTSTRAP"):
        find_java()


def test_java_home_without_java_is_reported(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("JAVA_HOME", str(tmp_path))
    with pytest.raises(BrokerSetupError, match=r"JAVA_HOME=.* has no bin/java"):
        find_java()


def test_too_old_java_is_refused(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    fake_java = tmp_path / "bin" / "java"
    fake_java.parent.mkdir()
    fake_java.write_text("#!/bin/sh\necho 'openjdk version \"11.0.2\" 2019-01-15' >&2\n")
    fake_java.chmod(0o755)
    monkeypatch.setenv("JAVA_HOME", str(tmp_path))
    with pytest.raises(BrokerSetupError, match=r"is Java 11; Apache Kafka 4 needs 17\+"):
        find_java()


def test_missing_maven_names_what_to_install(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("MEETINGS_CACHE_DIR", str(tmp_path / "empty-cache"))
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(BrokerSetupError, match=r"Maven \('mvn'\) is required.*apt-get install"):
        ensure_kafka_jars("4.1.1")


def test_pom_carries_the_broker_and_a_logging_backend() -> None:
    pom = render_pom("4.1.1")
    assert "<artifactId>kafka_2.13</artifactId><version>4.1.1</version>" in pom
    assert "<artifactId>log4j-slf4j-impl</artifactId>" in pom
    assert [a.artifact for a in logging_backend("3.9.1")] == ["slf4j-reload4j", "reload4j"]
    with pytest.raises(BrokerSetupError, match="unsupported Kafka version"):
        logging_backend("2.8.0")


def test_cluster_id_and_heap_helpers() -> None:
    cluster_id = new_cluster_id()
    assert len(cluster_id) == 22
    assert "=" not in cluster_id
    assert min_heap("512m") == "256m"
    assert min_heap("1g") == "1g"  # never zero


def test_a_broker_that_exits_fails_fast_with_its_log_tail(tmp_path: Path) -> None:
    # Formatting succeeds (it runs with its own heap); the broker JVM then refuses a 1 KiB heap.
    broker = EmbeddedKafka(workdir=tmp_path, heap="1k")
    try:
        with pytest.raises(
            BrokerStartError, match=r"exited with code \d+.*last lines of"
        ) as failure:
            broker.start()
        assert "heap" in str(failure.value)  # the log tail names the cause
        assert not broker.is_running()
    finally:
        broker.close()


def test_a_port_in_use_is_refused_before_starting_java(tmp_path: Path) -> None:
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        taken = squatter.getsockname()[1]
        broker = EmbeddedKafka(port=taken, workdir=tmp_path)
        with pytest.raises(BrokerStartError, match=rf"port {taken} on 127.0.0.1 is already in use"):
            broker.start()
        assert broker.last_pid is None  # no JVM was started
        # Something listening is not a broker: the readiness probe wants a Kafka answer.
        assert not answers_kafka_requests(taken, timeout=0.3)


async def test_stop_keeps_data_for_a_restart_and_leaves_no_process(tmp_path: Path) -> None:
    broker = EmbeddedKafka(workdir=tmp_path)
    try:
        broker.start()
        first_pid = broker.pid
        assert first_pid is not None
        # auto.create.topics.enable is off; a produce needs the topic, so create it first.
        await create_topic(broker.bootstrap_servers, "kept")
        producer = AIOKafkaProducer(bootstrap_servers=broker.bootstrap_servers)
        await producer.start()
        try:
            before = await producer.send_and_wait("kept", b"before-restart")
        finally:
            await producer.stop()

        broker.stop()
        assert not process_exists(first_pid)
        assert not broker.is_running()

        broker.start()
        producer = AIOKafkaProducer(bootstrap_servers=broker.bootstrap_servers)
        await producer.start()
        try:
            after = await producer.send_and_wait("kept", b"after-restart")
        finally:
            await producer.stop()
        assert after.offset == before.offset + 1  # same log, not a fresh cluster
    finally:
        broker.close()
    assert broker.pid is None
