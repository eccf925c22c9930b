"""The Vonage Video routes (contract §7): ``/video/sessions`` and ``/video/archives`` store each
callback byte for byte keyed by its ``sessionId``, answer ``200`` with an empty body, and
refuse what they cannot key or bound with the same JSON ``400`` as every other route; the rest
of the pipeline (limits, read timeout, ``503``, shutdown) is the Meetings routes'.

Broker-free: the production server in this process on the fake publisher."""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp
import orjson
import pytest

from ingest.http.connections import Phase
from ingest.routes import VIDEO_ARCHIVES_ROUTE, VIDEO_ROUTES, VIDEO_SESSIONS_ROUTE
from tests.ingest.conftest import IngestFactory
from tests.ingest.fake_publisher import FakePublisher, Mode
from tests.ingest.inprocess import InProcessIngest, wait_until
from tests.ingest.raw_http import read_response, request_bytes
from tests.ingest.test_observability import sample
from tests.ingest.test_slow_clients import phases
from tests.video_examples import (
    ARCHIVE_AVAILABLE,
    ARCHIVE_SESSION_ID,
    CONNECTION_CREATED,
    SESSION_ID,
    SESSION_MONITORING,
    STREAM_CREATED,
)

EXAMPLES = [
    pytest.param(VIDEO_SESSIONS_ROUTE, CONNECTION_CREATED, SESSION_ID, id="sessions"),
    pytest.param(VIDEO_ARCHIVES_ROUTE, ARCHIVE_AVAILABLE, ARCHIVE_SESSION_ID, id="archives"),
]
JSON = {"Content-Type": "application/json"}


def stored_keys(ingest: InProcessIngest) -> list[bytes | None]:
    return [record.key for record in ingest.publisher.records]


async def refused(
    http: aiohttp.ClientSession, body: bytes, route: str = VIDEO_SESSIONS_ROUTE, status: int = 400
) -> dict[str, Any]:
    response = await http.post(route, data=body)
    assert response.status == status, await response.text()
    assert response.content_type == "application/json"
    payload: dict[str, Any] = await response.json()
    assert payload["detail"]
    return payload


@pytest.mark.parametrize(("route", "body", "session_id"), EXAMPLES)
async def test_a_callback_is_stored_keyed_by_its_session_and_answered_200_without_a_body(
    http: aiohttp.ClientSession,
    ingest: InProcessIngest,
    route: str,
    body: bytes,
    session_id: bytes,
) -> None:
    response = await http.post(route, data=body, headers={"X-Request-Id": "vonage-7"})
    assert response.status == 200
    assert await response.read() == b""
    assert response.headers["Content-Length"] == "0"
    assert "Content-Type" not in response.headers
    assert response.headers["X-Request-Id"] == "vonage-7"
    [record] = ingest.publisher.records
    assert record.body == body
    assert record.key == session_id
    assert record.header("source-route") == route.encode()
    assert record.header("request-id") == b"vonage-7"
    assert record.header("content-type") == b"application/json"
    assert int(record.header("received-at")) == record.timestamp_ms


async def test_every_session_monitoring_example_is_stored(
    http: aiohttp.ClientSession, ingest: InProcessIngest
) -> None:
    for body in SESSION_MONITORING:
        assert (await http.post(VIDEO_SESSIONS_ROUTE, data=body)).status == 200
    assert [record.body for record in ingest.publisher.records] == list(SESSION_MONITORING)
    assert stored_keys(ingest) == [SESSION_ID] * len(SESSION_MONITORING)


async def test_the_meetings_routes_still_answer_204(
    http: aiohttp.ClientSession, ingest: InProcessIngest
) -> None:
    meetings = orjson.dumps({"event": "session:started", "session_id": "s-1", "room_id": "r-1"})
    assert (await http.post("/callbacks/sessions", data=meetings)).status == 204
    assert (await http.post(VIDEO_SESSIONS_ROUTE, data=CONNECTION_CREATED)).status == 200
    assert stored_keys(ingest) == [b"s-1", SESSION_ID]


@pytest.mark.parametrize(("route", "body", "session_id"), EXAMPLES)
async def test_a_double_encoded_body_is_stored_as_sent(
    http: aiohttp.ClientSession,
    ingest: InProcessIngest,
    route: str,
    body: bytes,
    session_id: bytes,
) -> None:
    double = orjson.dumps(body.decode())
    assert (await http.post(route, data=double)).status == 200
    [record] = ingest.publisher.records
    assert (record.body, record.key) == (double, session_id)


