"""Hostile bytes get a JSON 4xx, never a 500 and never a traceback (contract §3 "Hostile input").

Every request here goes over a raw socket to the production server in this process (the fake
publisher: broker-free) with a shared token and signed callbacks configured; authentic requests
carry both, so the body checks are reached. After each test its log must hold no traceback and
no error.
"""

from __future__ import annotations

import asyncio
import gzip
import logging
import zlib
from collections.abc import AsyncIterator

import orjson
import pytest

from tests.ingest.fake_publisher import Published
from tests.ingest.inprocess import InProcessIngest, fake_settings, running_ingest
from tests.ingest.raw_http import (
    RawResponse,
    exchange,
    read_response,
    request_bytes,
    signed_headers,
)
from tests.ingest.test_observability import sample
from tests.kafka_helpers import wait_until

VALID = orjson.dumps({"event": "session:started", "session_id": "s-1", "room_id": "r-1"})
HostileTarget = InProcessIngest


@pytest.fixture
async def target(caplog: pytest.LogCaptureFixture) -> AsyncIterator[InProcessIngest]:
    """Authentication configured; afterwards, no traceback and nothing logged at error."""
    caplog.set_level(logging.DEBUG, logger="ingest")
    async with running_ingest(fake_settings()) as ingest:
        yield ingest
    assert_quiet(caplog)


def assert_quiet(caplog: pytest.LogCaptureFixture) -> None:
    loud = [r for r in caplog.records if r.levelno >= logging.ERROR or r.exc_info]
    assert loud == [], [r.getMessage() for r in loud]


def stored(target: InProcessIngest, body: bytes) -> Published:
    [record] = [record for record in target.publisher.records if record.body == body]
    return record


def authentic(body: bytes, *extra: tuple[bytes, bytes], target: bytes = b"/callbacks") -> bytes:
    return request_bytes(body, [*signed_headers(body), *extra], target=target)


def json_error(response: RawResponse | None, status: int) -> dict[str, object]:
    assert response is not None, "the connection closed without an answer"
    assert response.status == status, response
    payload = response.json()
    assert isinstance(payload, dict)
    assert isinstance(payload["error"], str)
    assert isinstance(payload["detail"], str)
    assert payload["detail"]
    return payload


def body_with(value: bytes, field: bytes = b"x") -> bytes:
    return b'{"event": "session:started", "session_id": "s", "' + field + b'": "' + value + b'"}'


BAD_BODIES: list[tuple[str, bytes]] = [
    ("invalid utf-8 in event", b'{"event": "session:st\xffarted", "session_id": "s"}'),
    ("invalid utf-8 in session_id", b'{"event": "session:started", "session_id": "s\xfe"}'),
    ("invalid utf-8 in another value", body_with(b"caf\xe9")),
    ("invalid utf-8 in a key", body_with(b"v", field=b"k\xff")),
    ("overlong encoding", body_with(b"\xc0\xaf")),
    ("encoded surrogate", body_with(b"\xed\xa0\x80")),
    ("truncated multi-byte sequence", body_with(b"\xe2\x82")),
    ("60 KB session_id", b'{"event": "session:started", "session_id": "' + b"s" * 60_000 + b'"}'),
    ("300-character room_id", body_with(b"r" * 300, b"room_id")),
    ("300-character participant_id", body_with(b"p" * 300, b"participant_id")),
    ("300-character recording_id", body_with(b"c" * 300, b"recording_id")),
]  # fmt: skip


@pytest.mark.parametrize("body", [case[1] for case in BAD_BODIES], ids=[c[0] for c in BAD_BODIES])
async def test_bad_bodies_are_400(target: HostileTarget, body: bytes) -> None:
    json_error(await exchange(target.port, authentic(body)), 400)


async def test_ids_of_256_characters_and_utf8_text_are_stored(target: HostileTarget) -> None:
    body = orjson.dumps(
        {"event": "session:started", "session_id": "é" * 256, "room_id": "r" * 256, "n": "🎉"}
    )
    response = await exchange(target.port, authentic(body))
    assert response is not None
    assert response.status == 204, response
    assert stored(target, body).key == ("é" * 256).encode()


