"""Builders of the derived events (SPEC §4), each with its deterministic id."""

from __future__ import annotations

from processor.engine.attendance import closed_attendance
from processor.engine.ids import event_id
from processor.engine.session import ParticipantFacts, Session
from schemas.callbacks import RecordingEndedCallback, RecordingReadyCallback, RoomExpiredCallback
from schemas.events import (
    LeftReason,
    ParticipantJoinedEvent,
    ParticipantLeftEvent,
    RecordingEndedEvent,
    RecordingReadyEvent,
    RecordingStartedEvent,
    RoomExpiredEvent,
    SessionEndedEvent,
    SessionStartedEvent,
    SessionSummary,
    event_type_name,
)
from schemas.timestamps import format_epoch_ms, format_timestamp

SESSION_STARTED = event_type_name(SessionStartedEvent)
SESSION_ENDED = event_type_name(SessionEndedEvent)
PARTICIPANT_JOINED = event_type_name(ParticipantJoinedEvent)
PARTICIPANT_LEFT = event_type_name(ParticipantLeftEvent)
RECORDING_STARTED = event_type_name(RecordingStartedEvent)
RECORDING_ENDED = event_type_name(RecordingEndedEvent)
RECORDING_READY = event_type_name(RecordingReadyEvent)
ROOM_EXPIRED = event_type_name(RoomExpiredEvent)


def session_started(session: Session, *, started_at: int) -> SessionStartedEvent:
    started = format_epoch_ms(started_at)
    return SessionStartedEvent(
        event_id=event_id(SESSION_STARTED, session.session_id),
        occurred_at=started,
        session_id=session.session_id,
        room_id=session.room_id,
        started_at=started,
    )


def session_ended(session: Session, summary: SessionSummary) -> SessionEndedEvent:
    return SessionEndedEvent(
        event_id=event_id(SESSION_ENDED, session.session_id, summary.revision),
        occurred_at=summary.ended_at,
        session_id=session.session_id,
        room_id=session.room_id,
        summary=summary,
    )


def participant_joined(
    session: Session, participant: ParticipantFacts, *, joined_at: int
) -> ParticipantJoinedEvent:
    joined = format_epoch_ms(joined_at)
    return ParticipantJoinedEvent(
        event_id=event_id(PARTICIPANT_JOINED, session.session_id, participant.participant_id),
        occurred_at=joined,
        session_id=session.session_id,
        room_id=session.room_id,
        participant_id=participant.participant_id,
        name=participant.name,
        is_host=participant.is_host,
        participant_type=participant.participant_type,
        joined_at=joined,
    )


def participant_left(
    session: Session, participant: ParticipantFacts, *, left_at: int, reason: LeftReason
) -> ParticipantLeftEvent:
    """``left_at`` is the raw end (the left callback's time or the session's end); the event
    carries the clamped interval, and a duration only when the join was seen."""
    interval = closed_attendance(participant, session, end=left_at)
    joined_at = participant.joined_at
    return ParticipantLeftEvent(
        event_id=event_id(PARTICIPANT_LEFT, session.session_id, participant.participant_id),
        occurred_at=format_epoch_ms(interval.end),
        session_id=session.session_id,
        room_id=session.room_id,
        participant_id=participant.participant_id,
        name=participant.name,
        is_host=participant.is_host,
        participant_type=participant.participant_type,
        joined_at=None if joined_at is None else format_epoch_ms(joined_at),
        left_at=format_epoch_ms(interval.end),
        duration_s=None if joined_at is None else interval.length_ms / 1000,
        left_reason=reason,
    )


def recording_started(
    session: Session, recording_id: str, *, started_at: int
) -> RecordingStartedEvent:
    started = format_epoch_ms(started_at)
    return RecordingStartedEvent(
        event_id=event_id(RECORDING_STARTED, session.session_id, recording_id),
        occurred_at=started,
        session_id=session.session_id,
        room_id=session.room_id,
        recording_id=recording_id,
        started_at=started,
    )


def recording_ended(session: Session, callback: RecordingEndedCallback) -> RecordingEndedEvent:
    ended = format_timestamp(callback.ended_at)
    return RecordingEndedEvent(
        event_id=event_id(RECORDING_ENDED, session.session_id, callback.recording_id),
        occurred_at=ended,
        session_id=session.session_id,
        room_id=session.room_id,
        recording_id=callback.recording_id,
        started_at=format_timestamp(callback.started_at),
        ended_at=ended,
        duration_s=callback.duration,
    )


def recording_ready(session: Session, callback: RecordingReadyCallback) -> RecordingReadyEvent:
    ended = format_timestamp(callback.ended_at)
    return RecordingReadyEvent(
        event_id=event_id(RECORDING_READY, session.session_id, callback.recording_id),
        occurred_at=ended,
        session_id=session.session_id,
        room_id=session.room_id,
        recording_id=callback.recording_id,
        started_at=format_timestamp(callback.started_at),
        ended_at=ended,
        duration_s=callback.duration,
        url=callback.url,
    )


def room_expired_event(callback: RoomExpiredCallback) -> RoomExpiredEvent:
    """Stateless: a room has no session state; the runtime de-duplicates by ``event_id``."""
    expires = format_timestamp(callback.expires_at)
    return RoomExpiredEvent(
        event_id=event_id(ROOM_EXPIRED, callback.room_id, expires),
        occurred_at=expires,
        session_id=None,
        room_id=callback.room_id,
        room_type=callback.room_type,
        expires_at=expires,
        created_at=None if callback.created_at is None else format_timestamp(callback.created_at),
    )