@pytest.mark.parametrize(
    "session_id",
    [None, 5, True, "", {"id": "s"}, ["s"]],
    ids=["null", "number", "boolean", "empty", "object", "array"],
)
@pytest.mark.parametrize("route", VIDEO_ROUTES)
async def test_a_session_id_that_is_not_a_non_empty_string_is_400(
    http: aiohttp.ClientSession, ingest: InProcessIngest, route: str, session_id: object
) -> None:
    body = orjson.dumps({"event": "connectionCreated", "sessionId": session_id})
    payload = await refused(http, body, route)
    assert (payload["error"], payload["path"]) == ("invalid_callback", "$.sessionId")
    assert "`sessionId`" in payload["detail"]
    assert ingest.publisher.records == []


@pytest.mark.parametrize("double_encoded", [False, True], ids=["plain", "double-encoded"])
async def test_a_missing_session_id_is_400(
    http: aiohttp.ClientSession, ingest: InProcessIngest, double_encoded: bool
) -> None:
    body = orjson.dumps({"event": "connectionCreated", "projectId": "123456"})
    payload = await refused(http, orjson.dumps(body.decode()) if double_encoded else body)
    assert payload["path"] == "$.sessionId"
    assert "`sessionId`" in payload["detail"]
    assert ("double-encoded" in payload["detail"]) is double_encoded
    assert ingest.publisher.records == []


def with_id(field: str, value: str) -> bytes:
    """A stream event with ``value`` at ``field`` (a dotted path)."""
    callback = orjson.loads(STREAM_CREATED)
    callback["id"] = "archive-or-other-id"
    *parents, name = field.split(".")
    node = callback
    for parent in parents:
        node = node.setdefault(parent, {})
    node[name] = value
    return orjson.dumps(callback)


ID_FIELDS = ["sessionId", "id", "connection.id", "stream.id", "stream.connection.id"]


@pytest.mark.parametrize("field", ID_FIELDS)
async def test_an_id_over_256_characters_is_400_naming_it(
    http: aiohttp.ClientSession, ingest: InProcessIngest, field: str
) -> None:
    payload = await refused(http, with_id(field, "i" * 257))
    assert (payload["error"], payload["path"]) == ("invalid_callback", f"$.{field}")
    assert f"`{field}` is longer than 256 characters" in payload["detail"]
    assert ingest.publisher.records == []


@pytest.mark.parametrize("field", ID_FIELDS)
async def test_ids_of_256_characters_are_stored(
    http: aiohttp.ClientSession, ingest: InProcessIngest, field: str
) -> None:
    body = with_id(field, "é" * 256)  # characters, not bytes
    assert (await http.post(VIDEO_SESSIONS_ROUTE, data=body)).status == 200
    assert [record.body for record in ingest.publisher.records] == [body]


@pytest.mark.parametrize(
    ("body", "error", "path"),
    [
        (b'{"sessionId": "s"}', "invalid_callback", "$.event"),
        (b'{"sessionId": "s", "event": 1}', "invalid_callback", "$.event"),
        (b'{"sessionId": "s", "event": "x", "connection": "c-1"}', "invalid_callback", None),
        (b"[1, 2]", "not_an_object", None),
        (b'"not an object"', "not_an_object", None),
        (b'{"sessionId": "s", "event": "x"', "invalid_json", None),
        (b"", "invalid_json", None),
    ],
    ids=["no event", "event a number", "connection a string", "array", "string", "cut", "empty"],
)
async def test_malformed_bodies_are_400(
    http: aiohttp.ClientSession,
    ingest: InProcessIngest,
    body: bytes,
    error: str,
    path: str | None,
) -> None:
    for route in VIDEO_ROUTES:
        payload = await refused(http, body, route)
        assert payload["error"] == error
        if path is not None:
            assert payload["path"] == path
    assert ingest.publisher.records == []


async def test_unknown_events_are_stored_for_forward_compatibility(
    http: aiohttp.ClientSession, ingest: InProcessIngest
) -> None:
    body = b'{"event": "captionsStarted", "sessionId": "s-new", "captionId": "c"}'
    assert (await http.post(VIDEO_SESSIONS_ROUTE, data=body)).status == 200
    assert stored_keys(ingest) == [b"s-new"]


async def test_size_and_content_type_limits_apply(http: aiohttp.ClientSession) -> None:
    big = b'{"event": "x", "sessionId": "s", "pad": "' + b"p" * 70_000 + b'"}'
    assert (await refused(http, big, status=413))["error"] == "payload_too_large"
    response = await http.post(
        VIDEO_ARCHIVES_ROUTE, data=ARCHIVE_AVAILABLE, headers={"Content-Type": "text/plain"}
    )
    assert response.status == 415
    assert (await response.json())["error"] == "unsupported_media_type"


