"""Accepted callbacks are in the raw topic byte-for-byte, keyed and labelled (contract §3, §4)."""

from __future__ import annotations

import re
import time

import aiohttp

from ingest.routes import CALLBACK_ROUTES
from ingest.settings import IngestSettings
from schemas import BaseCallback, RoomExpiredCallback, decode_callback
from tests.callback_fixtures import valid_body, valid_names
from tests.ingest.conftest import header_map, raw_reader
from tests.kafka_helpers import consume_count


def expected_key(body: bytes) -> bytes:
    """contract §4: the raw topic is keyed by ``session_id``, else ``room_id``."""
    decoded = decode_callback(body)
    assert isinstance(decoded, BaseCallback)
    key = decoded.room_id if isinstance(decoded, RoomExpiredCallback) else decoded.session_id
    assert key is not None
    return key.encode()


async def test_every_example_on_every_route_is_stored_exactly_as_sent(
    client: aiohttp.ClientSession, ingest_settings: IngestSettings
) -> None:
    sent: dict[str, tuple[str, bytes, int]] = {}  # request id -> (route, body, time sent)
    for name in valid_names():
        body = valid_body(name)
        for route in CALLBACK_ROUTES:
            before_ms = time.time_ns() // 1_000_000
            response = await client.post(
                route, data=body, headers={"Content-Type": "application/json"}
            )
            assert response.status == 204, (name, route, await response.text())
            sent[response.headers["X-Request-Id"]] = (route, body, before_ms)

    async with raw_reader(ingest_settings.kafka.bootstrap_servers, ingest_settings.raw_topic) as c:
        records = await consume_count(c, len(sent))
    assert len(records) == len(sent) == len(valid_names()) * len(CALLBACK_ROUTES)

    for record in records:
        headers = header_map(record)
        route, body, before_ms = sent[headers["request-id"].decode()]
        assert record.value == body  # byte-identical, double-encoded ones included
        assert record.key == expected_key(body)
        assert headers["source-route"] == route.encode()
        assert headers["content-type"] == b"application/json"
        received_at = int(headers["received-at"])
        assert before_ms <= received_at <= time.time_ns() // 1_000_000
        assert record.timestamp == received_at


async def test_same_session_lands_on_one_partition(
    client: aiohttp.ClientSession, ingest_settings: IngestSettings
) -> None:
    names = [n for n in valid_names() if not n.startswith("room-")]
    for name in names:
        response = await client.post("/callbacks", data=valid_body(name))
        assert response.status == 204
    async with raw_reader(ingest_settings.kafka.bootstrap_servers, ingest_settings.raw_topic) as c:
        records = await consume_count(c, len(names))
    assert len({record.partition for record in records}) == 1


async def test_unknown_events_are_accepted_for_forward_compatibility(
    client: aiohttp.ClientSession, ingest_settings: IngestSettings
) -> None:
    body = b'{"event": "session:paused", "session_id": "s-1", "room_id": "r-1"}'
    response = await client.post("/callbacks", data=body)
    assert response.status == 204
    async with raw_reader(ingest_settings.kafka.bootstrap_servers, ingest_settings.raw_topic) as c:
        [record] = await consume_count(c, 1)
    assert (record.key, record.value) == (b"s-1", body)


async def test_a_callers_request_id_is_kept_and_a_missing_one_is_made(
    client: aiohttp.ClientSession, ingest_settings: IngestSettings
) -> None:
    body = valid_body("session-started.json")
    given = await client.post("/callbacks", data=body, headers={"X-Request-Id": "vonage-42"})
    assert given.headers["X-Request-Id"] == "vonage-42"
    unsafe = await client.post("/callbacks", data=body, headers={"X-Request-Id": "a b\tc"})
    assert re.fullmatch(r"[0-9a-f]{20}", unsafe.headers["X-Request-Id"])
    async with raw_reader(ingest_settings.kafka.bootstrap_servers, ingest_settings.raw_topic) as c:
        records = await consume_count(c, 2)
    assert [header_map(r)["request-id"] for r in records] == [
        b"vonage-42",
        unsafe.headers["X-Request-Id"].encode(),
    ]
