"""The engine on Vonage Video API callbacks (contract §7): people and connections, streams,
archives, through the same facts and rules as Meetings."""

from __future__ import annotations

from processor.engine import all_records, apply, event_id, snapshot
from processor.engine.facts import Arrived, Origin, Person
from processor.engine.session import CHUNK_PARTICIPANTS
from processor.sources import ParticipantKey
from schemas.events import (
    ParticipantJoinedEvent,
    ParticipantLeftEvent,
    RecordingReadyEvent,
    SessionStartedEvent,
    StreamEndedEvent,
)
from tests import video_examples
from tests.processor.video_builders import (
    PROJECT_ID,
    SESSION_ID,
    T0,
    VideoPlayer,
    archive,
    connected,
    disconnected,
    person,
    session_created,
    session_destroyed,
    stream_created,
    stream_destroyed,
)

BY_USER = ParticipantKey("data.userId")


def test_the_documented_connection_is_a_participant_of_a_started_session() -> None:
    route = b"/video/sessions"
    player = VideoPlayer().play(
        [(video_examples.CONNECTION_CREATED, route), (video_examples.STREAM_CREATED, route)]
    )
    (started,) = player.of_type("session.started")
    (joined,) = player.of_type("participant.joined")
    assert isinstance(started, SessionStartedEvent)
    assert isinstance(joined, ParticipantJoinedEvent)
    assert started.source == joined.source == "video"
    assert started.tenant_id == joined.tenant_id == "123456"
    assert joined.participant_id == joined.connection_id == "c053fcc8-c681-41d5-8ec2-7a9e1434a21e"
    assert joined.joined_at == "2016-08-03T20:54:48.309Z"
    state = player.state()
    assert (state.source, state.tenant_id, state.instance) == ("video", "123456", 1)
    assert (state.active_count, state.active_connections, state.active_streams) == (1, 1, 1)

    player.play([(video_examples.CONNECTION_DESTROYED, route)])
    (left,) = player.of_type("participant.left")
    (stream_ended,) = player.of_type("stream.ended")
    assert isinstance(left, ParticipantLeftEvent)
    assert isinstance(stream_ended, StreamEndedEvent)
    assert left.disconnect_reason == "clientDisconnected"
    assert left.left_reason == "left"
    assert stream_ended.reason == "clientDisconnected"
    assert stream_ended.ended_at == left.left_at
    assert (player.state().active_connections, player.state().active_streams) == (0, 0)


def test_a_person_with_two_connections_is_present_once() -> None:
    ada = person("u-1", "Ada")
    player = VideoPlayer(BY_USER).play(
        [
            connected(0, "c1", ada),
            connected(1_000, "c2", ada),  # a second device
            disconnected(5_000, "c1"),  # destroyed events need not repeat the token data
        ]
    )
    state = player.state()
    assert (state.active_count, state.active_connections) == (1, 1)
    assert [p.participant_id for p in state.active_participants] == ["u-1"]
    assert state.active_participants[0].name == "Ada"
    assert len(player.of_type("participant.joined")) == 1
    assert player.of_type("participant.left") == []

    player.play([disconnected(9_000, "c2"), session_destroyed(20_000)])
    (left,) = player.of_type("participant.left")
    assert left.connection_id == "c2"
    assert left.duration_s == 9.0
    attendance = player.final_attendance()["u-1"]
    assert (attendance.stints, attendance.attended_s) == (1, 9.0)
    summary = player.final_summary().summary
    assert (summary.unique_participants, summary.peak_concurrency, summary.total_joins) == (1, 1, 1)


def test_a_reconnect_under_a_new_connection_continues_the_person_as_a_new_stint() -> None:
    ada = person("u-1")
    player = VideoPlayer(BY_USER).play(
        [
            connected(0, "c1", ada),
            disconnected(60_000, "c1", "networkDisconnected"),
            connected(65_000, "c2", ada),
            disconnected(125_000, "c2"),
            session_destroyed(200_000, "serverRotation"),
        ]
    )
    joins = player.of_type("participant.joined")
    assert [(j.stint, j.connection_id) for j in joins] == [(1, "c1"), (2, "c2")]
    assert player.of_type("participant.left")[0].disconnect_reason == "networkDisconnected"
    attendance = player.final_attendance()["u-1"]
    assert (attendance.stints, attendance.attended_s) == (2, 120.0)
    summary = player.final_summary().summary
    assert (summary.unique_participants, summary.total_joins) == (1, 2)
    assert summary.ended_by == "callback"
    assert summary.end_reason == "serverRotation"


