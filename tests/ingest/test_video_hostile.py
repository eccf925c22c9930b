"""Hostile bytes on the Vonage Video routes get a JSON 4xx, never a 500 and never a traceback
(contract §3 "Hostile input", which §7 keeps). Raw sockets to the production server in this process
(the fake publisher: broker-free), both Video routes signed; after each test its log holds no
traceback and no error."""

from __future__ import annotations

import gzip
import logging
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import replace

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ingest.routes import VIDEO_ARCHIVES_ROUTE, VIDEO_ROUTES, VIDEO_SESSIONS_ROUTE
from servicekit.env import Secret
from tests.ingest.inprocess import InProcessIngest, fake_settings, running_ingest, threaded_ingest
from tests.ingest.raw_http import exchange, exchange_blocking, request_bytes
from tests.ingest.test_hostile_input import assert_quiet, json_error, post
from tests.ingest.vonage_signing import ARCHIVES_SECRET, SESSIONS_SECRET, vonage_token
from tests.video_examples import ARCHIVE_AVAILABLE, CONNECTION_CREATED

SECRETS = {VIDEO_SESSIONS_ROUTE: SESSIONS_SECRET, VIDEO_ARCHIVES_ROUTE: ARCHIVES_SECRET}
VIDEO_SETTINGS = replace(
    fake_settings(),  # Meetings authentication configured too
    video_sessions_secret=Secret(SESSIONS_SECRET),
    video_archives_secret=Secret(ARCHIVES_SECRET),
)


@pytest.fixture
async def target(caplog: pytest.LogCaptureFixture) -> AsyncIterator[InProcessIngest]:
    caplog.set_level(logging.DEBUG, logger="ingest")
    async with running_ingest(VIDEO_SETTINGS) as ingest:
        yield ingest
    assert_quiet(caplog)


def authentic(body: bytes, *extra: tuple[bytes, bytes], route: str = VIDEO_SESSIONS_ROUTE) -> bytes:
    """A request Vonage would sign: the route's JWT over ``body`` (bare, as Vonage may send)."""
    headers = [
        (b"Content-Type", b"application/json"),
        (b"Authorization", vonage_token(body, SECRETS[route]).encode()),
        *extra,
    ]
    return request_bytes(body, headers, target=route.encode())


def with_value(value: bytes, field: bytes = b"x") -> bytes:
    return b'{"event": "connectionCreated", "sessionId": "s", "' + field + b'": "' + value + b'"}'


BAD_BODIES: list[tuple[str, bytes]] = [
    ("invalid utf-8 in event", b'{"event": "connection\xffCreated", "sessionId": "s"}'),
    ("invalid utf-8 in sessionId", b'{"event": "connectionCreated", "sessionId": "s\xfe"}'),
    ("invalid utf-8 in another value", with_value(b"caf\xe9")),
    ("invalid utf-8 in a key", with_value(b"v", field=b"k\xff")),
    ("invalid utf-8 in connection.data",
     b'{"event": "x", "sessionId": "s", "connection": {"id": "c", "data": "\xc0\xaf"}}'),
    ("encoded surrogate", with_value(b"\xed\xa0\x80")),
    ("truncated multi-byte sequence", with_value(b"\xe2\x82")),
    ("60 KB sessionId", b'{"event": "x", "sessionId": "' + b"s" * 60_000 + b'"}'),
    ("nested 10,000 deep", with_value(b"v").replace(b'"v"', b"[" * 10_000 + b"]" * 10_000)),
    ("binary noise", bytes(range(256))),
]  # fmt: skip


@pytest.mark.parametrize("body", [case[1] for case in BAD_BODIES], ids=[c[0] for c in BAD_BODIES])
@pytest.mark.parametrize("route", VIDEO_ROUTES)
async def test_bad_bodies_are_400(target: InProcessIngest, route: str, body: bytes) -> None:
    json_error(await exchange(target.port, authentic(body, route=route)), 400)
    assert target.publisher.records == []


HEADER_CASES: list[tuple[str, tuple[bytes, bytes], int]] = [
    ("non-utf-8 content-type", (b"Content-Type", b"application/json; x=\xff"), 415),
    ("non-utf-8 bearer token", (b"Authorization", b"Bearer ey\xff.e30.x"), 401),
    ("non-utf-8 bare token", (b"Authorization", b"ey\xff.e30.x"), 401),
    ("empty authorization", (b"Authorization", b""), 401),
    ("bearer without a token", (b"Authorization", b"Bearer "), 401),
    ("unknown content-encoding", (b"Content-Encoding", b"x-unknown"), 415),
]


