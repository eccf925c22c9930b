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
import yaml
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.errors import KafkaConnectionError

from schemas.topics import RAW, SESSIONS
from servicekit.kafka import KafkaSettings
from servicekit.settings import load
from tests.deploy.conftest import CHART
from tests.deploy.rendered import container, container_environment, one
from tests.ingest.service import IngestService
from tests.kafka_helpers import consume_until, create_topic, unique_name
from tests.service_process import ServiceProcess
from tools.chartcheck import load_manifests
from tools.chartcheck.helm import Helm
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


async def test_a_refused_login_stops_the_topics_command_saying_why(
    secured_kafka: SecuredKafka,
) -> None:
    environ = security_environ(secured_kafka, "SASL_SSL", "SCRAM-SHA-512", password="wrong-one")
    done = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "processor", "topics", "--timeout", "5"],
        env={**os.environ, **environ, "LOG_FORMAT": "text"},
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert done.returncode == 1
    assert "SaslAuthenticationFailed" in done.stderr  # the client's log line
    assert "the KAFKA_SASL_* / KAFKA_SSL_* settings for SASL_SSL" in done.stderr


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


async def test_the_charts_kafka_configuration_connects_for_real(
    secured_kafka: SecuredKafka, helm: Helm, tmp_path: Path
) -> None:
    """The topics Job exactly as the Helm chart renders it for SASL_SSL with SCRAM-SHA-256 and a
    client certificate (Secrets stood in for), run against the secured broker."""
    prefix = unique_name("chart") + "."
    values = {
        "kafka": {
            "bootstrapServers": secured_kafka.servers("SASL_SSL"),
            "securityProtocol": "SASL_SSL",
            "sasl": {"mechanism": "SCRAM-SHA-256", "username": USER},
            "tls": {"existingSecret": "kafka-tls", "certKey": "tls.crt", "keyKey": "tls.key"},
        },
        "secrets": {
            "existingSecret": "meetings-secrets",
            "keys": {"kafkaSaslPassword": "kafka-password", "kafkaSslKeyPassword": "key-password"},
        },
        "topics": {"prefix": prefix, "partitions": 2, "replicationFactor": 1},
    }
    path = tmp_path / "values.yaml"
    path.write_text(yaml.safe_dump(values))
    outcome = helm.template(CHART, path, "1.37")
    assert outcome.ok, outcome.output
    rendered = load_manifests(outcome.output)
    job = one(rendered, "Job", "meetings-topics")
    secrets = {"kafka-password": PASSWORD, "key-password": "client-key-secret"}
    environ = container_environment(rendered, job, secrets)
    assert environ["KAFKA_SSL_CERT_FILE"].endswith("client.crt")  # mounted files stood in for
    done = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, *container(job)["command"][1:4], "--timeout", "30"],  # -m processor topics
        env={**os.environ, **environ},
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert f"{prefix}callbacks.raw" in done.stdout
    # The processor's own ConfigMap and env carry the same connection.
    processor = container_environment(
        rendered, one(rendered, "Deployment", "meetings-processor"), secrets
    )
    kafka = kafka_settings(processor)
    assert await round_trip(kafka, RAW.name_under(prefix))