def test_without_a_person_key_every_connection_is_a_participant() -> None:
    ada = person("u-1")
    player = VideoPlayer().play(
        [connected(0, "c1", ada), connected(1, "c2", ada), session_destroyed(10_000)]
    )
    assert player.final_summary().summary.unique_participants == 2
    assert player.final_summary().summary.peak_concurrency == 2


def test_a_retried_connection_created_of_a_closed_connection_changes_nothing() -> None:
    player = VideoPlayer().play([connected(0, "c1"), disconnected(10_000, "c1")])
    before = player.current.version
    player.play([connected(0, "c1")])
    assert player.current.version == before
    assert len(player.of_type("participant.joined")) == 1


def test_screen_shares_are_measured_per_person_and_session() -> None:
    ada, bob = person("u-1"), person("u-2")
    player = VideoPlayer(BY_USER).play(
        [
            session_created(0),
            connected(0, "c1", ada),
            connected(0, "c2", bob),
            stream_created(1_000, "s-cam", "c1", "camera"),
            stream_created(2_000, "s-screen", "c1", "screen"),
            stream_destroyed(
                32_000, "s-screen", "c1", "screen", created=2_000, reason="mediaStopped"
            ),
            stream_created(40_000, "s-audio", "c2", None),
            stream_created(50_000, "s-screen2", "c2", "screen"),
            session_destroyed(60_000),  # ends the streams still open
        ]
    )
    ended = {e.stream_id: e for e in player.of_type("stream.ended")}
    assert ended["s-screen"].reason == "mediaStopped"
    assert ended["s-screen"].duration_s == 30.0
    assert ended["s-screen2"].reason is None
    assert ended["s-screen2"].duration_s == 10.0
    assert ended["s-audio"].video_type is None
    assert player.final_summary().summary.screen_share_s == 40.0
    attendance = player.final_attendance()
    assert (attendance["u-1"].screen_share_s, attendance["u-2"].screen_share_s) == (30.0, 10.0)


def test_an_archive_pauses_resumes_and_ends_once_when_uploaded_precedes_stopped() -> None:
    player = VideoPlayer().play(
        [
            connected(0, "c1"),
            archive(1_000, "a1", "started"),
            archive(10_000, "a1", "paused"),
            archive(20_000, "a1", "started"),
            archive(20_000, "a1", "started"),  # a retry
            archive(60_000, "a1", "uploaded", duration=50, size="1234"),
        ]
    )
    tags = [str(type(event).__struct_config__.tag) for event in player.events]
    kinds = [tag for tag in tags if tag.startswith("recording.")]
    assert kinds == [
        "recording.started",
        "recording.paused",
        "recording.resumed",
        "recording.ended",
        "recording.ready",
    ]
    (ready,) = player.of_type("recording.ready")
    assert isinstance(ready, RecordingReadyEvent)
    assert (ready.storage, ready.url, ready.size_bytes, ready.duration_s) == (
        "external",
        "",
        1234,
        50,
    )
    assert ready.tenant_id == PROJECT_ID
    before = len(player.events)
    player.play([archive(59_000, "a1", "stopped", duration=50, reason="user initiated")])
    assert len(player.events) == before  # the stop adds its reason, no second recording.ended
    (recording,) = player.state().recordings
    assert recording.status == "ready"
    assert recording.stages_seen == ["started", "paused", "ended", "ready"]


def test_an_available_archive_carries_its_url_and_its_expiry() -> None:
    player = VideoPlayer().play([(video_examples.ARCHIVE_AVAILABLE, b"/video/archives")])
    (ready,) = player.of_type("recording.ready")
    assert ready.storage == "vonage"
    assert ready.url.startswith("https://")
    assert ready.duration_s == 328
    assert ready.size_bytes == 18023312
    assert ready.tenant_id == "123456"  # partnerId, a number, as a string
    assert ready.url_expires_at is not None
    assert ready.url_expires_at > ready.occurred_at


