"""``meetings-tail``'s lines for Video events, Video session state and raw callbacks of both
sources, and what Meetings lines leave out. Broker-free: ``LineFormat`` renders records."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import msgspec
import pytest

from schemas import (
    ParticipantAttendanceEvent,
    ParticipantJoinedEvent,
    ParticipantLeftEvent,
    RecordingEndedEvent,
    RecordingReadyEvent,
    SessionEndedEvent,
    SessionState,
    SessionSummary,
    encode,
)
from schemas.events import (
    RecordingExpiredEvent,
    RecordingFailedEvent,
    RecordingPausedEvent,
    RecordingResumedEvent,
    StreamEndedEvent,
    StreamStartedEvent,
)
from schemas.topics import HEADER_SOURCE_ROUTE
from tests.video_examples import ARCHIVE_AVAILABLE, CONNECTION_DESTROYED, STREAM_CREATED
from tools.tail.lines import LineFormat

SESSION = "2_MX40NjMzOTg5Mn5-fjE2MzU4NzA0ODI2NjN-Rk9vTjJ3cXlhRk1YcmJ0-fg"
ROOM = "7d0e1b36-1c8b-4bd1-a0a4-0ad6a5b5c0de"
PARTICIPANT = "c1f3a9e2-5b7d-4e8f-9a0b-1c2d3e4f5a6b"


@dataclass(frozen=True)
class FakeRecord:
    value: bytes | None
    headers: list[tuple[str, bytes]] = field(default_factory=list)
    key: bytes | None = None
    timestamp: int = 1_635_870_000_000  # 2021-11-02T16:20:00.000Z


CONNECTION = "c053fcc8-c681-41d5-8ec2-7a9e1434a21e"
STREAM = "63245362-e00e-4834-8371-9397deb3e452"
ARCHIVE = "b40ef09b-3811-4726-b508-e41a0f96c68f"
AT = "2021-11-02T16:30:00.000Z"
VIDEO: dict[str, Any] = {
    "event_id": "e-v",
    "occurred_at": AT,
    "session_id": SESSION,
    "room_id": None,
    "source": "video",
    "tenant_id": "46339892",
}
S = "session=2_MX..k1YcmJ0-fg"
TAIL = "source=video tenant=46339892"
SUMMARY = SessionSummary(
    started_at="2021-11-02T16:10:00.000Z",
    ended_at=AT,
    duration_s=1200.0,
    unique_participants=2,
    peak_concurrency=2,
    total_joins=3,
    participant_seconds=1800.0,
    recordings=0,
    recorded_seconds=0.0,
    ended_by="callback",
    revision=1,
    screen_share_s=120.0,
    end_reason="serverRotation",
)

VIDEO_LINES: list[tuple[msgspec.Struct, str]] = [
    (
        StreamStartedEvent(
            **VIDEO,
            stream_id=STREAM,
            participant_id="u-17",
            connection_id=CONNECTION,
            video_type="screen",
            started_at=AT,
        ),
        f"stream.started     {S} participant=u-17 stream=63245362 video_type=screen "
        f"connection=c053fcc8 {TAIL}",
    ),
    (
        StreamEndedEvent(
            **VIDEO,
            instance=2,
            stream_id=STREAM,
            participant_id="u-17",
            connection_id=CONNECTION,
            video_type=None,
            started_at="2021-11-02T16:28:54.500Z",
            ended_at=AT,
            duration_s=65.5,
            reason="networkDisconnected",
        ),
        f"stream.ended       {S} instance=2 participant=u-17 stream=63245362 video_type=- "
        f"connection=c053fcc8 duration=65.5s reason=networkDisconnected {TAIL}",
    ),
    (
        ParticipantJoinedEvent(
            **VIDEO,
            participant_id="u-17",
            name="Ada",
            is_host=False,
            joined_at=AT,
            stint=2,
            connection_id=CONNECTION,
        ),
        f'participant.joined {S} participant=u-17 name="Ada" stint=2 connection=c053fcc8 {TAIL}',
    ),
    (
        ParticipantLeftEvent(
            **VIDEO,
            participant_id="u-17",
            name=None,
            is_host=False,
            joined_at="2021-11-02T16:29:48.000Z",
            left_at=AT,
            duration_s=12.0,
            left_reason="left",
            connection_id=CONNECTION,
            disconnect_reason="networkDisconnected",
        ),
        f"participant.left   {S} participant=u-17 name=- duration=12.0s reason=left "
        f"connection=c053fcc8 disconnect_reason=networkDisconnected {TAIL}",
    ),
    (
        ParticipantAttendanceEvent(
            **VIDEO,
            participant_id="u-17",
            name="Ada",
            is_host=False,
            stints=2,
            attended_s=900.0,
            first_joined_at="2021-11-02T16:10:00.000Z",
            last_left_at=AT,
            revision=1,
            screen_share_s=120.0,
        ),
        f'participant.attendance {S} participant=u-17 name="Ada" stints=2 attended=900s '
        f"screen_share=120s rev=1 {TAIL}",
    ),
    (
        SessionEndedEvent(**VIDEO, instance=2, summary=SUMMARY),
        f"session.ended      {S} instance=2 duration=1200s participants=2 peak=2 joins=3 "
        f"attended=1800s recordings=0 screen_share=120s ended_by=callback "
        f"end_reason=serverRotation rev=1 {TAIL}",
    ),
    (
        SessionEndedEvent(
            **VIDEO,
            summary=msgspec.structs.replace(
                SUMMARY, ended_by="empty", end_reason=None, screen_share_s=0.0
            ),
        ),
        f"session.ended      {S} duration=1200s participants=2 peak=2 joins=3 attended=1800s "
        f"recordings=0 ended_by=empty rev=1 {TAIL}",
    ),
    (
        RecordingPausedEvent(**VIDEO, recording_id=ARCHIVE, paused_at=AT),
        f"recording.paused   recording=b40ef09b {S} {TAIL}",
    ),
    (
        RecordingResumedEvent(**VIDEO, recording_id=ARCHIVE, resumed_at=AT),
        f"recording.resumed  recording=b40ef09b {S} {TAIL}",
    ),
    (
        RecordingEndedEvent(
            **VIDEO,
            recording_id=ARCHIVE,
            started_at="2021-11-02T16:24:32.000Z",
            ended_at=AT,
            duration_s=328.0,
            reason="user initiated",
        ),
        f'recording.ended    recording=b40ef09b {S} duration=328s reason="user initiated" {TAIL}',
    ),
    (
        RecordingReadyEvent(
            **VIDEO,
            recording_id=ARCHIVE,
            started_at="2021-11-02T16:24:32.000Z",
            ended_at="2021-11-02T16:30:00.000Z",
            duration_s=328.0,
            url="https://example.invalid/archive.mp4",
            storage="vonage",
            url_expires_at="2021-11-02T16:40:00.000Z",
            size_bytes=18_023_312,
            output_mode="composed",
        ),
        f"recording.ready    recording=b40ef09b {S} duration=328s storage=vonage size=18.0MB "
        f"url=https://example.invalid/archive.mp4 url_expires=2021-11-02T16:40:00.000Z {TAIL}",
    ),
    (
        RecordingReadyEvent(
            **VIDEO,
            recording_id=ARCHIVE,
            started_at="2021-11-02T16:24:32.000Z",
            ended_at=AT,
            duration_s=328.0,
            url="",
            storage="external",
            size_bytes=900,
        ),
        f"recording.ready    recording=b40ef09b {S} duration=328s storage=external size=900B "
        f"{TAIL}",
    ),
    (
        RecordingFailedEvent(**VIDEO, recording_id=ARCHIVE, failed_at=AT, reason="failure"),
        f"recording.failed   recording=b40ef09b {S} reason=failure {TAIL}",
    ),
    (
        RecordingExpiredEvent(**VIDEO, recording_id=ARCHIVE, expired_at=AT),
        f"recording.expired  recording=b40ef09b {S} {TAIL}",
    ),
]


@pytest.mark.parametrize(
    ("event", "line"),
    VIDEO_LINES,
    ids=[f"{type(e).__name__}-{n}" for n, (e, _) in enumerate(VIDEO_LINES)],
)
def test_video_events_get_readable_lines(event: msgspec.Struct, line: str) -> None:
    assert LineFormat().line(FakeRecord(encode(event))) == f"{AT} {line}"


def test_meetings_participants_show_no_video_fields() -> None:
    left = ParticipantLeftEvent(
        event_id="e-4",
        occurred_at=AT,
        session_id=SESSION,
        room_id=ROOM,
        participant_id=PARTICIPANT,
        name="Ada Lovelace",
        is_host=True,
        joined_at="2021-11-02T16:26:00.000Z",
        left_at=AT,
        duration_s=240.0,
        left_reason="session_ended",
    )
    assert LineFormat().line(FakeRecord(encode(left))) == (
        f"{AT} participant.left   {S} participant=c1f3a9e2 "
        'name="Ada Lovelace" duration=240s reason=session_ended source=meetings'
    )


def test_video_session_state_shows_connections_streams_and_instance() -> None:
    state = SessionState(
        session_id=SESSION,
        room_id=None,
        status="active",
        started_at="2021-11-02T16:25:09.120Z",
        ended_at=None,
        duration_s=None,
        active_participants=[],
        active_count=2,
        peak_concurrency=3,
        unique_participants=3,
        total_joins=4,
        recordings=[],
        recording_active=False,
        last_event_at=AT,
        version=9,
        source="video",
        tenant_id="46339892",
        instance=2,
        active_connections=3,
        active_streams=4,
    )
    assert LineFormat().line(FakeRecord(encode(state))) == (
        f"{AT} state              {S} instance=2 status=active active=2 connections=3 "
        f"streams=4 peak=3 unique=3 joins=4 recordings=0 v=9 {TAIL}"
    )


@pytest.mark.parametrize(
    ("body", "route", "line"),
    [
        (
            CONNECTION_DESTROYED,
            b"/video/sessions",
            "connectionDestroyed session=2_MX..kxOH45QXRr connection=c053fcc8 "
            "reason=clientDisconnected tenant=123456",
        ),
        (
            STREAM_CREATED,
            b"/video/sessions",
            "streamCreated      session=2_MX..kxOH45QXRr stream=63245362 connection=c053fcc8 "
            "video_type=camera tenant=123456",
        ),
        (
            ARCHIVE_AVAILABLE,
            None,  # no route header: read as whichever source's callback it is
            "archive            session=2_MX..DQ2MzE2NH4 archive=b40ef09b status=available "
            "tenant=123456",
        ),
        (
            b'{"event":"recording:started","recording_id":"r-1","session_id":"s-1"}',
            b"/callbacks/recordings",
            "recording:started  session_id=s-1 recording_id=r-1",
        ),
    ],
    ids=["connection", "stream", "archive-without-route", "meetings"],
)
def test_raw_callbacks_are_read_by_their_routes_source(
    body: bytes, route: bytes | None, line: str
) -> None:
    headers = [] if route is None else [(HEADER_SOURCE_ROUTE, route)]
    assert LineFormat().line(FakeRecord(body, headers)) == f"2021-11-02T16:20:00.000Z {line}"


def test_a_video_body_on_a_meetings_route_is_undecodable() -> None:
    record = FakeRecord(CONNECTION_DESTROYED, [(HEADER_SOURCE_ROUTE, b"/callbacks")])
    assert " undecodable        reason=unknown_event value=" in LineFormat().line(record)
