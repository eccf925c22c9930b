"""Participant joins and lefts as stints (contract §5): rejoins, duplicates, crossings, lateness."""

from __future__ import annotations

from processor.engine import event_id, snapshot
from processor.sources.meetings import apply_callback
from schemas.callbacks import ParticipantJoinedHyphenCallback, ParticipantLeftShortCallback
from schemas.events import (
    ParticipantAttendanceEvent,
    ParticipantJoinedEvent,
    ParticipantLeftEvent,
    SessionEndedEvent,
)
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


def test_join_then_left_is_one_stint_with_its_attendance() -> None:
    fed = replay([session_started(0), joined("alice", 1_000), left("alice", 61_000)])

    [joined_event] = fed.of_type(ParticipantJoinedEvent)
    [left_event] = fed.of_type(ParticipantLeftEvent)
    assert joined_event.participant_id == "alice"
    assert joined_event.name == "Alice"
    assert joined_event.participant_type == "Guest"
    assert joined_event.occurred_at == joined_event.joined_at == at(1_000)
    assert (joined_event.session_id, joined_event.room_id) == (SESSION_ID, ROOM_ID)
    assert joined_event.stint == left_event.stint == 1
    assert left_event.joined_at == at(1_000)
    assert left_event.left_at == left_event.occurred_at == at(61_000)
    assert left_event.duration_s == 60.0
    assert left_event.left_reason == "left"


def test_event_ids_derive_from_session_participant_stint_and_type() -> None:
    fed = replay([joined("alice", 1_000), left("alice", 2_000), joined("alice", 3_000)])

    ids = [event.event_id for event in fed.events]
    assert ids == [
        event_id("participant.joined", SESSION_ID, "alice", 1),
        event_id("participant.left", SESSION_ID, "alice", 1),
        event_id("participant.joined", SESSION_ID, "alice", 2),
    ]
    assert (
        replay([joined("alice", 1_500), left("alice", 2_500), joined("alice", 3_500)])
        .events[2]
        .event_id
        == ids[2]
    )  # the times do not enter the ids


def test_every_spelling_of_join_and_left_is_the_same_participant() -> None:
    fed = replay(
        [
            joined("alice", 1_000, spelling=ParticipantJoinedHyphenCallback),
            left("alice", 2_000, spelling=ParticipantLeftShortCallback),
        ]
    )
    assert [type(event) for event in fed.events] == [ParticipantJoinedEvent, ParticipantLeftEvent]
    assert snapshot(fed.current).unique_participants == 1


def test_a_join_while_present_changes_nothing() -> None:
    fed = replay([session_started(0), joined("alice", 1_000)])
    version = fed.current.version

    join_callback, _ = joined("alice", 1_000)
    for received in (fed.current.last_event_at + 30_000, fed.current.last_event_at - 500):
        retry = apply_callback(fed.current, join_callback, received)
        assert (retry.changed, retry.events) == (False, [])
    assert fed.current.version == version
    assert snapshot(fed.current).active_participants[0].joined_at == at(1_000)


def test_a_left_while_absent_changes_nothing() -> None:
    fed = replay([session_started(0), joined("alice", 1_000), left("alice", 2_000)])

    retry = fed.feed([left("alice", 2_000), left("alice", 9_000)])

    assert retry == []
    assert fed.current.participants["alice"].left_at is not None
    assert snapshot(fed.current).active_count == 0


def test_a_rejoin_starts_a_new_stint_and_counts_as_a_join() -> None:
    fed = replay(
        [
            session_started(0),
            joined("alice", 1_000),
            left("alice", 2_000),
            joined("alice", 3_000),
        ]
    )
    state = snapshot(fed.current)
    assert state.active_count == 1
    assert state.active_participants[0].joined_at == at(3_000)  # the open stint's start
    assert (state.unique_participants, state.total_joins) == (1, 2)

    fed.feed([left("alice", 4_000), session_ended(0, 10_000)])

    assert [(e.stint, e.joined_at) for e in fed.of_type(ParticipantJoinedEvent)] == [
        (1, at(1_000)),
        (2, at(3_000)),
    ]
    assert [(e.stint, e.left_at) for e in fed.of_type(ParticipantLeftEvent)] == [
        (1, at(2_000)),
        (2, at(4_000)),
    ]
    summary = fed.final_summary
    assert summary is not None
    assert (summary.total_joins, summary.unique_participants) == (2, 1)
    assert summary.participant_seconds == 2.0
    [report] = fed.of_type(ParticipantAttendanceEvent)
    assert (report.stints, report.attended_s) == (2, 2.0)
    assert (report.first_joined_at, report.last_left_at) == (at(1_000), at(4_000))


