"""The benchmark's Vonage Video API traffic: raw records as ingest stores them, every body one
the processor decodes, keyed and routed as the processor reads them. Broker-free."""

from __future__ import annotations

import random
from collections import Counter, defaultdict
from typing import Any

import orjson
import pytest

from bench.meetings import RawCallback, raw_callbacks
from bench.processor_state import MEETINGS_ROUTE, READER
from bench.processor_video import PRESENT, active_video_bodies, small_video
from bench.video import raw_video_callbacks
from processor.engine.facts import Arrived
from schemas.decoding import DecodeFailure, decode_video_callback
from schemas.sources import VIDEO_ARCHIVES_ROUTE, VIDEO_SESSIONS_ROUTE
from schemas.topics import HEADER_RECEIVED_AT, HEADER_SOURCE_ROUTE
from schemas.video import ArchiveCallback

NOW_MS = 1_700_000_000_000
HOUR_MS = 3_600_000
SESSIONS = 60


@pytest.fixture(scope="module")
def traffic() -> list[RawCallback]:
    return raw_video_callbacks(SESSIONS, now_ms=NOW_MS, seed=7)


def test_every_body_decodes_keyed_by_its_session_and_routed_by_its_kind(
    traffic: list[RawCallback],
) -> None:
    for callback in traffic:
        decoded = decode_video_callback(callback.body)
        assert not isinstance(decoded, DecodeFailure), (decoded, callback.body)
        assert callback.key == decoded.session_id.encode()
        route = (
            VIDEO_ARCHIVES_ROUTE if isinstance(decoded, ArchiveCallback) else VIDEO_SESSIONS_ROUTE
        )
        assert callback.route == route.encode()
        headers = dict(callback.headers(0))
        assert headers[HEADER_SOURCE_ROUTE] == route.encode()
        assert headers[HEADER_RECEIVED_AT] == str(callback.received_at_ms).encode()
        facts = READER.read(callback.body, callback.route, callback.received_at_ms)
        assert isinstance(facts, list), facts


def test_records_come_in_receive_order_within_the_hour_the_raw_topic_keeps(
    traffic: list[RawCallback],
) -> None:
    times = [callback.received_at_ms for callback in traffic]
    assert times == sorted(times)
    assert times[0] > NOW_MS - HOUR_MS
    assert times[-1] < NOW_MS


def test_the_mix_has_what_the_processor_meets_in_video_traffic(
    traffic: list[RawCallback],
) -> None:
    bodies: list[dict[str, Any]] = [orjson.loads(callback.body) for callback in traffic]
    events = Counter(body["event"] for body in bodies)
    assert events["sessionCreated"] >= SESSIONS
    assert events["sessionDestroyed"] >= SESSIONS
    statuses = Counter(body["status"] for body in bodies if body["event"] == "archive")
    assert {"started", "paused", "stopped"} <= set(statuses)
    assert statuses["uploaded"]
    assert statuses["available"]
    # Every session, and every instance of a reused id, is archived (retries aside).
    instances = {callback.body for callback in traffic if b'"sessionCreated"' in callback.body}
    assert len({body["id"] for body in bodies if body["event"] == "archive"}) == len(instances)
    video_types = Counter(
        body["stream"].get("videoType") for body in bodies if body["event"] == "streamCreated"
    )
    assert video_types["camera"]
    assert video_types["screen"]
    connections: dict[tuple[str, str], set[str]] = defaultdict(set)
    for body in bodies:
        if body["event"] == "connectionCreated":
            data = orjson.loads(body["connection"]["data"])
            assert "userId" in data
            assert set(data) <= {"userId", "name"}
            connections[body["sessionId"], data["userId"]].add(body["connection"]["id"])
    reconnected = [ids for ids in connections.values() if len(ids) > 1]
    assert reconnected, "nobody came back under a new connection id"


def test_callbacks_per_session_are_comparable_with_the_meetings_workload(
    traffic: list[RawCallback],
) -> None:
    meetings = raw_callbacks(SESSIONS, now_ms=NOW_MS, seed=7)
    assert len(meetings) < len(traffic) < 2.5 * len(meetings)


def test_the_engine_benchmarks_video_sessions_decode_and_name_their_people() -> None:
    rng = random.Random(1)
    active = active_video_bodies(rng, NOW_MS)
    people = set()
    for received_at, body, route in active:
        facts = READER.read(body, route, received_at)
        assert isinstance(facts, list), body
        assert facts, body
        people |= {fact.person.participant_id for fact in facts if isinstance(fact, Arrived)}
    assert len(people) == PRESENT
    small = small_video(rng, NOW_MS)
    assert all(callback.route != MEETINGS_ROUTE for callback in small)
    assert all(
        not isinstance(decode_video_callback(callback.body), DecodeFailure) for callback in small
    )
