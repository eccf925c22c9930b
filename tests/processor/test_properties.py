"""Engine properties over generated meetings, retried and delivered in any order (SPEC §5)."""

from __future__ import annotations

import msgspec
from hypothesis import given
from hypothesis import strategies as st

from processor.engine import Session, apply, expire_idle, restore, snapshot
from schemas.codec import decode_state, encode
from schemas.events import (
    DerivedEvent,
    ParticipantJoinedEvent,
    ParticipantLeftEvent,
    RecordingEndedEvent,
    RecordingReadyEvent,
    SessionEndedEvent,
    SessionSummary,
)
from schemas.state import SessionState
from tests.processor.builders import Delivery, Replay, replay
from tests.processor.meetings import meetings, meetings_and_redeliveries


def assert_sane(state: SessionState, events: list[DerivedEvent]) -> None:
    """No negative count or duration; nobody present in a closed session."""
    assert min(state.active_count, state.peak_concurrency, state.total_joins) >= 0
    assert state.active_count == len(state.active_participants)
    assert state.peak_concurrency >= state.active_count
    assert state.unique_participants >= state.total_joins
    assert state.duration_s is None or state.duration_s >= 0
    if state.status != "active":
        assert state.active_participants == []
        assert not state.recording_active
    for event in events:
        match event:
            case ParticipantLeftEvent(duration_s=duration):
                assert duration is None or duration >= 0
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
    assert summary.unique_participants >= summary.total_joins >= 0
    assert summary.peak_concurrency <= summary.unique_participants
    assert summary.revision >= 1


def assert_everyone_left(fed: Replay) -> None:
    """Once closed, every participant that joined also left (exactly once)."""
    joined_ids = sorted(e.participant_id for e in fed.of_type(ParticipantJoinedEvent))
    left_ids = sorted(e.participant_id for e in fed.of_type(ParticipantLeftEvent))
    assert set(joined_ids) <= set(left_ids)
    assert len(left_ids) == len(set(left_ids))


def final_facts(fed: Replay) -> SessionState:
    """The end state, minus what legitimately depends on the arrival order."""
    return msgspec.structs.replace(
        snapshot(fed.current),
        version=0,
        last_event_at=None,
        last_received_at=None,
        summary=None,
    )


def without_revision(summary: SessionSummary | None) -> SessionSummary | None:
    return None if summary is None else msgspec.structs.replace(summary, revision=0)


def through_the_changelog(session: Session) -> Session:
    return restore(decode_state(encode(snapshot(session))))


@given(meetings_and_redeliveries)
def test_any_redelivery_stays_sane_at_every_step(
    case: tuple[list[Delivery], list[Delivery]],
) -> None:
    _, delivered = case
    fed = Replay()
    for delivery in delivered:
        emitted = fed.feed([delivery])  # never raises
        assert_sane(snapshot(fed.current), emitted)
    assert snapshot(fed.current).status == "ended"
    assert_everyone_left(fed)


@given(meetings_and_redeliveries)
def test_any_redelivery_ends_with_the_in_order_summary_and_state(
    case: tuple[list[Delivery], list[Delivery]],
) -> None:
    meeting, delivered = case
    in_order, redelivered = replay(meeting), replay(delivered)

    assert in_order.final_summary is not None
    assert without_revision(redelivered.final_summary) == without_revision(in_order.final_summary)
    assert final_facts(redelivered) == final_facts(in_order)


@given(meetings_and_redeliveries)
def test_every_derived_event_goes_out_once(case: tuple[list[Delivery], list[Delivery]]) -> None:
    meeting, delivered = case
    in_order, redelivered = replay(meeting), replay(delivered)

    ids = [event.event_id for event in redelivered.events]
    assert len(ids) == len(set(ids))
    # The same events, whatever the order; only the number of summary revisions may differ.
    assert {e.event_id for e in redelivered.events if not isinstance(e, SessionEndedEvent)} == {
        e.event_id for e in in_order.events if not isinstance(e, SessionEndedEvent)
    }


@given(meetings_and_redeliveries, st.data())
def test_replaying_a_prefix_again_changes_nothing(
    case: tuple[list[Delivery], list[Delivery]], data: st.DataObject
) -> None:
    _, delivered = case
    prefix = delivered[: data.draw(st.integers(min_value=1, max_value=len(delivered)))]
    fed = replay(prefix)
    before = snapshot(fed.current)

    for callback, received_at_ms in prefix:
        again = apply(fed.current, callback, received_at_ms)
        assert (again.changed, again.events) == (False, [])
    assert snapshot(fed.current) == before


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
    assert_everyone_left(fed)
    for delivery in meeting[cut:]:
        emitted = fed.feed([delivery])
        assert_sane(snapshot(fed.current), emitted)
        assert snapshot(fed.current).status != "active"
    assert_everyone_left(fed)
    restored = through_the_changelog(fed.current)
    assert restored == fed.current