def test_a_left_before_any_join_is_held_and_closed_by_the_join_as_an_empty_stint() -> None:
    fed = replay([session_started(0), left("bob", 9_000)])

    assert fed.events[1:] == []  # held: nothing to say yet
    state = snapshot(fed.current)
    assert state.active_count == 0
    assert (state.unique_participants, state.total_joins) == (1, 0)

    crossed = fed.feed([joined("bob", 9_200)])

    assert [type(event) for event in crossed] == [ParticipantJoinedEvent, ParticipantLeftEvent]
    left_event = crossed[1]
    assert isinstance(left_event, ParticipantLeftEvent)
    assert (left_event.stint, left_event.left_reason) == (1, "left")
    assert left_event.joined_at == left_event.left_at == at(9_200)
    assert left_event.duration_s == 0.0
    state = snapshot(fed.current)
    assert state.active_count == 0  # not present afterwards
    assert (state.unique_participants, state.total_joins) == (1, 1)


def test_a_second_join_after_a_crossing_is_a_rejoin() -> None:
    fed = replay([left("bob", 1_000), joined("bob", 1_100), joined("bob", 5_000)])

    assert snapshot(fed.current).active_count == 1
    assert [e.stint for e in fed.of_type(ParticipantJoinedEvent)] == [1, 2]


def test_a_participant_seen_only_leaving_attends_nothing() -> None:
    fed = replay([session_started(0), left("bob", 9_000), session_ended(0, 20_000)])

    summary = fed.final_summary
    assert summary is not None
    assert (summary.unique_participants, summary.total_joins) == (1, 0)
    assert (summary.participant_seconds, summary.peak_concurrency) == (0.0, 0)
    [report] = fed.of_type(ParticipantAttendanceEvent)
    assert (report.stints, report.attended_s, report.first_joined_at) == (0, 0.0, None)


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
        *[ParticipantAttendanceEvent] * 3,
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
        ParticipantAttendanceEvent,
        ParticipantAttendanceEvent,
    ]
    sent_away = late[1]
    assert isinstance(sent_away, ParticipantLeftEvent)
    assert sent_away.left_reason == "session_ended"
    assert sent_away.left_at == at(10_000)  # clamped into the session
    assert sent_away.duration_s == 0.0
    assert snapshot(fed.current).active_participants == []


def test_a_retried_join_of_someone_sent_away_by_the_end_changes_nothing() -> None:
    fed = replay([session_started(0), joined("alice", 1_000), session_ended(0, 10_000)])

    assert fed.feed([joined("alice", 12_000)]) == []


def test_a_left_arriving_after_the_end_refines_the_summary_without_a_second_left() -> None:
    fed = replay([session_started(0), joined("alice", 1_000), session_ended(0, 10_000)])
    first_summary = fed.final_summary
    assert first_summary is not None
    assert first_summary.participant_seconds == 9.0

    late = fed.feed([left("alice", 6_000)])

    assert [type(event) for event in late] == [SessionEndedEvent, ParticipantAttendanceEvent]
    revised = fed.final_summary
    assert revised is not None
    assert revised.participant_seconds == 5.0
    assert revised.revision == 2
    report = late[1]
    assert isinstance(report, ParticipantAttendanceEvent)
    assert (report.revision, report.attended_s, report.last_left_at) == (2, 5.0, at(6_000))
    assert report.event_id == event_id("participant.attendance", SESSION_ID, "alice", 2)


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


def test_a_crossed_stint_counts_as_present_for_an_instant() -> None:
    fed = replay([session_started(0), left("alice", 3_000), joined("alice", 5_000)])
    fed.feed([session_ended(0, 10_000)])

    summary = fed.final_summary
    assert summary is not None
    assert summary.participant_seconds == 0.0
    assert summary.peak_concurrency == 1
