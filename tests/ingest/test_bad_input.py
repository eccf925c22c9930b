"""Each bad input of contract §3 gets its status and a JSON error body, and is never published.

Broker-free: the production server in this process on the fake publisher."""

from __future__ import annotations

from typing import Any

import aiohttp
import pytest

from tests.callback_fixtures import invalid_body, valid_body
from tests.ingest.inprocess import InProcessIngest

JSON = {"Content-Type": "application/json"}

BAD_REQUESTS: list[tuple[str, bytes, dict[str, str], int, str]] = [
    ("not json", invalid_body("not-json.txt"), JSON, 400, "invalid_json"),
    ("truncated json", invalid_body("truncated.json"), JSON, 400, "invalid_json"),
    ("empty body", b"", JSON, 400, "invalid_json"),
    ("array", invalid_body("array.json"), JSON, 400, "not_an_object"),
    ("number", invalid_body("number.json"), JSON, 400, "not_an_object"),
    ("double-encoded array", invalid_body("double-encoded-array.json"), JSON, 400, "not_an_object"),
    ("string of non-json", b'"hello"', JSON, 400, "not_an_object"),
    ("missing event", invalid_body("missing-event.json"), JSON, 400, "invalid_callback"),
    ("event not a string", invalid_body("event-not-a-string.json"), JSON, 400, "invalid_callback"),
    ("session_id not a string", b'{"event": "x", "session_id": 5}', JSON, 400, "invalid_callback"),
    ("too large", b'{"event": "x", "p": "' + b"a" * 70_000 + b'"}', JSON, 413, "payload_too_large"),
    ("form content type", valid_body("session-started.json"),
     {"Content-Type": "application/x-www-form-urlencoded"}, 415, "unsupported_media_type"),
    ("text content type", valid_body("session-started.json"),
     {"Content-Type": "text/plain"}, 415, "unsupported_media_type"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("body", "headers", "status", "error"),
    [case[1:] for case in BAD_REQUESTS],
    ids=[case[0] for case in BAD_REQUESTS],
)
async def test_bad_input_is_refused_with_a_json_error(
    http: aiohttp.ClientSession, body: bytes, headers: dict[str, str], status: int, error: str
) -> None:
    response = await http.post("/callbacks/sessions", data=body, headers=headers)
    assert response.status == status
    assert response.content_type == "application/json"
    payload = await response.json()
    assert payload["error"] == error
    assert payload["detail"]
    assert payload["request_id"] == response.headers["X-Request-Id"]


async def test_error_bodies_name_the_offending_field(http: aiohttp.ClientSession) -> None:
    response = await http.post("/callbacks", data=invalid_body("missing-event.json"))
    payload = await response.json()
    assert payload["path"] == "$.event"
    assert "event" in payload["detail"]


async def test_too_large_without_content_length_is_refused_while_streaming(
    http: aiohttp.ClientSession,
) -> None:
    async def chunks() -> Any:
        for _ in range(100):
            yield b"x" * 1024

    response = await http.post("/callbacks", data=chunks(), headers=JSON)
    assert response.status == 413


async def test_json_media_types_with_parameters_are_accepted(http: aiohttp.ClientSession) -> None:
    body = valid_body("session-started.json")
    for content_type in ("application/json; charset=utf-8", "application/vnd.vonage+json"):
        response = await http.post("/callbacks", data=body, headers={"Content-Type": content_type})
        assert response.status == 204, content_type


async def test_a_missing_content_type_is_accepted(http: aiohttp.ClientSession) -> None:
    response = await http.post(
        "/callbacks",
        data=valid_body("session-started.json"),
        skip_auto_headers=["Content-Type"],
        headers={"Content-Type": ""},
    )
    assert response.status == 204


async def test_refused_requests_are_never_published(
    http: aiohttp.ClientSession, ingest: InProcessIngest
) -> None:
    for _name, body, headers, _status, _error in BAD_REQUESTS:
        await http.post("/callbacks", data=body, headers=headers)
    sentinel = b'{"event": "session:started", "session_id": "sentinel", "room_id": "r", "started_at": "2021-11-02T15:53:28.753Z"}'  # noqa: E501
    assert (await http.post("/callbacks", data=sentinel)).status == 204
    assert [record.body for record in ingest.publisher.records] == [sentinel]


async def test_unknown_routes_and_methods_get_json_errors(http: aiohttp.ClientSession) -> None:
    missing = await http.post("/callbacks/unknown", data=b"{}")
    assert missing.status == 404
    assert (await missing.json())["error"] == "not_found"
    wrong_method = await http.get("/callbacks")
    assert wrong_method.status == 405
