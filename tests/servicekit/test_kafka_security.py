"""Both services' Kafka clients against a real broker that demands SASL (and TLS): every
mechanism, a client certificate, refused credentials and CAs, and the whole pipeline secured."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import orjson
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.errors import KafkaConnectionError

from schemas.topics import SESSIONS
from servicekit.kafka import KafkaSettings
from servicekit.settings import load
from tests.ingest.service import IngestService
from tests.kafka_helpers import consume_until, create_topic, unique_name
from tests.service_process import ServiceProcess
from tools.devkafka import free_port

from .conftest import PASSWORD, TLS, USER, SecuredKafka


def security_environ(
    secured: SecuredKafka, protocol: str, mechanism: str, *, password: str = PASSWORD
) -> dict[str, str]:
    environ = {
        "KAFKA_BOOTSTRAP_SERVERS": secured.servers(protocol),
        "KAFKA_SECURITY_PROTOCOL": protocol,
        "KAFKA_SASL_MECHANISM": mechanism,
        "KAFKA_SASL_USERNAME": USER,
        "KAFKA_SASL_PASSWORD": password,
    }
    if protocol == "SASL_SSL":
        environ["KAFKA_SSL_CA_FILE"] = str(TLS / "ca.crt")
    return environ


def kafka_settings(environ: dict[str, str]) -> KafkaSettings:
    return load(KafkaSettings, environ, what="kafka")


async def round_trip(kafka: KafkaSettings, topic: str) -> bytes:
    """Produce one record and read it back with a consumer group, both built from ``kafka``."""
    value = unique_name("value").encode()
    producer = AIOKafkaProducer(**kafka.client_options(), enable_idempotence=True, acks="all")
    await producer.start()
    try:
        await producer.send_and_wait(topic, value)
    finally:
        await producer.stop()
    consumer = AIOKafkaConsumer(
        topic,
        **kafka.client_options(),
        group_id=unique_name("group"),
        auto_offset_reset="earliest",
        isolation_level="read_committed",
    )
    await consumer.start()
    try:
        records = await consume_until(
            consumer, lambda rs: any(r.value == value for r in rs), what="the record"
        )
    finally:
        await consumer.stop()
    return bytes(next(r.value for r in records if r.value == value))


@pytest.mark.parametrize("mechanism", ["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"])
@pytest.mark.parametrize("protocol", ["SASL_PLAINTEXT", "SASL_SSL"])
async def test_every_mechanism_produces_and_consumes(
    secured_kafka: SecuredKafka, protocol: str, mechanism: str
) -> None:
    topic = await create_topic(secured_kafka.plaintext, unique_name("sasl"))
    kafka = kafka_settings(security_environ(secured_kafka, protocol, mechanism))
    assert await round_trip(kafka, topic)


async def test_a_client_certificate_is_presented_and_accepted(secured_kafka: SecuredKafka) -> None:
    topic = await create_topic(secured_kafka.plaintext, unique_name("mtls"))
    environ = security_environ(secured_kafka, "SASL_SSL", "SCRAM-SHA-512") | {
        "KAFKA_SSL_CERT_FILE": str(TLS / "client.crt"),
        "KAFKA_SSL_KEY_FILE": str(TLS / "client.key"),
        "KAFKA_SSL_KEY_PASSWORD": "client-key-secret",
    }
    assert await round_trip(kafka_settings(environ), topic)


@pytest.mark.parametrize(
    ("protocol", "change"),
    [
        pytest.param("SASL_SCRAM", {"KAFKA_SASL_PASSWORD": "wrong-password"}, id="wrong-password"),
        pytest.param("SASL_SCRAM", {"KAFKA_SASL_USERNAME": "mallory"}, id="unknown-user"),
        pytest.param("SASL_SSL", {"KAFKA_SSL_CA_FILE": ""}, id="broker-cert-from-unknown-ca"),
    ],
)
async def test_the_broker_refuses_what_it_should(
    secured_kafka: SecuredKafka, protocol: str, change: dict[str, str]
) -> None:
    real_protocol = "SASL_PLAINTEXT" if protocol == "SASL_SCRAM" else protocol
    environ = security_environ(secured_kafka, real_protocol, "SCRAM-SHA-512") | change
    producer = AIOKafkaProducer(**kafka_settings(environ).client_options(), request_timeout_ms=5000)
    try:
        with pytest.raises(KafkaConnectionError):
            await producer.start()
    finally:
        await producer.stop()


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(headers={"Content-Type": "application/json"}) as session:
        yield session


async def test_the_pipeline_runs_on_a_cluster_that_demands_sasl_and_tls(
    secured_kafka: SecuredKafka, tmp_path: Path, http: aiohttp.ClientSession
) -> None:
    """Topics command, ingest and processor, configured only through the environment (as the
    chart configures them), over SASL_SSL with SCRAM-SHA-512 and a client certificate."""
    prefix = unique_name("secured") + "."
    environ = security_environ(secured_kafka, "SASL_SSL", "SCRAM-SHA-512") | {
        "KAFKA_SSL_CERT_FILE": str(TLS / "client.crt"),
        "KAFKA_SSL_KEY_FILE": str(TLS / "client.key"),
        "KAFKA_SSL_KEY_PASSWORD": "client-key-secret",
        "MEETINGS_TOPIC_PREFIX": prefix,
        "TOPIC_PARTITIONS": "2",
        "LOG_FORMAT": "json",
    }
    topics = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "processor", "topics", "--timeout", "30"],
        env={**os.environ, **environ},
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert topics.returncode == 0, topics.stderr
    http_port = free_port()
    processor = ServiceProcess(
        "processor",
        {
            **os.environ,
            **environ,
            "PROCESSOR_GROUP_ID": unique_name("group"),
            "PROCESSOR_CREATE_TOPICS": "false",
            "PROCESSOR_HTTP_HOST": "127.0.0.1",
            "PROCESSOR_HTTP_PORT": str(http_port),
            "COMMIT_INTERVAL_MS": "50",
        },
        tmp_path / "processor.log",
        f"http://127.0.0.1:{http_port}/readyz",
    )
    ingest = IngestService(environ, tmp_path / "ingest.log")
    try:
        await processor.start(http)
        await ingest.start(http)
        for body in (
            {"event": "session:started", "session_id": "s-1", "room_id": "r-1",
             "started_at": "2021-11-02T15:53:28.753Z"},
            {"event": "session:ended", "session_id": "s-1", "room_id": "r-1",
             "started_at": "2021-11-02T15:53:28.753Z", "ended_at": "2021-11-02T16:03:28.753Z"},
        ):  # fmt: skip
            async with http.post(f"{ingest.url}/callbacks", data=orjson.dumps(body)) as response:
                assert response.status == 204, await response.text()
        kafka = kafka_settings(environ)
        consumer = AIOKafkaConsumer(
            SESSIONS.name_under(prefix),
            **kafka.client_options(),
            auto_offset_reset="earliest",
            isolation_level="read_committed",
        )
        await consumer.start()
        try:
            records = await consume_until(
                consumer,
                lambda rs: any(b'"session.ended"' in r.value for r in rs),
                what="session.ended from the secured processor",
                within=60,
            )
        finally:
            await consumer.stop()
        ended = [orjson.loads(r.value) for r in records if b'"session.ended"' in r.value]
        assert ended[0]["summary"]["duration_s"] == 600
        ingest.terminate()
        processor.terminate()
        assert await ingest.wait_exit() == 0, ingest.log()
        assert await processor.wait_exit() == 0, processor.log()
    finally:
        ingest.kill()
        processor.kill()
