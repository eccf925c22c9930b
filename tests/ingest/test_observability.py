"""Liveness, readiness, Prometheus metrics and structured access logs.

Broker-free except the produce-latency metric, which only the Kafka publisher observes."""

from __future__ import annotations

import json
import logging
import sys

import aiohttp
import pytest

from servicekit.logs import JsonFormatter
from tests.callback_fixtures import valid_body
from tests.ingest.conftest import IngestFactory
from tests.ingest.fake_publisher import Mode
from tests.ingest.inprocess import InProcessIngest
from tests.kafka_helpers import wait_until
from tools.devkafka import free_port


async def test_healthz_and_readyz(http: aiohttp.ClientSession, ingest: InProcessIngest) -> None:
    health = await http.get("/healthz")
    assert (health.status, await health.json()) == (200, {"status": "ok"})

    async def readiness() -> tuple[int, object]:
        response = await http.get("/readyz")
        return response.status, (await response.json())["status"]

    assert await readiness() == (200, "ready")
    ingest.publisher.connected = False
    assert await readiness() == (503, "kafka_unavailable")
    ingest.publisher.connected = True
    ingest.publisher.mode = Mode.TOPIC_MISSING
    assert await readiness() == (503, "raw_topic_missing")
    ingest.publisher.mode = Mode.ACKNOWLEDGE
    assert await readiness() == (200, "ready")
    ingest.server.begin_shutdown()
    assert await readiness() == (503, "shutting_down")
    assert (await http.get("/healthz")).status == 200  # alive while draining


async def test_healthz_and_readyz_on_kafka(client: aiohttp.ClientSession) -> None:
    async def ready() -> bool:
        return (await client.get("/readyz")).status == 200

    await wait_until(ready, what="readiness")


def sample(text: str, series: str) -> float:
    """The value of one exact series (name plus labels) in Prometheus text, 0 if absent."""
    for line in text.splitlines():
        name, _, value = line.rpartition(" ")
        if name == series:
            return float(value)
    return 0.0


async def test_metrics_count_requests_bytes_and_produce_latency(
    client: aiohttp.ClientSession,
) -> None:
    before = await (await client.get("/metrics")).text()
    body = valid_body("session-started.json")
    assert (await client.post("/callbacks/sessions", data=body)).status == 204
    assert (await client.post("/callbacks/sessions", data=b"[]")).status == 400
    response = await client.get("/metrics")
    assert response.content_type == "text/plain"
    after = await response.text()

    accepted = 'ingest_requests_total{route="/callbacks/sessions",status="204"}'
    refused = 'ingest_requests_total{route="/callbacks/sessions",status="400"}'
    assert sample(after, accepted) == sample(before, accepted) + 1
    assert sample(after, refused) == sample(before, refused) + 1
    assert sample(after, "ingest_accepted_bytes_total") == sample(
        before, "ingest_accepted_bytes_total"
    ) + len(body)
    assert sample(after, "ingest_produce_seconds_count") == (
        sample(before, "ingest_produce_seconds_count") + 1
    )
    assert "ingest_in_flight_requests 0.0" in after


async def test_each_callback_request_logs_one_json_access_line(
    http: aiohttp.ClientSession, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="ingest.access")
    response = await http.post(
        "/callbacks", data=b'{"no": "event"}', headers={"X-Request-Id": "req-7"}
    )
    assert response.status == 400
    [record] = [r for r in caplog.records if r.name == "ingest.access"]
    line = json.loads(JsonFormatter().format(record))
    assert line["request_id"] == "req-7"
    assert line["status"] == 400
    assert line["route"] == "/callbacks"
    assert line["level"] == "info"
    assert "event" in line["detail"]
    assert line["duration_ms"] >= 0


def test_json_formatter_includes_exceptions() -> None:
    try:
        raise ValueError("boom")
    except ValueError:
        record = logging.LogRecord("x", logging.ERROR, __file__, 1, "failed %s", ("here",), None)
        record.exc_info = sys.exc_info()
    line = json.loads(JsonFormatter().format(record))
    assert line["msg"] == "failed here"
    assert "ValueError: boom" in line["exc"]


async def test_metrics_can_be_served_on_their_own_port(make_ingest: IngestFactory) -> None:
    metrics_port = free_port()
    ingest = await make_ingest(metrics_port=metrics_port)
    async with aiohttp.ClientSession() as http:
        body = valid_body("session-started.json")
        async with http.post(
            f"{ingest.url}/callbacks", data=body, headers={"Content-Type": "application/json"}
        ) as accepted:
            assert accepted.status == 204
        async with http.get(f"http://127.0.0.1:{metrics_port}/metrics") as scrape:
            assert scrape.status == 200
            text = await scrape.text()
        async with http.get(f"{ingest.url}/metrics") as public:
            assert public.status == 404
            assert (await public.json())["error"] == "not_found"
    assert 'ingest_requests_total{route="/callbacks",status="204"}' in text