HEADER_CASES: list[tuple[str, list[tuple[bytes, bytes]], int]] = [
    ("non-utf-8 content-type parameter", [(b"Content-Type", b"application/json; x=\xff")], 415),
    ("non-utf-8 token", [(b"X-Callback-Token", b"tok\xffen-of-enough-length")], 401),
    ("non-utf-8 authorization", [(b"Authorization", b"Bearer ey\xff.e30.x")], 401),
    ("unknown content-encoding", [(b"Content-Encoding", b"x-unknown")], 415),
    ("brotli content-encoding", [(b"Content-Encoding", b"br")], 415),
    ("two content-encodings", [(b"Content-Encoding", b"gzip, gzip")], 415),
]


@pytest.mark.parametrize(
    ("replaced", "status"),
    [case[1:] for case in HEADER_CASES],
    ids=[case[0] for case in HEADER_CASES],
)
async def test_hostile_header_values_get_json_4xx(
    target: HostileTarget, replaced: list[tuple[bytes, bytes]], status: int
) -> None:
    names = {name.lower() for name, _ in replaced}
    headers = [h for h in signed_headers(VALID) if h[0].lower() not in names] + replaced
    json_error(await exchange(target.port, request_bytes(VALID, headers)), status)


@pytest.mark.parametrize("token", [b"%FF%FE-not-utf-8-at-all", b"%ED%A0%80-surrogate", b"%00"])
async def test_hostile_query_tokens_are_401(target: HostileTarget, token: bytes) -> None:
    headers = [h for h in signed_headers(VALID) if h[0] != b"X-Callback-Token"]
    request = request_bytes(VALID, headers, target=b"/callbacks?token=" + token)
    payload = json_error(await exchange(target.port, request), 401)
    assert payload["detail"] == "wrong token"


@pytest.mark.parametrize("encoding", [b"gzip", b"deflate"])
async def test_corrupt_compressed_bodies_are_400(target: HostileTarget, encoding: bytes) -> None:
    garbage = b"\x1f\x8b\x08\x00 this is not compressed data at all"
    request = authentic(garbage, (b"Content-Encoding", encoding))
    payload = json_error(await exchange(target.port, request), 400)
    assert payload["error"] == "invalid_body"


@pytest.mark.parametrize("encoding", [b"gzip", b"deflate"])
async def test_compressed_bodies_are_stored_decompressed(
    target: HostileTarget, encoding: bytes
) -> None:
    body = orjson.dumps({"event": "session:ended", "session_id": f"{encoding.decode()}-1"})
    packed = gzip.compress(body) if encoding == b"gzip" else zlib.compress(body)
    # The signature covers the body the application reads: the decompressed JSON.
    headers = [*signed_headers(body), (b"Content-Encoding", encoding)]
    response = await exchange(target.port, request_bytes(packed, headers))
    assert response is not None
    assert response.status == 204, response
    assert stored(target, body).body == body  # decompressed, byte for byte


LONG = b"a" * 100_000


def post(*header_lines: bytes, target: bytes = b"/callbacks", body: bytes = b"{}") -> bytes:
    """A POST whose every header line is given (only ``Host`` is added)."""
    return b"\r\n".join([b"POST " + target + b" HTTP/1.1", b"Host: x", *header_lines, b"", body])


