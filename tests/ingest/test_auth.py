"""Authentication: shared token and Vonage-style signed callbacks (contract §3). Broker-free."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import aiohttp
import jwt
import pytest

from servicekit.env import Secret
from tests.callback_fixtures import valid_body
from tests.ingest.conftest import ClientFactory
from tests.ingest.fake_publisher import FakePublisher
from tests.ingest.inprocess import fake_settings

TOKEN = "a-long-shared-callback-token"
SECRET = "signature-secret-of-the-meetings-application"
BODY = valid_body("session-started.json")


def signed(body: bytes, *, secret: str = SECRET, **claims: Any) -> dict[str, str]:
    now = int(time.time())
    payload: dict[str, Any] = {
        "iat": now,
        "exp": now + 300,
        "payload_hash": hashlib.sha256(body).hexdigest(),
    }
    payload.update(claims)
    payload = {k: v for k, v in payload.items() if v is not None}
    return {"Authorization": f"Bearer {jwt.encode(payload, secret, algorithm='HS256')}"}


async def unauthorized(client: aiohttp.ClientSession, **request: Any) -> str:
    response = await client.post("/callbacks", data=request.pop("data", BODY), **request)
    assert response.status == 401
    payload = await response.json()
    assert payload["error"] == "unauthorized"
    return str(payload["detail"])


async def test_token_in_header_or_query_passes(make_http: ClientFactory) -> None:
    client = await make_http(auth_token=Secret(TOKEN))
    by_header = await client.post("/callbacks", data=BODY, headers={"X-Callback-Token": TOKEN})
    by_query = await client.post(f"/callbacks?token={TOKEN}", data=BODY)
    assert (by_header.status, by_query.status) == (204, 204)


async def test_missing_or_wrong_token_is_401(make_http: ClientFactory) -> None:
    client = await make_http(auth_token=Secret(TOKEN))
    assert await unauthorized(client) == "missing token"
    assert await unauthorized(client, headers={"X-Callback-Token": TOKEN + "x"}) == "wrong token"
    assert await unauthorized(client, params={"token": TOKEN[:-1]}) == "wrong token"


async def test_a_good_signed_callback_passes(make_http: ClientFactory) -> None:
    client = await make_http(jwt_secret=Secret(SECRET))
    response = await client.post("/callbacks", data=BODY, headers=signed(BODY))
    assert response.status == 204


@pytest.mark.parametrize(
    ("headers", "reason"),
    # Built when the test runs, not at collection: a token signed minutes earlier expires.
    [
        (lambda: {}, "missing bearer token"),
        (lambda: {"Authorization": "Basic dXNlcjpwYXNz"}, "missing bearer token"),
        (lambda: {"Authorization": "Bearer not.a.jwt"}, "invalid token"),
        (lambda: signed(BODY, secret="another-secret-entirely-different-here"), "invalid token"),
        (lambda: signed(BODY, exp=int(time.time()) - 3600), "expired token"),
        (lambda: signed(BODY, nbf=int(time.time()) + 3600), "token not valid yet"),
        (lambda: signed(b'{"event": "other"}'), "payload_hash does not match the body"),
    ],
    ids=["none", "basic", "garbage", "wrong-secret", "expired", "not-yet", "body-mismatch"],
)
async def test_bad_signed_callbacks_are_401(
    make_http: ClientFactory, headers: Callable[[], dict[str, str]], reason: str
) -> None:
    client = await make_http(jwt_secret=Secret(SECRET))
    assert await unauthorized(client, headers=headers()) == reason


async def test_unsigned_algorithm_none_is_refused(make_http: ClientFactory) -> None:
    client = await make_http(jwt_secret=Secret(SECRET))
    forged = jwt.encode({"payload_hash": hashlib.sha256(BODY).hexdigest()}, "", algorithm="none")
    assert await unauthorized(client, headers={"Authorization": f"Bearer {forged}"}) == (
        "invalid token"
    )


async def test_payload_hash_is_checked_against_the_raw_bytes(make_http: ClientFactory) -> None:
    client = await make_http(jwt_secret=Secret(SECRET))
    # Same JSON value, different bytes: a re-serialisation would wrongly pass.
    reformatted = BODY.replace(b"    ", b"  ")
    assert reformatted != BODY
    assert await unauthorized(client, data=reformatted, headers=signed(BODY)) == (
        "payload_hash does not match the body"
    )


async def test_payload_hash_modes(make_http: ClientFactory) -> None:
    without_hash = signed(BODY, payload_hash=None)
    lenient = await make_http(jwt_secret=Secret(SECRET), jwt_payload_hash="if_present")
    assert (await lenient.post("/callbacks", data=BODY, headers=without_hash)).status == 204
    strict = await make_http(jwt_secret=Secret(SECRET), jwt_payload_hash="required")
    assert await unauthorized(strict, headers=without_hash) == "token has no payload_hash"
    off = await make_http(jwt_secret=Secret(SECRET), jwt_payload_hash="off")
    mismatched = signed(b"{}")
    assert (await off.post("/callbacks", data=BODY, headers=mismatched)).status == 204


async def test_clock_skew_within_the_leeway_is_tolerated(make_http: ClientFactory) -> None:
    client = await make_http(jwt_secret=Secret(SECRET), jwt_leeway_s=60)
    slightly_expired = signed(BODY, exp=int(time.time()) - 30)
    assert (await client.post("/callbacks", data=BODY, headers=slightly_expired)).status == 204


async def test_token_and_signature_together_must_both_pass(make_http: ClientFactory) -> None:
    client = await make_http(auth_token=Secret(TOKEN), jwt_secret=Secret(SECRET))
    token_only = {"X-Callback-Token": TOKEN}
    assert await unauthorized(client, headers=token_only) == "missing bearer token"
    both = {**token_only, **signed(BODY)}
    assert (await client.post("/callbacks", data=BODY, headers=both)).status == 204


async def test_refused_callbacks_are_not_stored(make_http: ClientFactory) -> None:
    publisher = FakePublisher()
    client = await make_http(publisher=publisher, auth_token=Secret(TOKEN))
    await unauthorized(client, headers={"X-Callback-Token": "wrong"})
    sentinel = valid_body("session-ended.json")
    accepted = await client.post("/callbacks", data=sentinel, headers={"X-Callback-Token": TOKEN})
    assert accepted.status == 204
    assert [record.body for record in publisher.records] == [sentinel]


def test_secrets_never_appear_in_settings_repr() -> None:
    configured = replace(fake_settings(), auth_token=Secret(TOKEN), jwt_secret=Secret(SECRET))
    assert TOKEN not in repr(configured)
    assert SECRET not in repr(configured)
    assert TOKEN not in str(configured.auth_token)


async def test_token_age_is_not_limited_by_default(make_http: ClientFactory) -> None:
    """A retried callback may carry its first attempt's token (Vonage documents no re-signing)."""
    client = await make_http(jwt_secret=Secret(SECRET))
    day_old = signed(BODY, iat=int(time.time()) - 86_400, exp=int(time.time()) + 300)
    assert (await client.post("/callbacks", data=BODY, headers=day_old)).status == 204


async def test_a_maximum_token_age_refuses_old_and_undated_tokens(
    make_http: ClientFactory,
) -> None:
    client = await make_http(jwt_secret=Secret(SECRET), jwt_max_age_s=60, jwt_leeway_s=5)
    now = int(time.time())
    fresh = signed(BODY, iat=now - 30)
    assert (await client.post("/callbacks", data=BODY, headers=fresh)).status == 204
    assert await unauthorized(client, headers=signed(BODY, iat=now - 600)) == "token too old"
    assert await unauthorized(client, headers=signed(BODY, iat=None)) == "token has no iat"
    # PyJWT takes anything int() takes; a numeric string is still not a time.
    assert await unauthorized(client, headers=signed(BODY, iat=str(now))) == "invalid token"