@pytest.mark.parametrize("mode", [Mode.FAIL, Mode.TOPIC_MISSING])
async def test_a_callback_kafka_cannot_take_is_503_with_retry_after(
    make_http: Any, mode: Mode
) -> None:
    client = await make_http(publisher=FakePublisher(mode=mode), retry_after_s=7)
    for route in VIDEO_ROUTES:
        response = await client.post(route, data=CONNECTION_CREATED)
        assert response.status == 503
        assert response.headers["Retry-After"] == "7"
        assert (await response.json())["error"] == "unavailable"


async def test_shutdown_refuses_new_callbacks_and_answers_those_in_flight(
    make_ingest: IngestFactory,
) -> None:
    publisher = FakePublisher(mode=Mode.HANG)
    ingest = await make_ingest(publisher=publisher, retry_after_s=3)
    request = request_bytes(CONNECTION_CREATED, target=VIDEO_SESSIONS_ROUTE.encode())
    reader, writer = await asyncio.open_connection("127.0.0.1", ingest.port)
    try:
        writer.write(request)
        await publisher.wait_for("waiting")
        ingest.server.begin_shutdown()
        late = request_bytes(ARCHIVE_AVAILABLE, target=VIDEO_ARCHIVES_ROUTE.encode())
        refused_late = await ingest.exchange(late)
        assert refused_late is not None
        assert (refused_late.status, refused_late.headers["retry-after"]) == (503, "3")
        stopping = asyncio.create_task(ingest.server.stop())
        publisher.release()
        async with asyncio.timeout(5):
            response = await read_response(reader)
            await stopping
    finally:
        writer.close()
    assert response is not None
    assert (response.status, response.body) == (200, b"")
    assert [record.body for record in publisher.records] == [CONNECTION_CREATED]
    assert publisher.events == ["started", "stored", "stopped"]


async def test_a_slow_body_is_timed_out_with_408(make_ingest: IngestFactory) -> None:
    ingest = await make_ingest(read_timeout_s=10.0)
    request = request_bytes(CONNECTION_CREATED, target=VIDEO_SESSIONS_ROUTE.encode())
    reader, writer = await asyncio.open_connection("127.0.0.1", ingest.port)
    try:
        writer.write(request[:-20])  # the headers and most of the body
        await writer.drain()
        await wait_until(lambda: Phase.BODY in phases(ingest), what="the body being read")
        assert ingest.time_passes(15.0) == 1
        async with asyncio.timeout(5):
            response = await read_response(reader)
    finally:
        writer.close()
    assert response is not None
    assert response.status == 408
    assert response.json()["error"] == "request_timeout"
    assert ingest.publisher.records == []


async def test_requests_are_counted_per_video_route(
    http: aiohttp.ClientSession, ingest: InProcessIngest
) -> None:
    def counts(metrics: str) -> dict[tuple[str, str], float]:
        return {
            (route, status): sample(
                metrics, f'ingest_requests_total{{route="{route}",status="{status}"}}'
            )
            for route in VIDEO_ROUTES
            for status in ("200", "400")
        }

    before = counts(await ingest.metrics())  # the counters are the process's
    await http.post(VIDEO_SESSIONS_ROUTE, data=CONNECTION_CREATED)
    await http.post(VIDEO_SESSIONS_ROUTE, data=STREAM_CREATED)
    await http.post(VIDEO_ARCHIVES_ROUTE, data=ARCHIVE_AVAILABLE)
    await http.post(VIDEO_ARCHIVES_ROUTE, data=b"{}")
    after = counts(await ingest.metrics())
    assert {series: after[series] - before[series] for series in after} == {
        (VIDEO_SESSIONS_ROUTE, "200"): 2,
        (VIDEO_SESSIONS_ROUTE, "400"): 0,
        (VIDEO_ARCHIVES_ROUTE, "200"): 1,
        (VIDEO_ARCHIVES_ROUTE, "400"): 1,
    }


async def test_unknown_paths_name_the_video_routes_and_get_is_405(
    http: aiohttp.ClientSession,
) -> None:
    payload = await refused(http, CONNECTION_CREATED, "/video/session", status=404)
    assert VIDEO_SESSIONS_ROUTE in payload["detail"]
    assert VIDEO_ARCHIVES_ROUTE in payload["detail"]
    response = await http.get(VIDEO_ARCHIVES_ROUTE)
    assert (response.status, response.headers["Allow"]) == (405, "POST")
