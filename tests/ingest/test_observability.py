"""Liveness, readiness, Prometheus metrics and structured access logs."""

from __future__ import annotations

import json
import logging
import sys
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from servicekit.logs import JsonFormatter
from tests.callback_fixtures import valid_body
from tests.kafka_helpers import wait_until


async def test_healthz_and_readyz(client: TestClient[Any, Any]) -> None:
    health = await client.get("/healthz")
    assert (health.status, await health.json()) == (200, {"status": "ok"})

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
    client: TestClient[Any, Any],
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
    client: TestClient[Any, Any], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="ingest.access")
    response = await client.post(
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
