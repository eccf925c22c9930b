"""Engine properties over generated meetings, retried and delivered in any order (contract §5)."""

from __future__ import annotations

from collections import Counter

import msgspec
from hypothesis import given
from hypothesis import strategies as st

from processor.engine import Session, expire_idle, settle, snapshot
from processor.engine.attendance import clamped
from processor.sources.meetings import apply_callback
from schemas.callbacks import ParticipantJoinedCallback
from schemas.events import (
    DerivedEvent,
    ParticipantAttendanceEvent,
    ParticipantJoinedEvent,
    ParticipantLeftEvent,
    RecordingEndedEvent,
    RecordingReadyEvent,
    SessionEndedEvent,
    SessionSummary,
)
from schemas.state import SessionState
from tests.processor.builders import Delivery, Replay, replay, through_the_changelog
from tests.processor.meeting_strategies import (
    meetings,
    meetings_and_redeliveries,
    meetings_and_shuffles,
)


def assert_sane(state: SessionState, events: list[DerivedEvent]) -> None:
    """No negative count or duration; nobody present in a closed session."""
    assert min(state.active_count, state.peak_concurrency, state.total_joins) >= 0
    assert state.unique_participants >= 0
    assert state.active_count == len(state.active_participants)  # small: nothing left out
    assert state.duration_s is None or state.duration_s >= 0
    if state.status == "active":
        assert state.peak_concurrency >= state.active_count
    else:
        assert state.active_count == 0
        assert not state.recording_active
    for event in events:
        match event:
            case ParticipantLeftEvent(duration_s=duration):
                assert duration is not None
                assert duration >= 0
            case ParticipantAttendanceEvent(attended_s=attended):
                assert attended >= 0
            case (
                RecordingEndedEvent(duration_s=duration) | RecordingReadyEvent(duration_s=duration)
            ):
                assert duration >= 0
            case SessionEndedEvent(summary=summary):
                assert_sane_summary(summary)


def assert_sane_summary(summary: SessionSummary) -> None:
    assert summary.duration_s >= 0
    assert summary.participant_seconds >= 0
    assert summary.recorded_seconds >= 0
    assert summary.unique_participants >= 0
    assert summary.total_joins >= 0
    assert summary.peak_concurrency <= summary.total_joins
    assert summary.revision >= 1


def assert_every_stint_closed(fed: Replay) -> None:
    """Once the session is closed, every stint that began also ended, exactly once."""
    session = fed.current
    assert session.closed_at is not None
    assert session.active_count == 0
    began = Counter((e.participant_id, e.stint) for e in fed.of_type(ParticipantJoinedEvent))
    ended = Counter((e.participant_id, e.stint) for e in fed.of_type(ParticipantLeftEvent))
    assert began == ended
    assert set(ended.values()) <= {1}
    for participant in session.participants.values():
        for joined_at, left_at in participant.stints():
            assert clamped(session, joined_at, left_at) is not None


def last_revision(fed: Replay) -> tuple[SessionSummary, list[ParticipantAttendanceEvent]]:
    summary = fed.final_summary
    assert summary is not None
    reports = [e for e in fed.of_type(ParticipantAttendanceEvent) if e.revision == summary.revision]
    return summary, reports


def settled(fed: Replay) -> Replay:
    """Whatever revision is still owed, published (as when the session leaves memory)."""
    fed.events.extend(settle(fed.current).events)
    return fed


def stint_ms(session: Session) -> int:
    total = 0
    for participant in session.participants.values():
        for joined_at, left_at in participant.stints():
            interval = clamped(session, joined_at, left_at)
            assert interval is not None
            total += interval[1] - interval[0]
    return total


def without_revision(summary: SessionSummary) -> SessionSummary:
    return msgspec.structs.replace(summary, revision=0)


def report_facts(reports: list[ParticipantAttendanceEvent]) -> list[ParticipantAttendanceEvent]:
    return [msgspec.structs.replace(r, revision=0, event_id="") for r in reports]


@given(meetings_and_redeliveries)
def test_any_interleaving_with_duplicates_stays_sane_at_every_step(
    case: tuple[list[Delivery], list[Delivery]],
) -> None:
    _, delivered = case
    fed = Replay()
    for delivery in delivered:
        emitted = fed.feed([delivery])  # never raises
        assert_sane(snapshot(fed.current), emitted)
    assert snapshot(fed.current).status == "ended"
    assert_every_stint_closed(fed)


