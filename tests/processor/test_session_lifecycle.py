"""Session start and end, summaries and their revisions, idle timeout."""

from __future__ import annotations

import pytest

from processor.engine import expire_idle, snapshot
from processor.sources.meetings import apply_callback
from schemas.callbacks import ParticipantJoinedCallback
from schemas.events import (
    ParticipantAttendanceEvent,
    ParticipantJoinedEvent,
    ParticipantLeftEvent,
    SessionEndedEvent,
    SessionStartedEvent,
    SessionSummary,
)
from tests.processor.builders import (
    ROOM_ID,
    at,
    joined,
    left,
    recording_ended,
    recording_started,
    replay,
    session_ended,
    session_started,
)


def test_session_started_is_emitted_once() -> None:
    fed = replay([session_started(0), session_started(0, received=5_000)])

    [started] = fed.of_type(SessionStartedEvent)
    assert started.started_at == started.occurred_at == at(0)
    state = snapshot(fed.current)
    assert (state.status, state.started_at, state.session_started_seen) == ("active", at(0), True)
    assert state.version == 1


def test_a_full_meeting_ends_with_its_summary() -> None:
    fed = replay(
        [
            session_started(0),
            joined("alice", 1_000),
            joined("bob", 2_000),
            recording_started("rec-1", 3_000),
            left("bob", 5_000),
            joined("carol", 5_000),  # back to back with bob: no overlap
            recording_ended("rec-1", 3_000, 8_000, received=8_100),
            left("alice", 9_000),
            session_ended(0, 10_000),
        ]
    )
    assert fed.final_summary == SessionSummary(
        started_at=at(0),
        ended_at=at(10_000),
        duration_s=10.0,
        unique_participants=3,
        peak_concurrency=2,
        total_joins=3,
        participant_seconds=8.0 + 3.0 + 5.0,
        recordings=1,
        recorded_seconds=5.0,
        ended_by="callback",
        revision=1,
    )
    [ended] = fed.of_type(SessionEndedEvent)
    assert ended.occurred_at == at(10_000)
    state = snapshot(fed.current)
    assert (state.status, state.ended_at, state.duration_s) == ("ended", at(10_000), 10.0)


def test_session_ended_before_started_takes_the_start_from_the_end_callback() -> None:
    fed = replay([joined("alice", 1_000), session_ended(0, 10_000)])

    assert fed.of_type(SessionStartedEvent) == []
    state = snapshot(fed.current)
    assert (state.started_at, state.session_started_seen) == (at(0), False)

    late = fed.feed([session_started(0)])

    # Same start as reported: session.started goes out, the summary is unchanged.
    assert [type(event) for event in late] == [SessionStartedEvent]
    assert snapshot(fed.current).session_started_seen


def test_a_late_session_started_that_moves_the_start_revises_the_summary() -> None:
    fed = replay([joined("alice", 1_000), session_ended(500, 10_000)])

    late = fed.feed([session_started(0)])

    assert [type(event) for event in late] == [
        SessionStartedEvent,
        SessionEndedEvent,
        ParticipantAttendanceEvent,
    ]
    revised = fed.final_summary
    assert revised is not None
    assert (revised.started_at, revised.duration_s, revised.revision) == (at(0), 10.0, 2)


def test_a_correction_that_changes_nothing_in_the_summary_is_not_published() -> None:
    fed = replay([session_started(0), joined("alice", 1_000), session_ended(0, 10_000)])

    late = fed.feed([left("alice", 12_000)])  # clamped to the end: same attendance

    assert late == []
    summary = fed.final_summary
    assert summary is not None
    assert summary.revision == 1


def test_a_duplicate_session_ended_changes_nothing() -> None:
    fed = replay([session_started(0), joined("alice", 1_000), session_ended(0, 10_000)])
    version = fed.current.version

    callback, received = session_ended(0, 10_000)
    duplicate = apply_callback(fed.current, callback, received + 60_000)

    assert (duplicate.changed, duplicate.events) == (False, [])
    assert fed.current.version == version


def test_idle_expiry_closes_the_session_at_its_last_event() -> None:
    fed = replay([session_started(0), joined("alice", 1_000), joined("bob", 4_000)])

    expired = expire_idle(fed.current)

    assert expired.changed
    lefts = [event for event in expired.events if isinstance(event, ParticipantLeftEvent)]
    assert [(e.participant_id, e.left_reason, e.left_at) for e in lefts] == [
        ("alice", "timeout", at(4_000)),
        ("bob", "timeout", at(4_000)),
    ]
    [ended] = [event for event in expired.events if isinstance(event, SessionEndedEvent)]
    assert (ended.summary.ended_by, ended.summary.ended_at) == ("timeout", at(4_000))
    assert (ended.summary.participant_seconds, ended.summary.revision) == (3.0, 1)
    state = snapshot(fed.current)
    assert (state.status, state.active_count, state.ended_at) == ("timed_out", 0, at(4_000))


def test_expiring_a_closed_session_changes_nothing() -> None:
    fed = replay([session_started(0), session_ended(0, 10_000)])
    version = fed.current.version

    assert expire_idle(fed.current).changed is False
    assert fed.current.version == version


def test_a_real_end_after_a_timeout_revises_the_summary_without_new_lefts() -> None:
    fed = replay([session_started(0), joined("alice", 1_000), joined("bob", 4_000)])
    expire_idle(fed.current)

    real_end = fed.feed([session_ended(0, 10_000)])

    revision, *reports = real_end
    assert isinstance(revision, SessionEndedEvent)
    assert [type(report) for report in reports] == [ParticipantAttendanceEvent] * 2
    assert (revision.summary.ended_by, revision.summary.revision) == ("callback", 2)
    assert revision.summary.ended_at == at(10_000)
    assert revision.summary.participant_seconds == 9.0 + 6.0
    assert snapshot(fed.current).status == "ended"


def test_a_timed_out_session_never_becomes_active_again() -> None:
    fed = replay([session_started(0), joined("alice", 1_000)])
    expire_idle(fed.current)

    late = fed.feed([joined("bob", 50_000)])

    assert [type(event) for event in late] == [
        ParticipantJoinedEvent,
        ParticipantLeftEvent,
        SessionEndedEvent,
        ParticipantAttendanceEvent,
        ParticipantAttendanceEvent,
    ]
    sent_away = late[1]
    assert isinstance(sent_away, ParticipantLeftEvent)
    assert sent_away.left_reason == "timeout"
    state = snapshot(fed.current)
    assert (state.status, state.active_count) == ("timed_out", 0)


def test_a_callback_of_another_session_is_refused() -> None:
    fed = replay([session_started(0)])
    stranger = ParticipantJoinedCallback(
        participant_id="alice", session_id="1_other", room_id=ROOM_ID, is_host=False
    )

    with pytest.raises(ValueError, match="1_other"):
        apply_callback(fed.current, stranger, 0)
