"""Slow clients cannot hold the service (SPEC §3): headers and body must arrive within
``INGEST_READ_TIMEOUT_S``, then ``408`` and the connection closes; meanwhile a normal sender
is answered as usual."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager

import orjson
import pytest

from tests.ingest.hostile import HostileTarget, assert_quiet_log, spawned_target
from tests.ingest.raw_http import RawResponse, exchange, read_response, request_bytes
from tests.ingest.raw_http import signed_headers as authentic_headers
from tests.ingest.test_observability import sample

READ_TIMEOUT_S = 1.0
GRACE_S = 5.0
"""Upper bound on when a timed-out connection must be closed (timeout plus scheduling slack)."""
BODY = orjson.dumps({"event": "session:started", "session_id": "s-slow", "room_id": "r"})


def authentic_request() -> bytes:
    """A signed callback, signed now (a token signed at import would expire in a long run)."""
    return request_bytes(BODY, authentic_headers(BODY))


@pytest.fixture(scope="module")
def slow_target(
    kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[HostileTarget]:
    environ = {"INGEST_READ_TIMEOUT_S": str(READ_TIMEOUT_S)}
    with spawned_target(kafka_bootstrap, tmp_path_factory.mktemp("slow"), environ) as target:
        yield target


@pytest.fixture
def target(slow_target: HostileTarget) -> Iterator[HostileTarget]:
    slow_target.log_offset = len(slow_target.service.log())
    yield slow_target
    assert_quiet_log(slow_target.new_log())


@asynccontextmanager
async def connection(
    port: int, sent: bytes = b""
) -> AsyncIterator[tuple[asyncio.StreamReader, asyncio.StreamWriter]]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        if sent:
            writer.write(sent)
            await writer.drain()
        yield reader, writer
    finally:
        writer.close()


async def answer_then_close(reader: asyncio.StreamReader) -> RawResponse | None:
    """The response (if any) and then EOF, both within ``GRACE_S``."""
    async with asyncio.timeout(GRACE_S):
        response = await read_response(reader)
        assert await reader.read() == b"", "the connection stayed open after the answer"
    return response


def request_timeout(response: RawResponse | None) -> None:
    assert response is not None
    assert response.status == 408, response
    payload = response.json()
    assert payload["error"] == "request_timeout"
    assert payload["detail"]


async def test_half_a_header_line_gets_408_and_is_closed(target: HostileTarget) -> None:
    async with connection(target.port, b"POST /callbacks HTTP/1.1\r\nHost: x\r\nX-Par") as (r, _):
        request_timeout(await answer_then_close(r))


async def test_a_silent_connection_is_closed(target: HostileTarget) -> None:
    async with connection(target.port) as (reader, _):
        assert await answer_then_close(reader) is None


async def test_headers_and_part_of_the_body_get_408_and_are_closed(target: HostileTarget) -> None:
    request = authentic_request()
    async with connection(target.port, request[: request.index(b"\r\n\r\n") + 14]) as (r, _):
        request_timeout(await answer_then_close(r))


async def test_trickling_headers_do_not_extend_the_deadline(target: HostileTarget) -> None:
    """A byte at a time keeps the connection busy but not alive: the deadline is fixed."""
    async with connection(target.port) as (reader, writer):
        began = time.monotonic()

        async def trickle() -> None:
            for byte in b"POST /callbacks HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"a" * 1000:
                writer.write(bytes([byte]))
                await asyncio.sleep(READ_TIMEOUT_S / 10)  # the slow client's pace

        sender = asyncio.create_task(trickle())
        try:
            request_timeout(await answer_then_close(reader))
        finally:
            sender.cancel()
        assert time.monotonic() - began < GRACE_S


async def test_a_keep_alive_connection_is_not_a_slow_one(target: HostileTarget) -> None:
    """Idle between requests is allowed (the keep-alive timeout governs that)."""
    request = authentic_request()
    async with connection(target.port, request) as (reader, writer):
        first = await read_response(reader)
        assert first is not None
        assert first.status == 204
        await asyncio.sleep(READ_TIMEOUT_S * 1.5)  # idle longer than the read timeout
        writer.write(request)
        second = await read_response(reader)
        assert second is not None
        assert second.status == 204


async def test_many_stalled_connections_do_not_delay_a_normal_sender(
    target: HostileTarget,
) -> None:
    before = await metrics(target)
    partial_header = b"POST /callbacks HTTP/1.1\r\nHost: x\r\nX-Par"
    request = authentic_request()
    partial_body = request[: request.index(b"\r\n\r\n") + 14]
    stalled = [await asyncio.open_connection("127.0.0.1", target.port) for _ in range(300)]
    try:
        for number, (_, writer) in enumerate(stalled):
            writer.write(partial_header if number % 2 else partial_body)
        # While they are all open (their deadline is READ_TIMEOUT_S away), a sender gets its
        # answers; each exchange is bounded well below the read timeout.
        for _ in range(5):
            response = await exchange(target.port, request, within=READ_TIMEOUT_S / 2)
            assert response is not None
            assert response.status == 204
        for reader, _ in stalled:
            request_timeout(await answer_then_close(reader))
    finally:
        for _, writer in stalled:
            writer.close()
    series = 'ingest_connections_closed_total{reason="read_timeout"}'
    assert sample(await metrics(target), series) >= sample(before, series) + 300


async def metrics(target: HostileTarget) -> str:
    response = await exchange(target.port, request_bytes(b"", target=b"/metrics", method=b"GET"))
    assert response is not None
    return response.body.decode()
