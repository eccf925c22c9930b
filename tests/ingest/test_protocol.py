"""``IngestRunner`` itself: TLS probes stay quiet, keywords reach aiohttp or are refused, and
a keep-alive connection is between requests again after each answer. Broker-free."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import orjson
import pytest
from aiohttp import web

from ingest.http.connections import ConnectionGuard, Phase
from ingest.http.protocol import IngestRunner
from tests.ingest.conftest import IngestFactory
from tests.ingest.inprocess import InProcessIngest, wait_until
from tests.ingest.raw_http import read_response, request_bytes

TLS_CLIENT_HELLO = bytes.fromhex("16030100c4010000c00303") + bytes(32) + b"\x00\x00\x02\x13\x01"
BODY = orjson.dumps({"event": "session:started", "session_id": "s-p", "room_id": "r"})
REQUEST = request_bytes(BODY, [(b"Content-Type", b"application/json")])


async def test_tls_probes_on_the_plain_port_are_not_warnings(
    ingest: InProcessIngest, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    for _ in range(5):
        response = await ingest.exchange(TLS_CLIENT_HELLO)
        assert response is not None
        assert response.status == 400
        assert response.json()["error"] == "bad_request"
    loud = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert loud == [], [r.getMessage() for r in loud]
    assert [r for r in caplog.records if r.name == "ingest.http.protocol"], "logged at debug"


async def test_other_unparseable_requests_are_one_warning_each(
    ingest: InProcessIngest, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    bad = b"POST /callbacks HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n{}"
    response = await ingest.exchange(bad)
    assert response is not None
    assert response.status == 400
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1, [r.getMessage() for r in warnings]
    assert "unparseable request" in warnings[0].getMessage()
    assert warnings[0].exc_info is None


async def test_runner_keywords_reach_aiohttp(make_ingest: IngestFactory) -> None:
    ingest = await make_ingest()
    long_line = request_bytes(BODY, [(b"Content-Type", b"application/json")])
    long_line = long_line.replace(b"/callbacks", b"/callbacks?" + b"q" * 300, 1)
    accepted = await ingest.exchange(long_line)
    assert accepted is not None
    assert accepted.status == 204
    app = web.Application()
    runner = IngestRunner(
        app, guard=ConnectionGuard(8), read_timeout_s=5, retry_after_s=1, max_line_size=100
    )
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        reader, writer = await asyncio.open_connection(*runner.addresses[0][:2])
        writer.write(long_line)
        async with asyncio.timeout(5):
            refused = await read_response(reader)
        writer.close()
    finally:
        await runner.cleanup()
    assert refused is not None
    assert refused.status == 400
    assert "100" in refused.json()["detail"]


@pytest.mark.parametrize(
    ("keyword", "message"),
    [("max_line_sise", "max_line_sise"), ("access_log", "own access log")],
)
def test_keywords_aiohttp_does_not_take_are_refused(keyword: str, message: str) -> None:
    given: dict[str, Any] = {keyword: 1}
    with pytest.raises(TypeError, match=message):
        IngestRunner(
            web.Application(),
            guard=ConnectionGuard(8),
            read_timeout_s=5,
            retry_after_s=1,
            **given,
        )


async def test_each_answer_returns_the_connection_to_idle(ingest: InProcessIngest) -> None:
    guard = ingest.server.runner.guard
    reader, writer = await asyncio.open_connection("127.0.0.1", ingest.port)
    try:
        for number in range(3):
            before = ingest.clock.now
            ingest.clock.advance(1)
            writer.write(REQUEST)
            async with asyncio.timeout(5):
                response = await read_response(reader)
            assert response is not None
            assert response.status == 204
            [connection] = list(guard._open)
            await wait_until(lambda c=connection: c.phase is Phase.IDLE, what="idle")  # type: ignore[misc]
            assert connection.read_deadline is None
            assert connection.phase_since > before, f"request {number}: not moved to the end"
    finally:
        writer.close()
    assert len(ingest.publisher.records) == 3