@pytest.mark.parametrize(
    ("replaced", "status"),
    [case[1:] for case in HEADER_CASES],
    ids=[case[0] for case in HEADER_CASES],
)
async def test_hostile_header_values_get_json_4xx(
    target: InProcessIngest, replaced: tuple[bytes, bytes], status: int
) -> None:
    signed = authentic(CONNECTION_CREATED).split(b"\r\n")
    kept = [line for line in signed if not line.lower().startswith(replaced[0].lower() + b":")]
    request = b"\r\n".join([*kept[:2], replaced[0] + b": " + replaced[1], *kept[2:]])
    json_error(await exchange(target.port, request), status)
    assert target.publisher.records == []


async def test_a_corrupt_gzip_body_is_400(target: InProcessIngest) -> None:
    garbage = b"\x1f\x8b\x08\x00 this is not compressed data at all"
    request = authentic(garbage, (b"Content-Encoding", b"gzip"), route=VIDEO_ARCHIVES_ROUTE)
    assert json_error(await exchange(target.port, request), 400)["error"] == "invalid_body"


async def test_a_gzipped_callback_is_stored_decompressed(target: InProcessIngest) -> None:
    token = vonage_token(ARCHIVE_AVAILABLE, ARCHIVES_SECRET)  # over the body the app reads
    headers = [(b"Authorization", token.encode()), (b"Content-Encoding", b"gzip")]
    packed = gzip.compress(ARCHIVE_AVAILABLE)
    response = await exchange(
        target.port, request_bytes(packed, headers, target=VIDEO_ARCHIVES_ROUTE.encode())
    )
    assert response is not None
    assert (response.status, response.body) == (200, b"")
    assert [record.body for record in target.publisher.records] == [ARCHIVE_AVAILABLE]


@pytest.mark.parametrize(
    "request_data",
    [
        post(b"Content-Length: 2", target=b"/video/sessions\xff"),
        post(b"Content-Length: 2", b"Content-Length: 3", target=b"/video/archives"),
        post(b"X-A: a\x00b", b"Content-Length: 2", target=b"/video/sessions"),
    ],
    ids=["non-utf-8 path", "duplicate content-length", "NUL in a header"],
)
async def test_unparseable_requests_get_json_400(
    target: InProcessIngest, request_data: bytes
) -> None:
    json_error(await exchange(target.port, request_data), 400)


# -- fuzzed --------------------------------------------------------------------------------

ALLOWED_STATUSES = {200, 400, 401}
characters = st.characters(exclude_categories=["Cs"])
text = st.text(characters, max_size=30)
number = st.integers(-(2**63), 2**63 - 1)


@st.composite
def video_requests(draw: st.DrawFn) -> tuple[bytes, bytes]:
    """A request to a Video route and the body a ``200`` must have stored."""
    route = draw(st.sampled_from(VIDEO_ROUTES))
    fields: dict[str, object] = orjson.loads(
        CONNECTION_CREATED if route == VIDEO_SESSIONS_ROUTE else ARCHIVE_AVAILABLE
    )
    for name in draw(st.lists(st.sampled_from(sorted(fields)), max_size=2)):
        fields[name] = draw(
            st.one_of(text, st.integers(-(2**63), 2**63 - 1), st.none(), st.just("x" * 257))
        )
    body = orjson.dumps(fields)
    if draw(st.integers(0, 3)) == 0:  # raw bytes somewhere
        at = draw(st.integers(0, len(body)))
        body = body[:at] + draw(st.binary(min_size=1, max_size=4)) + body[at:]
    token = vonage_token(body, SECRETS[route])
    authorization = draw(
        st.sampled_from([token.encode(), b"Bearer " + token.encode(), b""])
        | st.binary(max_size=60).map(lambda v: v.replace(b"\r", b"").replace(b"\n", b""))
    )
    headers = [(b"Content-Type", b"application/json"), (b"Authorization", authorization)]
    return request_bytes(body, headers, target=route.encode()), body


def test_fuzzed_video_requests_get_an_allowed_json_answer(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO)
    seen: Counter[int] = Counter()
    stored: set[bytes] = set()
    with threaded_ingest(VIDEO_SETTINGS) as ingest:

        @settings(max_examples=150, suppress_health_check=[HealthCheck.too_slow], deadline=None)
        @given(sent=video_requests())
        def check(sent: tuple[bytes, bytes]) -> None:
            request, body = sent
            response = exchange_blocking(ingest.port, request)
            assert response is not None, "the connection closed without an answer"
            assert response.status in ALLOWED_STATUSES, response
            seen[response.status] += 1
            if response.status == 200:
                assert response.body == b""
                stored.add(body)
                return
            payload = response.json()
            assert isinstance(payload["error"], str)
            assert payload["detail"]

        check()
        published = {record.body for record in ingest.publisher.records}
    assert set(seen) == ALLOWED_STATUSES, seen
    assert published == stored
    assert_quiet(caplog)