def test_failed_and_expired_archives_have_their_events_and_status() -> None:
    player = VideoPlayer().play(
        [
            archive(0, "a1", "started"),
            archive(5_000, "a1", "failed", reason="failure"),
            archive(0, "a2", "available", url="https://x/a2.mp4", duration=3),
            archive(10_000, "a2", "expired"),
            archive(11_000, "a3", "deleted"),  # accepted, no stage
            archive(12_000, "a4", "someFutureStatus"),
        ]
    )
    (failed,) = player.of_type("recording.failed")
    assert failed.reason == "failure"
    assert len(player.of_type("recording.expired")) == 1
    statuses = {r.recording_id: r.status for r in player.state().recordings}
    assert statuses == {"a1": "failed", "a2": "expired"}


def test_video_state_survives_a_restore() -> None:
    ada = person("u-1")
    player = VideoPlayer(BY_USER).play(
        [connected(0, "c1", ada), stream_created(10, "s1", "c1", "screen")]
    )
    restored = player.restarted()
    assert snapshot(restored.current) == player.state()
    # The restored session still knows whose connection c1 is (destroyed events lack data).
    restored.play([disconnected(5_000, "c1"), session_destroyed(6_000)])
    (left,) = restored.of_type("participant.left")
    assert left.participant_id == "u-1"
    assert restored.final_summary().summary.screen_share_s == 4.99


def test_a_stream_keeps_its_persons_copy_of_the_connection_id_live_and_restored() -> None:
    """Memory: one copy of each connection id and video type, however many callbacks name
    them (each decodes its own)."""
    player = VideoPlayer(BY_USER).play(
        [
            connected(0, "c1", person("u-1")),
            stream_created(10, "s1", "c1", "camera"),
            connected(20, "c2", person("u-2")),
            stream_created(30, "s2", "c2", "camera"),
        ]
    )
    for session in (player.current, player.restarted().current):
        streams = []
        for participant in session.participants.values():
            video = participant.video_part()
            (kept,) = video.connections
            (stream,) = video.streams.values()
            assert stream.connection_id is kept
            streams.append(stream)
        assert streams[0].video_type is streams[1].video_type


def test_event_ids_carry_the_source_so_a_meetings_session_of_the_same_id_differs() -> None:
    (joined,) = VideoPlayer().play([connected(0, "c1")]).of_type("participant.joined")
    meetings_id = event_id("participant.joined", SESSION_ID, "c1", 1)
    opened_at = T0  # the event time of the callback that opened the instance
    assert joined.event_id == event_id(
        "participant.joined", "video", SESSION_ID, 1, opened_at, "c1", 1
    )
    assert joined.event_id != meetings_id


def test_a_video_session_beyond_one_changelog_chunk_restores_its_connections() -> None:
    people = [person(f"u-{n}") for n in range(CHUNK_PARTICIPANTS * 2 + 3)]
    player = VideoPlayer(BY_USER).play(
        [
            *(connected(n, f"c-{n}", data) for n, data in enumerate(people)),
            *(stream_created(1_000 + n, f"s-{n}", f"c-{n}", "screen") for n in range(0, 70, 7)),
            *(disconnected(5_000 + n, f"c-{n}") for n in range(0, 70, 3)),
        ]
    )
    restored = player.restarted()
    assert snapshot(restored.current) == player.state()
    assert dict(all_records(restored.current)) == dict(all_records(player.current))
    restored.play([disconnected(9_000, "c-1"), session_destroyed(10_000)])
    player.play([disconnected(9_000, "c-1"), session_destroyed(10_000)])
    assert restored.final_summary() == player.final_summary()
    assert restored.final_attendance() == player.final_attendance()


def test_a_meetings_participant_reported_again_by_video_keeps_its_stints() -> None:
    """A session id both sources report on (a Meetings session is a Video session)."""
    meetings = Origin(session_id=SESSION_ID, source="meetings", room_id="r-1")
    first = apply(None, [Arrived(meetings, Person("u-1", name="Ada"), T0)], T0)
    player = VideoPlayer(BY_USER, session=first.session)
    player.play([connected(60_000, "c1", person("u-1"))])
    participant = player.current.participants["u-1"]
    assert participant.connections is not None
    assert participant.stint_count == 1  # present already: the connection adds no stint
    assert (participant.name, player.current.room_id) == ("Ada", "r-1")
