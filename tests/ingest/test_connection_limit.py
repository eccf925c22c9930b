"""File descriptors never run out (contract §3): open connections are capped below the limit, the
stalest idle or slow connection makes room for a new one, refusals and evictions are counted
and logged, and the soft limit is raised at start-up where the hard limit allows.

The cap's behaviour is tested broker-free on the production server in this process with a
small cap; raising the descriptor limit needs a process of its own (``RLIMIT_NOFILE``).
"""

from __future__ import annotations

import asyncio
import logging

import orjson
import pytest

from ingest.http.connections import RESERVED_DESCRIPTORS
from tests.ingest.conftest import IngestFactory
from tests.ingest.fake_publisher import FakePublisher, Mode
from tests.ingest.hostile import spawned_target
from tests.ingest.inprocess import InProcessIngest, wait_until
from tests.ingest.raw_http import read_response, request_bytes
from tests.ingest.test_observability import sample

CAP = 64
STALLED = 2 * CAP
BODY = orjson.dumps({"event": "session:started", "session_id": "s-fd", "room_id": "r"})
REQUEST = request_bytes(BODY, [(b"Content-Type", b"application/json")])
Connections = list[tuple[asyncio.StreamReader, asyncio.StreamWriter]]


@pytest.fixture
async def ingest(make_ingest: IngestFactory) -> InProcessIngest:
    return await make_ingest(max_connections=CAP)


async def open_stalled(ingest: InProcessIngest, count: int, tag: bytes) -> Connections:
    """``count`` connections, each with half a request sent."""
    opened: Connections = []
    for number in range(count):
        reader, writer = await asyncio.open_connection("127.0.0.1", ingest.port)
        writer.write(b"POST /callbacks HTTP/1.1\r\nHost: x\r\nX-%s: %d" % (tag, number))
        opened.append((reader, writer))
    return opened


async def test_stalled_connections_beyond_the_cap_do_not_lock_out_a_sender(
    ingest: InProcessIngest, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="ingest")
    before = await ingest.metrics()
    stalled = await open_stalled(ingest, STALLED, b"Stall")
    try:
        await wait_until(lambda: ingest.open_connections == CAP, what="the cap reached")
        # A legitimate sender, on fresh connections, is answered every time.
        for _ in range(20):
            response = await ingest.exchange(REQUEST, within=5)
            assert response is not None, "the sender's connection was closed unanswered"
            assert response.status == 204, response
        metrics = await ingest.metrics()
    finally:
        for _, writer in stalled:
            writer.close()
    assert ingest.open_connections <= CAP
    evicted = 'ingest_connections_closed_total{reason="evicted"}'
    assert sample(metrics, evicted) - sample(before, evicted) >= STALLED - CAP
    assert len(ingest.publisher.records) == 20
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR or r.exc_info]
    limit_lines = [r.getMessage() for r in caplog.records if "connection limit of" in r.msg]
    assert 1 <= len(limit_lines) <= 3, "evictions are logged, but never one line each"
    assert f"connection limit of {CAP} reached" in limit_lines[0]


async def test_evicted_slow_connections_get_a_json_503(ingest: InProcessIngest) -> None:
    """The stalest slow connection is answered (not just cut) when it makes room."""
    [(first_reader, first_writer)] = await open_stalled(ingest, 1, b"Oldest")
    await wait_until(lambda: ingest.open_connections == 1, what="the first connection")
    others = await open_stalled(ingest, CAP, b"Later")
    try:
        async with asyncio.timeout(5):
            response = await read_response(first_reader)
        assert response is not None
        assert response.status == 503
        assert response.headers["retry-after"]
        assert response.json()["error"] == "unavailable"
    finally:
        first_writer.close()
        for _, writer in others:
            writer.close()


async def test_at_the_cap_with_every_connection_answering_a_new_one_is_refused(
    make_ingest: IngestFactory,
) -> None:
    publisher = FakePublisher(mode=Mode.HANG)
    ingest = await make_ingest(max_connections=2, publisher=publisher)
    answering = [await asyncio.open_connection("127.0.0.1", ingest.port) for _ in range(2)]
    try:
        for _, writer in answering:
            writer.write(REQUEST)
        await wait_until(lambda: publisher.waiting == 2, what="both requests being answered")
        refused = await ingest.exchange(REQUEST, within=5)
        assert refused is not None
        assert refused.status == 503
        assert refused.json()["error"] == "unavailable"
        assert refused.headers["retry-after"] == str(ingest.server.settings.retry_after_s)
        publisher.release()
        for reader, _ in answering:
            async with asyncio.timeout(5):
                answered = await read_response(reader)
            assert answered is not None
            assert answered.status == 204
    finally:
        for _, writer in answering:
            writer.close()


def test_the_soft_limit_is_raised_to_the_hard_limit(
    kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory
) -> None:
    with spawned_target(
        kafka_bootstrap, tmp_path_factory.mktemp("raise"), descriptor_limit=(256, 1024)
    ) as target:
        [listening] = [
            orjson.loads(line)
            for line in target.service.log().splitlines()
            if "ingest listening" in line
        ]
    assert listening["descriptor_limit"] == 1024
    assert listening["max_connections"] == 1024 - RESERVED_DESCRIPTORS