@given(meetings_and_redeliveries)
def test_participant_seconds_is_the_sum_of_the_stints_and_of_the_reports(
    case: tuple[list[Delivery], list[Delivery]],
) -> None:
    _, delivered = case
    fed = settled(replay(delivered))
    summary, reports = last_revision(fed)

    assert round(summary.participant_seconds * 1000) == stint_ms(fed.current)
    assert round(summary.participant_seconds * 1000) == sum(
        round(r.attended_s * 1000) for r in reports
    )
    assert sorted(r.participant_id for r in reports) == sorted(fed.current.participants)
    assert summary.total_joins == sum(r.stints for r in reports)


@given(meetings_and_redeliveries, st.data())
def test_a_duplicate_delivered_right_after_its_callback_changes_nothing(
    case: tuple[list[Delivery], list[Delivery]], data: st.DataObject
) -> None:
    _, delivered = case
    fed = Replay()
    for callback, received_at in delivered:
        fed.feed([(callback, received_at)])
        if (
            isinstance(callback, ParticipantJoinedCallback)
            and not fed.current.participants[callback.participant_id].present
        ):
            # The one documented ambiguity: after a join that closed a held left (the two
            # crossed), the participant is absent, and a join is a rejoin.
            continue
        before = snapshot(fed.current)
        retry_delay = data.draw(st.integers(min_value=0, max_value=600_000))
        again = apply_callback(fed.current, callback, received_at + retry_delay)
        assert (again.changed, again.events) == (False, [])
        assert snapshot(fed.current) == before


@given(meetings_and_shuffles)
def test_the_summary_is_the_same_for_every_shuffle_keeping_each_participant_in_order(
    case: tuple[list[Delivery], list[Delivery]],
) -> None:
    meeting, shuffled = case
    in_order, reordered = settled(replay(meeting)), settled(replay(shuffled))

    summary, reports = last_revision(in_order)
    shuffled_summary, shuffled_reports = last_revision(reordered)
    assert without_revision(shuffled_summary) == without_revision(summary)
    assert report_facts(shuffled_reports) == report_facts(reports)
    joins = {(e.participant_id, e.stint) for e in in_order.of_type(ParticipantJoinedEvent)}
    assert {(e.participant_id, e.stint) for e in reordered.of_type(ParticipantJoinedEvent)} == (
        joins
    )


@given(meetings_and_redeliveries)
def test_replaying_the_same_deliveries_yields_identical_events(
    case: tuple[list[Delivery], list[Delivery]],
) -> None:
    _, delivered = case
    first, second = replay(delivered), replay(delivered)

    assert first.events == second.events
    ids = [event.event_id for event in first.events]
    assert len(ids) == len(set(ids))


@given(meetings_and_redeliveries, st.data())
def test_restoring_at_any_point_continues_identically(
    case: tuple[list[Delivery], list[Delivery]], data: st.DataObject
) -> None:
    _, delivered = case
    cut = data.draw(st.integers(min_value=1, max_value=len(delivered)))
    uninterrupted = replay(delivered[:cut])
    events_before_cut = len(uninterrupted.events)
    restored = Replay(session=through_the_changelog(uninterrupted.current))
    assert restored.current == uninterrupted.current

    uninterrupted.feed(delivered[cut:])
    restored.feed(delivered[cut:])

    assert restored.events == uninterrupted.events[events_before_cut:]
    assert snapshot(restored.current) == snapshot(uninterrupted.current)


@given(meetings(), st.data())
def test_an_idle_timeout_at_any_point_keeps_everything_sane(
    meeting: list[Delivery], data: st.DataObject
) -> None:
    cut = data.draw(st.integers(min_value=1, max_value=len(meeting)))
    fed = replay(meeting[:cut])

    expired = expire_idle(fed.current)
    fed.events.extend(expired.events)
    assert_sane(snapshot(fed.current), expired.events)
    assert_every_stint_closed(fed)
    for delivery in meeting[cut:]:
        emitted = fed.feed([delivery])
        assert_sane(snapshot(fed.current), emitted)
        assert snapshot(fed.current).status != "active"
    assert_every_stint_closed(fed)
    assert through_the_changelog(fed.current) == fed.current
