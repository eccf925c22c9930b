"""File descriptors never run out (SPEC §3): open connections are capped below the limit, the
stalest idle or slow connection makes room for a new one, refusals and evictions are counted
and logged, and the soft limit is raised at start-up where the hard limit allows.

The service runs with a small ``RLIMIT_NOFILE`` so a few hundred connections exhaust it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import orjson
import pytest

from ingest.connections import RESERVED_DESCRIPTORS
from tests.ingest.hostile import HostileTarget, assert_quiet_log, spawned_target
from tests.ingest.raw_http import exchange, request_bytes, signed_headers
from tests.ingest.test_observability import sample

DESCRIPTORS = 256
CAP = DESCRIPTORS - RESERVED_DESCRIPTORS
STALLED = 2 * DESCRIPTORS
BODY = orjson.dumps({"event": "session:started", "session_id": "s-fd", "room_id": "r"})


def authentic_request() -> bytes:
    """A signed callback, signed now (a token signed at import would expire in a long run)."""
    return request_bytes(BODY, signed_headers(BODY))


@pytest.fixture(scope="module")
def small_target(
    kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[HostileTarget]:
    # Stalled connections must not time out during the test: only the cap may close them.
    environ = {"INGEST_READ_TIMEOUT_S": "120"}
    with spawned_target(
        kafka_bootstrap, tmp_path_factory.mktemp("fd"), environ, descriptor_limit=DESCRIPTORS
    ) as target:
        yield target


async def test_stalled_connections_beyond_the_descriptor_limit_do_not_lock_out_a_sender(
    small_target: HostileTarget,
) -> None:
    target = small_target
    stalled: list[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = []
    try:
        for number in range(STALLED):
            reader, writer = await asyncio.open_connection("127.0.0.1", target.port)
            writer.write(b"POST /callbacks HTTP/1.1\r\nHost: x\r\nX-Stall: %d" % number)
            stalled.append((reader, writer))
        # A legitimate sender, on fresh connections, is answered every time.
        for _ in range(20):
            response = await exchange(target.port, authentic_request(), within=5)
            assert response is not None, "the sender's connection was closed unanswered"
            assert response.status == 204, response
        text = await exchange(target.port, request_bytes(b"", target=b"/metrics", method=b"GET"))
        assert text is not None
        metrics = text.body.decode()
    finally:
        for _, writer in stalled:
            writer.close()
    assert sample(metrics, "ingest_open_connections") <= CAP
    evicted = sample(metrics, 'ingest_connections_closed_total{reason="evicted"}')
    assert evicted >= STALLED - CAP  # the sender's own closed connections free slots too
    log = target.new_log()
    assert_quiet_log(log)
    limit_lines = [line for line in log.splitlines() if "connection limit of" in line]
    assert 1 <= len(limit_lines) <= 3, "evictions are logged, but never one line each"
    assert f"connection limit of {CAP} reached" in limit_lines[0]


async def test_evicted_slow_connections_get_a_json_503(small_target: HostileTarget) -> None:
    """The stalest slow connection is answered (not just cut) when it makes room."""
    target = small_target
    first_reader, first_writer = await asyncio.open_connection("127.0.0.1", target.port)
    first_writer.write(b"POST /callbacks HTTP/1.1\r\nHost: x\r\nX-Oldest: 1")
    others = []
    try:
        for _ in range(CAP):
            others.append(await asyncio.open_connection("127.0.0.1", target.port))
            others[-1][1].write(b"POST /callbacks HTTP/1.1\r\nHost: x\r\nX-Later: 1")
        from tests.ingest.raw_http import read_response

        async with asyncio.timeout(10):
            response = await read_response(first_reader)
        assert response is not None
        assert response.status == 503
        assert response.headers["retry-after"]
        assert response.json()["error"] == "unavailable"
    finally:
        first_writer.close()
        for _, writer in others:
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
