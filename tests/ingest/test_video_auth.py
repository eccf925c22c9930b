"""Vonage Video secure callbacks (contract §7): each Video route verifies the JWT Vonage signs with
that route's own secret, its ``payload_hash`` against the raw body bytes; a route without a
secret takes unsigned callbacks, and the Meetings authentication never applies to them.
Broker-free."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

import aiohttp
import orjson
import pytest

from ingest.routes import VIDEO_ARCHIVES_ROUTE, VIDEO_ROUTES, VIDEO_SESSIONS_ROUTE
from servicekit.env import Secret
from tests.ingest.conftest import ClientFactory
from tests.ingest.fake_publisher import FakePublisher
from tests.ingest.raw_http import SECRET, TOKEN
from tests.ingest.vonage_signing import ARCHIVES_SECRET, SESSIONS_SECRET, vonage_signed
from tests.video_examples import ARCHIVE_AVAILABLE, CONNECTION_CREATED, SESSION_ID

SECRETS = {VIDEO_SESSIONS_ROUTE: SESSIONS_SECRET, VIDEO_ARCHIVES_ROUTE: ARCHIVES_SECRET}
BODIES = {VIDEO_SESSIONS_ROUTE: CONNECTION_CREATED, VIDEO_ARCHIVES_ROUTE: ARCHIVE_AVAILABLE}
BOTH_SIGNED = {
    "video_sessions_secret": Secret(SESSIONS_SECRET),
    "video_archives_secret": Secret(ARCHIVES_SECRET),
}


async def unauthorized(
    client: aiohttp.ClientSession, route: str, body: bytes, headers: dict[str, str]
) -> str:
    response = await client.post(route, data=body, headers=headers)
    assert response.status == 401, await response.text()
    payload = await response.json()
    assert payload["error"] == "unauthorized"
    return str(payload["detail"])


@pytest.mark.parametrize("bearer", [True, False], ids=["bearer", "bare"])
@pytest.mark.parametrize("route", VIDEO_ROUTES)
async def test_a_callback_signed_with_the_routes_secret_is_stored(
    make_http: ClientFactory, route: str, bearer: bool
) -> None:
    publisher = FakePublisher()
    client = await make_http(publisher=publisher, **BOTH_SIGNED)
    body = BODIES[route]
    response = await client.post(
        route, data=body, headers=vonage_signed(body, SECRETS[route], bearer=bearer)
    )
    assert (response.status, await response.read()) == (200, b"")
    assert [record.body for record in publisher.records] == [body]


OTHER_SECRET = "another-secret-entirely-different-here"
Sign = Callable[[bytes, str], dict[str, str]]
"""The headers of a request with ``body`` to a route whose secret is the second argument."""
BAD_SIGNATURES: list[tuple[str, Sign, str]] = [
    ("unsigned", lambda body, secret: {}, "missing signed token"),
    ("basic", lambda body, secret: {"Authorization": "Basic dXNlcjpwYXNz"}, "missing signed token"),
    ("garbage", lambda body, secret: {"Authorization": "Bearer not.a.jwt"}, "invalid token"),
    ("wrong secret", lambda body, secret: vonage_signed(body, OTHER_SECRET), "invalid token"),
    ("hash of another body", lambda body, secret: vonage_signed(b'{"event": "x"}', secret),
     "payload_hash does not match the body"),
    ("no payload_hash", lambda body, secret: vonage_signed(body, secret, payload_hash=None),
     "token has no payload_hash"),
    ("issued in an hour",
     lambda body, secret: vonage_signed(body, secret, iat=int(time.time()) + 3600),
     "token not valid yet"),
]  # fmt: skip
"""Name, headers (built when the test runs: ``iat`` is now), reason."""


@pytest.mark.parametrize(
    ("headers", "reason"),
    [case[1:] for case in BAD_SIGNATURES],
    ids=[case[0] for case in BAD_SIGNATURES],
)
@pytest.mark.parametrize("route", VIDEO_ROUTES)
async def test_unsigned_or_mis_signed_callbacks_are_401(
    make_http: ClientFactory, route: str, headers: Sign, reason: str
) -> None:
    publisher = FakePublisher()
    client = await make_http(publisher=publisher, **BOTH_SIGNED)
    body = BODIES[route]
    assert await unauthorized(client, route, body, headers(body, SECRETS[route])) == reason
    assert publisher.records == []


async def test_each_route_takes_only_its_own_secret(make_http: ClientFactory) -> None:
    client = await make_http(**BOTH_SIGNED)
    for route, other_secret in (
        (VIDEO_SESSIONS_ROUTE, ARCHIVES_SECRET),
        (VIDEO_ARCHIVES_ROUTE, SESSIONS_SECRET),
    ):
        body = BODIES[route]
        headers = vonage_signed(body, other_secret)
        assert await unauthorized(client, route, body, headers) == "invalid token"


async def test_the_payload_hash_covers_the_bytes_as_received(make_http: ClientFactory) -> None:
    publisher = FakePublisher()
    client = await make_http(publisher=publisher, **BOTH_SIGNED)
    # The same JSON value laid out differently: other bytes, so another hash.
    spaced = orjson.dumps(orjson.loads(CONNECTION_CREATED), option=orjson.OPT_INDENT_2)
    assert spaced != CONNECTION_CREATED
    signed_spaced = vonage_signed(spaced, SESSIONS_SECRET)
    response = await client.post(VIDEO_SESSIONS_ROUTE, data=spaced, headers=signed_spaced)
    assert response.status == 200
    # A hash of a re-serialisation (the compact form) does not match what was sent.
    compact_hash = vonage_signed(CONNECTION_CREATED, SESSIONS_SECRET)
    assert await unauthorized(client, VIDEO_SESSIONS_ROUTE, spaced, compact_hash) == (
        "payload_hash does not match the body"
    )
    [record] = publisher.records
    assert (record.body, record.key) == (spaced, SESSION_ID)


async def test_a_route_without_a_secret_takes_unsigned_callbacks(
    make_http: ClientFactory,
) -> None:
    client = await make_http(video_sessions_secret=Secret(SESSIONS_SECRET))
    unsigned_archive = await client.post(VIDEO_ARCHIVES_ROUTE, data=ARCHIVE_AVAILABLE)
    assert unsigned_archive.status == 200
    assert await unauthorized(client, VIDEO_SESSIONS_ROUTE, CONNECTION_CREATED, {}) == (
        "missing signed token"
    )


async def test_the_meetings_authentication_does_not_apply_to_the_video_routes(
    make_http: ClientFactory,
) -> None:
    meetings_auth: dict[str, Any] = {"auth_token": Secret(TOKEN), "jwt_secret": Secret(SECRET)}
    unsigned = await make_http(**meetings_auth)
    for route in VIDEO_ROUTES:  # no token, no signature: Vonage Video sends neither
        assert (await unsigned.post(route, data=BODIES[route])).status == 200
    meetings_only = await unsigned.post("/callbacks", data=b'{"event": "session:started"}')
    assert meetings_only.status == 401

    signed = await make_http(**meetings_auth, **BOTH_SIGNED)
    body = CONNECTION_CREATED
    with_token = {"X-Callback-Token": TOKEN}
    assert await unauthorized(signed, VIDEO_SESSIONS_ROUTE, body, with_token) == (
        "missing signed token"
    )
    meetings_signature = vonage_signed(body, SECRET)
    assert await unauthorized(signed, VIDEO_SESSIONS_ROUTE, body, meetings_signature) == (
        "invalid token"
    )
    # The route's own signature alone is enough: no shared token needed.
    own = vonage_signed(body, SESSIONS_SECRET)
    assert (await signed.post(VIDEO_SESSIONS_ROUTE, data=body, headers=own)).status == 200


async def test_a_video_token_needs_a_payload_hash_whatever_the_meetings_mode(
    make_http: ClientFactory,
) -> None:
    client = await make_http(jwt_payload_hash="off", **BOTH_SIGNED)
    without_hash = vonage_signed(ARCHIVE_AVAILABLE, ARCHIVES_SECRET, payload_hash=None)
    reason = await unauthorized(client, VIDEO_ARCHIVES_ROUTE, ARCHIVE_AVAILABLE, without_hash)
    assert reason == "token has no payload_hash"


async def test_the_leeway_and_maximum_age_settings_apply(make_http: ClientFactory) -> None:
    client = await make_http(jwt_max_age_s=60, jwt_leeway_s=5, **BOTH_SIGNED)
    body, now = CONNECTION_CREATED, int(time.time())
    fresh = vonage_signed(body, SESSIONS_SECRET, iat=now - 30)
    assert (await client.post(VIDEO_SESSIONS_ROUTE, data=body, headers=fresh)).status == 200
    old = vonage_signed(body, SESSIONS_SECRET, iat=now - 600)
    assert await unauthorized(client, VIDEO_SESSIONS_ROUTE, body, old) == "token too old"
    skewed = vonage_signed(body, SESSIONS_SECRET, iat=now + 3)  # within the leeway
    assert (await client.post(VIDEO_SESSIONS_ROUTE, data=body, headers=skewed)).status == 200


def unsigned_warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [
        r.getMessage()
        for r in caplog.records
        if r.levelno == logging.WARNING and "accepts unsigned callbacks" in r.getMessage()
    ]


@pytest.mark.parametrize(
    ("settings", "warned"),
    [
        ({"auth_token": Secret(TOKEN)}, VIDEO_ROUTES),
        ({"jwt_secret": Secret(SECRET), "video_archives_secret": Secret(ARCHIVES_SECRET)},
         (VIDEO_SESSIONS_ROUTE,)),
        ({"auth_token": Secret(TOKEN), **BOTH_SIGNED}, ()),
        ({}, ()),  # nothing is authenticated: nothing to warn about
    ],
    ids=["token", "signature and one video secret", "all signed", "no authentication"],
)  # fmt: skip
async def test_an_unsigned_video_route_is_warned_about_once_when_meetings_are_authenticated(
    make_http: ClientFactory,
    caplog: pytest.LogCaptureFixture,
    settings: dict[str, Any],
    warned: tuple[str, ...],
) -> None:
    caplog.set_level(logging.WARNING, logger="ingest")
    client = await make_http(**settings)
    for route in VIDEO_ROUTES:  # requests log nothing more
        await client.post(route, data=BODIES[route])
    messages = unsigned_warnings(caplog)
    assert [next(r for r in VIDEO_ROUTES if m.startswith(r)) for m in messages] == list(warned)
    for message, route in zip(messages, warned, strict=True):
        setting = "SESSIONS" if route == VIDEO_SESSIONS_ROUTE else "ARCHIVES"
        assert f"INGEST_VIDEO_{setting}_SECRET" in message


async def test_a_short_video_secret_is_warned_about_by_name(
    make_http: ClientFactory, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="ingest")
    short = "sixteen-chars-ok"
    client = await make_http(video_archives_secret=Secret(short))
    headers = vonage_signed(ARCHIVE_AVAILABLE, short)
    response = await client.post(VIDEO_ARCHIVES_ROUTE, data=ARCHIVE_AVAILABLE, headers=headers)
    assert response.status == 200
    assert any(
        "INGEST_VIDEO_ARCHIVES_SECRET is shorter than 32 bytes" in r.getMessage()
        for r in caplog.records
    )
