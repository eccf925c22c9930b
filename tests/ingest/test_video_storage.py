"""Vonage Video callbacks through ingest into the raw topic of the real broker (contract §7): stored
byte for byte, keyed by ``sessionId``, with the §4 headers and ``source-route`` naming the Video
route, whether the route is signed or not."""

from __future__ import annotations

import time

import pytest

from ingest.routes import VIDEO_ARCHIVES_ROUTE, VIDEO_SESSIONS_ROUTE
from ingest.settings import IngestSettings
from servicekit.env import Secret
from tests.ingest.conftest import ClientFactory, header_map, raw_reader
from tests.ingest.vonage_signing import ARCHIVES_SECRET, SESSIONS_SECRET, vonage_signed
from tests.kafka_helpers import consume_count
from tests.video_examples import (
    ARCHIVE_AVAILABLE,
    ARCHIVE_SESSION_ID,
    CONNECTION_CREATED,
    SESSION_ID,
    STREAM_CREATED,
)

SENT = [
    (VIDEO_SESSIONS_ROUTE, CONNECTION_CREATED, SESSION_ID, SESSIONS_SECRET),
    (VIDEO_SESSIONS_ROUTE, STREAM_CREATED, SESSION_ID, SESSIONS_SECRET),
    (VIDEO_ARCHIVES_ROUTE, ARCHIVE_AVAILABLE, ARCHIVE_SESSION_ID, ARCHIVES_SECRET),
]


@pytest.mark.parametrize("signed", [True, False], ids=["signed", "unsigned"])
async def test_video_callbacks_are_stored_exactly_as_sent_keyed_by_session(
    make_client: ClientFactory, ingest_settings: IngestSettings, signed: bool
) -> None:
    secrets = (
        {
            "video_sessions_secret": Secret(SESSIONS_SECRET),
            "video_archives_secret": Secret(ARCHIVES_SECRET),
        }
        if signed
        else {}
    )
    client = await make_client(**secrets)
    if signed:  # the signature is required, so what is read back below was signed
        refused = await client.post(VIDEO_ARCHIVES_ROUTE, data=ARCHIVE_AVAILABLE)
        assert refused.status == 401
    sent: dict[str, tuple[str, bytes, bytes, int]] = {}  # request id -> route, body, key, time
    for route, body, key, secret in SENT:
        bare = route == VIDEO_ARCHIVES_ROUTE  # Vonage may send the JWT without "Bearer "
        signature = vonage_signed(body, secret, bearer=not bare) if signed else {}
        before_ms = time.time_ns() // 1_000_000
        response = await client.post(route, data=body, headers=signature)
        assert (response.status, await response.read()) == (200, b""), route
        sent[response.headers["X-Request-Id"]] = (route, body, key, before_ms)

    bootstrap, topic = ingest_settings.kafka.bootstrap_servers, ingest_settings.raw_topic
    async with raw_reader(bootstrap, topic) as consumer:
        records = await consume_count(consumer, len(SENT))
    assert len(records) == len(SENT)
    for record in records:
        stored = header_map(record)
        route, body, key, before_ms = sent[stored["request-id"].decode()]
        assert record.value == body
        assert record.key == key
        assert stored["source-route"] == route.encode()
        assert stored["content-type"] == b"application/json"
        received_at = int(stored["received-at"])
        assert before_ms <= received_at <= time.time_ns() // 1_000_000
        assert record.timestamp == received_at
