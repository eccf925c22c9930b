"""Slow clients cannot hold the service (contract §3): headers and body must arrive within
``INGEST_READ_TIMEOUT_S``, then ``408`` and the connection closes; meanwhile a normal sender
is answered as usual.

Broker-free and sleep-free: the production server in this process, its read deadlines on a
fake clock the test moves (``time_passes``: advance, then the sweep production runs
periodically)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import orjson
import pytest

from ingest.http.connections import Phase
from servicekit.aiohttp_internals import ObservedConnection
from tests.ingest.conftest import IngestFactory
from tests.ingest.inprocess import InProcessIngest, wait_until
from tests.ingest.raw_http import RawResponse, read_response, request_bytes
from tests.ingest.test_observability import sample

READ_TIMEOUT_S = 10.0
ANSWER_WITHIN_S = 5.0
"""Real time a test waits for an answer it expects now (it comes in milliseconds)."""
BODY = orjson.dumps({"event": "session:started", "session_id": "s-slow", "room_id": "r"})
REQUEST = request_bytes(BODY, [(b"Content-Type", b"application/json")])
PARTIAL_HEADER = b"POST /callbacks HTTP/1.1\r\nHost: x\r\nX-Par"
PARTIAL_BODY = REQUEST[: REQUEST.index(b"\r\n\r\n") + 14]


@pytest.fixture
async def ingest(make_ingest: IngestFactory) -> InProcessIngest:
    return await make_ingest(read_timeout_s=READ_TIMEOUT_S)


@asynccontextmanager
async def connection(
    ingest: InProcessIngest, sent: bytes = b""
) -> AsyncIterator[tuple[asyncio.StreamReader, asyncio.StreamWriter]]:
    """A connection that sent ``sent``, once the server has seen it (accepted, and a partial
    request's bytes read; a whole request's answer is the test's to read)."""
    before = ingest.open_connections
    reader, writer = await asyncio.open_connection("127.0.0.1", ingest.port)
    try:
        await wait_until(lambda: ingest.open_connections > before, what="accepted")
        if sent:
            writer.write(sent)
            await writer.drain()
            if sent != REQUEST:
                await wait_until(lambda: not any_idle(ingest), what="the bytes read")
        yield reader, writer
    finally:
        writer.close()


def any_idle(ingest: InProcessIngest) -> bool:
    return any(c.phase is Phase.IDLE for c in ingest.server.runner.guard._open)


def phases(ingest: InProcessIngest) -> list[Phase]:
    return [connection.phase for connection in ingest.server.runner.guard._open]


async def answer_then_close(reader: asyncio.StreamReader) -> RawResponse | None:
    """The response (if any) and then EOF, both within ``ANSWER_WITHIN_S``."""
    async with asyncio.timeout(ANSWER_WITHIN_S):
        response = await read_response(reader)
        assert await reader.read() == b"", "the connection stayed open after the answer"
    return response


def request_timeout(response: RawResponse | None) -> None:
    assert response is not None
    assert response.status == 408, response
    payload = response.json()
    assert payload["error"] == "request_timeout"
    assert payload["detail"]


async def test_half_a_header_line_gets_408_and_is_closed(ingest: InProcessIngest) -> None:
    async with connection(ingest, PARTIAL_HEADER) as (reader, _):
        assert ingest.time_passes(READ_TIMEOUT_S - 0.1) == 0  # not yet
        assert ingest.time_passes(0.1) == 1
        request_timeout(await answer_then_close(reader))


async def test_a_silent_connection_is_closed(ingest: InProcessIngest) -> None:
    async with connection(ingest) as (reader, _):
        assert ingest.time_passes(READ_TIMEOUT_S) == 1
        assert await answer_then_close(reader) is None


async def test_headers_and_part_of_the_body_get_408_and_are_closed(
    ingest: InProcessIngest,
) -> None:
    async with connection(ingest, PARTIAL_BODY) as (reader, _):
        await wait_until(lambda: phases(ingest) == [Phase.BODY], what="the body being read")
        assert ingest.time_passes(READ_TIMEOUT_S) == 1
        request_timeout(await answer_then_close(reader))
    assert ingest.publisher.records == []


async def test_trickling_headers_do_not_extend_the_deadline(
    ingest: InProcessIngest, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A byte at a time keeps the connection busy but not alive: the deadline is fixed."""
    chunks_read = 0
    data_received = ObservedConnection.data_received

    def counting(connection: ObservedConnection, data: bytes) -> None:
        nonlocal chunks_read
        chunks_read += 1
        data_received(connection, data)

    monkeypatch.setattr(ObservedConnection, "data_received", counting)
    async with connection(ingest) as (reader, writer):
        trickled = b"POST /callbacks HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"a" * 40
        step = READ_TIMEOUT_S / (len(trickled) + 1)
        for number, byte in enumerate(trickled, start=1):
            writer.write(bytes([byte]))
            await writer.drain()
            await wait_until(lambda n=number: chunks_read == n, what="the byte read")  # type: ignore[misc]
            assert ingest.time_passes(step) == 0
        assert ingest.time_passes(step * 1.01) == 1  # the deadline is from the accept
        request_timeout(await answer_then_close(reader))


async def test_a_keep_alive_connection_is_not_a_slow_one(ingest: InProcessIngest) -> None:
    """Idle between requests is allowed (the keep-alive timeout governs that)."""
    async with connection(ingest, REQUEST) as (reader, writer):
        first = await read_response(reader)
        assert first is not None
        assert first.status == 204
        await wait_until(lambda: phases(ingest) == [Phase.IDLE], what="between requests")
        assert ingest.time_passes(READ_TIMEOUT_S * 1.5) == 0  # idle longer than the timeout
        writer.write(REQUEST)
        second = await read_response(reader)
        assert second is not None
        assert second.status == 204


async def test_a_late_request_on_a_keep_alive_connection_gets_its_own_deadline(
    ingest: InProcessIngest,
) -> None:
    async with connection(ingest, REQUEST) as (reader, writer):
        assert (await read_response(reader)) is not None
        await wait_until(lambda: phases(ingest) == [Phase.IDLE], what="between requests")
        ingest.time_passes(READ_TIMEOUT_S * 3)
        writer.write(PARTIAL_HEADER)
        await wait_until(lambda: phases(ingest) == [Phase.HEADERS], what="headers arriving")
        assert ingest.time_passes(READ_TIMEOUT_S - 0.1) == 0
        assert ingest.time_passes(0.1) == 1
        request_timeout(await answer_then_close(reader))


async def test_many_stalled_connections_do_not_delay_a_normal_sender(
    ingest: InProcessIngest,
) -> None:
    before = await ingest.metrics()
    stalled = [await asyncio.open_connection("127.0.0.1", ingest.port) for _ in range(200)]
    try:
        for number, (_, writer) in enumerate(stalled):
            writer.write(PARTIAL_HEADER if number % 2 else PARTIAL_BODY)
        await wait_until(
            lambda: ingest.open_connections == 200 and not any_idle(ingest),
            what="every stalled connection accepted and its bytes read",
        )
        # While they are all open, a sender gets its answers at once.
        for _ in range(5):
            response = await ingest.exchange(REQUEST, within=ANSWER_WITHIN_S)
            assert response is not None
            assert response.status == 204
        assert ingest.time_passes(READ_TIMEOUT_S) == 200
        for reader, _ in stalled:
            request_timeout(await answer_then_close(reader))
    finally:
        for _, writer in stalled:
            writer.close()
    series = 'ingest_connections_closed_total{reason="read_timeout"}'
    assert sample(await ingest.metrics(), series) == sample(before, series) + 200


async def test_the_sweep_runs_by_itself(
    make_ingest: IngestFactory, caplog: pytest.LogCaptureFixture
) -> None:
    """Production's periodic sweep (a quarter of the timeout, here 50 ms of real time)."""
    ingest = await make_ingest(read_timeout_s=0.2)
    async with connection(ingest, PARTIAL_HEADER) as (reader, _):
        ingest.clock.advance(1.0)  # no explicit sweep: the periodic one answers
        request_timeout(await answer_then_close(reader))
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