TWO = b"Content-Length: 2"
PARSER_CASES: list[tuple[str, bytes]] = [
    ("non-utf-8 byte in the path", post(TWO, target=b"/callbacks\xff")),
    ("non-utf-8 byte in the query", post(TWO, target=b"/callbacks?token=\xff")),
    ("NUL in a header value", post(b"X-A: a\x00b", TWO)),
    ("garbage request line", b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03 garbage\r\n\r\n"),
    ("content-length with transfer-encoding",
     post(TWO, b"Transfer-Encoding: chunked", body=b"2\r\n{}\r\n0\r\n\r\n")),
    ("non-numeric content-length", post(b"Content-Length: two")),
    ("duplicate content-length", post(TWO, b"Content-Length: 3")),
    ("5,000 header fields", post(*(b"X-%d: v" % i for i in range(5000)), body=b"")),
    ("100 KB header value", post(b"X-Big: " + LONG, body=b"")),
    ("100 KB request target", post(target=b"/callbacks?" + LONG, body=b"")),
    ("bad chunk size", post(b"Transfer-Encoding: chunked", body=b"zz\r\n{}\r\n0\r\n\r\n")),
]  # fmt: skip


@pytest.mark.parametrize(
    "request_data", [case[1] for case in PARSER_CASES], ids=[case[0] for case in PARSER_CASES]
)
async def test_unparseable_requests_get_json_4xx(
    target: HostileTarget, request_data: bytes
) -> None:
    response = await exchange(target.port, request_data)
    assert response is not None, "the connection closed without an answer"
    assert 400 <= response.status < 500, response
    json_error(response, response.status)


async def test_leftover_bytes_after_a_short_content_length(target: HostileTarget) -> None:
    """The body is shorter than the bytes sent: the rest is parsed as a garbage request."""
    request = authentic(VALID).replace(b"Content-Length: %d" % len(VALID), b"Content-Length: 2")
    reader, writer = await asyncio.open_connection("127.0.0.1", target.port)
    try:
        writer.write(request + b"\r\n")
        async with asyncio.timeout(10):
            json_error(await read_response(reader), 400)
            assert await reader.read() == b"", "the connection stays open after garbage"
    finally:
        writer.close()


async def test_unknown_routes_and_methods_have_a_detail(target: HostileTarget) -> None:
    missing = json_error(await exchange(target.port, authentic(VALID, target=b"/nowhere")), 404)
    assert "/nowhere" in str(missing["detail"])
    response = await exchange(target.port, request_bytes(b"", method=b"GET"))
    payload = json_error(response, 405)
    assert response is not None
    assert response.headers["allow"] == "POST"
    assert "GET" in str(payload["detail"])


async def test_a_callback_sent_after_100_continue_is_stored(target: HostileTarget) -> None:
    body = orjson.dumps({"event": "session:started", "session_id": "s-expect", "room_id": "r"})
    request = authentic(body, (b"Expect", b"100-continue"), target=b"/callbacks/sessions")
    reader, writer = await asyncio.open_connection("127.0.0.1", target.port)
    try:
        writer.write(request.removesuffix(body))  # the head alone, then wait to be asked
        async with asyncio.timeout(10):
            assert (await reader.readuntil(b"\r\n\r\n")).startswith(b"HTTP/1.1 100")
            writer.write(body)
            response = await read_response(reader)
    finally:
        writer.close()
    assert response is not None
    assert response.status == 204, response
    assert stored(target, body).header("source-route") == b"/callbacks/sessions"


@pytest.mark.parametrize(
    ("method", "request_target", "status"),
    [
        (b"OPTIONS", b"*", 404),
        (b"POST", b"http://ingest/nowhere", 404),
        (b"POST", b"/callbacks/", 404),
        (b"POST", b"/a%0Ab", 404),
        (b"DELETE", b"/callbacks/rooms", 405),
        (b"PUT", b"/callbacks", 405),
        (b"POST", b"/healthz", 405),
    ],
)
async def test_odd_targets_and_methods_get_json_errors(
    target: HostileTarget, method: bytes, request_target: bytes, status: int
) -> None:
    response = await exchange(
        target.port,
        request_bytes(VALID, signed_headers(VALID), target=request_target, method=method),
    )
    payload = json_error(response, status)
    assert response is not None
    assert response.headers["x-request-id"] == payload["request_id"]
    if status == 405:
        assert response.headers["allow"] in {"POST", "GET,HEAD"}


async def test_a_client_vanishing_mid_body_is_not_a_server_error(target: HostileTarget) -> None:
    before = await metrics(target)
    request = authentic(VALID)
    for _ in range(20):
        _, writer = await asyncio.open_connection("127.0.0.1", target.port)
        writer.write(request[:-10])  # headers and most of the body
        await writer.drain()
        writer.transport.abort()  # a reset, as a crashed client would leave
    series = 'ingest_requests_total{route="/callbacks",status="client_closed"}'

    async def counted() -> bool:
        return sample(await metrics(target), series) >= sample(before, series) + 20

    await wait_until(counted, what="20 client_closed requests")
    assert 'status="500"' not in await metrics(target)


async def metrics(target: HostileTarget) -> str:
    response = await exchange(target.port, request_bytes(b"", target=b"/metrics", method=b"GET"))
    assert response is not None
    assert response.status == 200
    return response.body.decode()
