"""Recording stages in and out of order."""

from __future__ import annotations

from processor.engine import snapshot
from schemas.callbacks import RecordingReadyAliasCallback
from schemas.events import RecordingEndedEvent, RecordingReadyEvent, RecordingStartedEvent
from tests.processor.builders import (
    at,
    joined,
    recording_ended,
    recording_ready,
    recording_started,
    replay,
    session_ended,
    session_started,
)


def test_stages_in_order_emit_one_event_each_and_advance_the_status() -> None:
    fed = replay([session_started(0), recording_started("rec-1", 1_000)])
    [recording] = snapshot(fed.current).recordings
    assert (recording.status, recording.started_at) == ("started", at(1_000))
    assert snapshot(fed.current).recording_active

    fed.feed([recording_ended("rec-1", 900, 6_000, received=6_050)])
    [recording] = snapshot(fed.current).recordings
    assert recording.status == "ended"
    assert recording.started_at == at(900)  # Vonage's own start time, once known
    assert recording.duration_s == 5.1
    assert not snapshot(fed.current).recording_active

    fed.feed([recording_ready("rec-1", 900, 6_000, received=30_000)])
    [recording] = snapshot(fed.current).recordings
    assert recording.status == "ready"
    assert recording.url == "https://example.com/recordings/rec-1.mp4"
    assert recording.stages_seen == ["started", "ended", "ready"]

    assert [type(event) for event in fed.events[1:]] == [
        RecordingStartedEvent,
        RecordingEndedEvent,
        RecordingReadyEvent,
    ]


def test_stages_out_of_order_never_regress_and_each_is_emitted_once() -> None:
    fed = replay(
        [
            recording_ready(
                "rec-1", 900, 6_000, received=30_000, spelling=RecordingReadyAliasCallback
            ),
            recording_ended("rec-1", 900, 6_000, received=6_050),
            recording_started("rec-1", 1_000),
            recording_ended("rec-1", 900, 6_000, received=7_000),
        ]
    )
    [recording] = snapshot(fed.current).recordings
    assert recording.status == "ready"
    assert recording.stages_seen == ["started", "ended", "ready"]
    assert [type(event) for event in fed.events] == [
        RecordingReadyEvent,
        RecordingEndedEvent,
        RecordingStartedEvent,
    ]
    [started] = fed.of_type(RecordingStartedEvent)
    assert started.started_at == at(900)  # prefers Vonage's time over the receive time


def test_a_started_recording_is_not_active_once_the_session_closed() -> None:
    fed = replay([session_started(0), recording_started("rec-1", 1_000)])
    fed.feed([session_ended(0, 10_000)])

    state = snapshot(fed.current)
    assert state.recordings[0].status == "started"
    assert not state.recording_active


def test_recordings_without_a_room_take_the_sessions_room() -> None:
    fed = replay([joined("alice", 0), recording_started("rec-1", 1_000)])

    [started] = fed.of_type(RecordingStartedEvent)
    assert started.room_id == fed.current.room_id is not None


def test_the_summary_counts_recordings_and_known_durations() -> None:
    fed = replay(
        [
            session_started(0),
            recording_started("rec-1", 1_000),
            recording_ended("rec-1", 1_000, 4_000, received=4_000),
            recording_started("rec-2", 5_000),  # never ended: counted, no duration
            recording_ready("rec-3", 5_000, 7_500, received=9_000),
            session_ended(0, 10_000),
        ]
    )
    summary = fed.final_summary
    assert summary is not None
    assert (summary.recordings, summary.recorded_seconds) == (3, 5.5)
    assert [r.recording_id for r in snapshot(fed.current).recordings] == ["rec-1", "rec-2", "rec-3"]


def test_a_late_ended_does_not_overwrite_the_times_of_ready() -> None:
    fed = replay(
        [
            recording_ready("rec-1", 1_000, 6_000, received=30_000),
            recording_ended("rec-1", 1_200, 5_900, received=5_950),
        ]
    )
    [recording] = snapshot(fed.current).recordings
    assert (recording.started_at, recording.ended_at, recording.duration_s) == (
        at(1_000),
        at(6_000),
        5.0,
    )
    [ended] = fed.of_type(RecordingEndedEvent)
    assert ended.duration_s == 4.7  # the event itself reports its own callback
