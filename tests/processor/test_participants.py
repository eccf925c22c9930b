"""Participant joins and lefts: order, duplicates, lateness and clock skew."""

from __future__ import annotations

from processor.engine import apply, snapshot
from schemas.callbacks import ParticipantJoinedHyphenCallback, ParticipantLeftShortCallback
from schemas.events import ParticipantJoinedEvent, ParticipantLeftEvent, SessionEndedEvent
from tests.processor.builders import (
    ROOM_ID,
    SESSION_ID,
    at,
    joined,
    left,
    replay,
    session_ended,
    session_started,
)


def test_join_then_left_emits_both_with_the_attendance() -> None:
    fed = replay([session_started(0), joined("alice", 1_000), left("alice", 61_000)])

    [joined_event] = fed.of_type(ParticipantJoinedEvent)
    [left_event] = fed.of_type(ParticipantLeftEvent)
    assert joined_event.participant_id == "alice"
    assert joined_event.name == "Alice"
    assert joined_event.participant_type == "Guest"
    assert joined_event.occurred_at == joined_event.joined_at == at(1_000)
    assert (joined_event.session_id, joined_event.room_id) == (SESSION_ID, ROOM_ID)
    assert left_event.joined_at == at(1_000)
    assert left_event.left_at == left_event.occurred_at == at(61_000)
    assert left_event.duration_s == 60.0
    assert left_event.left_reason == "left"


def test_every_spelling_of_join_and_left_is_the_same_participant() -> None:
    fed = replay(
        [
            joined("alice", 1_000, spelling=ParticipantJoinedHyphenCallback),
            left("alice", 2_000, spelling=ParticipantLeftShortCallback),
        ]
    )
    assert [type(event) for event in fed.events] == [ParticipantJoinedEvent, ParticipantLeftEvent]
    assert snapshot(fed.current).unique_participants == 1


def test_a_retried_join_arriving_later_changes_nothing() -> None:
    fed = replay([session_started(0), joined("alice", 1_000)])
    version = fed.current.version

    join_callback, _ = joined("alice", 1_000)
    retry = apply(fed.current, join_callback, fed.current.last_event_at + 30_000)

    assert not retry.changed
    assert retry.events == []
    assert fed.current.version == version
    assert snapshot(fed.current).active_participants[0].joined_at == at(1_000)


def test_an_earlier_copy_of_a_join_moves_the_join_time_without_a_second_event() -> None:
    fed = replay([joined("alice", 5_000), joined("alice", 1_000)])

    assert len(fed.of_type(ParticipantJoinedEvent)) == 1
    assert snapshot(fed.current).active_participants[0].joined_at == at(1_000)


def test_joining_twice_is_one_attendance_from_the_first_join_to_the_first_left() -> None:
    fed = replay(
        [
            session_started(0),
            joined("alice", 1_000),
            left("alice", 2_000),
            joined("alice", 3_000),
            left("alice", 4_000),
            session_ended(0, 10_000),
        ]
    )
    summary = fed.final_summary
    assert summary is not None
    assert (summary.total_joins, summary.unique_participants) == (1, 1)
    assert summary.participant_seconds == 1.0
    assert len(fed.of_type(ParticipantLeftEvent)) == 1


def test_left_before_join_is_not_an_active_participant_and_has_no_duration() -> None:
    fed = replay([session_started(0), left("bob", 9_000)])

    [left_event] = fed.of_type(ParticipantLeftEvent)
    assert left_event.joined_at is None
    assert left_event.duration_s is None
    assert left_event.left_at == at(9_000)
    state = snapshot(fed.current)
    assert state.active_count == 0
    assert (state.unique_participants, state.total_joins) == (1, 0)

    late_join = fed.feed([joined("bob", 2_000)])

    assert [type(event) for event in late_join] == [ParticipantJoinedEvent]
    state = snapshot(fed.current)
    assert state.active_count == 0  # the left already happened
    assert (state.unique_participants, state.total_joins) == (1, 1)


def test_a_participant_without_a_join_attends_from_the_session_start() -> None:
    fed = replay([session_started(0), left("bob", 9_000), session_ended(0, 20_000)])

    summary = fed.final_summary
    assert summary is not None
    assert summary.participant_seconds == 9.0
    assert summary.peak_concurrency == 1


def test_the_session_ending_sends_away_everyone_still_present() -> None:
    fed = replay(
        [
            session_started(0),
            joined("bob", 2_000),
            joined("alice", 1_000),
            joined("carol", 3_000),
            left("carol", 4_000),
        ]
    )
    closing = fed.feed([session_ended(0, 10_000)])

    assert [type(event) for event in closing] == [
        ParticipantLeftEvent,
        ParticipantLeftEvent,
        SessionEndedEvent,
    ]
    lefts = [event for event in closing if isinstance(event, ParticipantLeftEvent)]
    assert [event.participant_id for event in lefts] == ["alice", "bob"]  # by join time
    assert {event.left_reason for event in lefts} == {"session_ended"}
    assert {event.left_at for event in lefts} == {at(10_000)}
    assert [event.duration_s for event in lefts] == [9.0, 8.0]
    assert snapshot(fed.current).active_participants == []


def test_a_join_after_the_end_is_joined_and_sent_away_at_once() -> None:
    fed = replay([session_started(0), joined("alice", 1_000), session_ended(0, 10_000)])

    late = fed.feed([joined("dave", 15_000)])

    assert [type(event) for event in late] == [
        ParticipantJoinedEvent,
        ParticipantLeftEvent,
        SessionEndedEvent,
    ]
    sent_away = late[1]
    assert isinstance(sent_away, ParticipantLeftEvent)
    assert sent_away.left_reason == "session_ended"
    assert sent_away.left_at == at(10_000)  # clamped into the session
    assert sent_away.duration_s == 0.0
    assert snapshot(fed.current).active_participants == []


def test_a_left_arriving_after_the_end_refines_the_summary_without_a_second_left() -> None:
    fed = replay([session_started(0), joined("alice", 1_000), session_ended(0, 10_000)])
    first_summary = fed.final_summary
    assert first_summary is not None
    assert first_summary.participant_seconds == 9.0

    late = fed.feed([left("alice", 6_000)])

    assert [type(event) for event in late] == [SessionEndedEvent]
    revised = fed.final_summary
    assert revised is not None
    assert revised.participant_seconds == 5.0
    assert revised.revision == 2


def test_skewed_clocks_are_clamped_into_the_session() -> None:
    # Ingest received the join 300 ms before Vonage's start and the left 500 ms after its end.
    fed = replay(
        [
            joined("alice", -300),
            session_started(0),
            left("alice", 10_500),
            session_ended(0, 10_000),
        ]
    )
    summary = fed.final_summary
    assert summary is not None
    assert summary.participant_seconds == summary.duration_s == 10.0
    [left_event] = fed.of_type(ParticipantLeftEvent)
    assert left_event.duration_s is not None
    assert left_event.duration_s >= 0


def test_a_left_received_before_its_join_never_yields_a_negative_duration() -> None:
    fed = replay([session_started(0), left("alice", 3_000), joined("alice", 5_000)])
    fed.feed([session_ended(0, 10_000)])

    summary = fed.final_summary
    assert summary is not None
    assert summary.participant_seconds == 0.0
    assert summary.peak_concurrency == 1  # present for an instant
