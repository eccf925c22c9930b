"""Builders of the derived events (SPEC §4), each with its deterministic id."""

from __future__ import annotations

from processor.engine.attendance import Attendance, clamped
from processor.engine.ids import event_id
from processor.engine.session import Participant, Session
from schemas.callbacks import RecordingEndedCallback, RecordingReadyCallback, RoomExpiredCallback
from schemas.events import (
    LeftReason,
    ParticipantAttendanceEvent,
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
PARTICIPANT_ATTENDANCE = event_type_name(ParticipantAttendanceEvent)
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
    session: Session, participant_id: str, participant: Participant, *, joined_at: int
) -> ParticipantJoinedEvent:
    """The start of the participant's latest stint."""
    joined = format_epoch_ms(joined_at)
    stint = participant.stint_count
    return ParticipantJoinedEvent(
        event_id=event_id(PARTICIPANT_JOINED, session.session_id, participant_id, stint),
        occurred_at=joined,
        session_id=session.session_id,
        room_id=session.room_id,
        participant_id=participant_id,
        name=participant.name,
        is_host=participant.is_host,
        participant_type=participant.participant_type,
        joined_at=joined,
        stint=stint,
    )


def participant_left(
    session: Session,
    participant_id: str,
    participant: Participant,
    *,
    left_at: int,
    reason: LeftReason,
) -> ParticipantLeftEvent:
    """The end of the participant's latest stint at ``left_at`` (its left callback's time or
    the session's end); the event carries the stint clamped into the session."""
    joined_at = participant.joined_at
    if joined_at is None:
        raise ValueError(f"participant {participant_id} has no stint to end")
    interval = clamped(session, joined_at, left_at)
    assert interval is not None  # left_at is given
    start, end = interval
    stint = participant.stint_count
    return ParticipantLeftEvent(
        event_id=event_id(PARTICIPANT_LEFT, session.session_id, participant_id, stint),
        occurred_at=format_epoch_ms(end),
        session_id=session.session_id,
        room_id=session.room_id,
        participant_id=participant_id,
        name=participant.name,
        is_host=participant.is_host,
        participant_type=participant.participant_type,
        joined_at=format_epoch_ms(joined_at),
        left_at=format_epoch_ms(end),
        duration_s=(end - start) / 1000,
        left_reason=reason,
        stint=stint,
    )


def participant_attendance(
    session: Session, report: Attendance, summary: SessionSummary
) -> ParticipantAttendanceEvent:
    participant = report.participant
    return ParticipantAttendanceEvent(
        event_id=event_id(
            PARTICIPANT_ATTENDANCE, session.session_id, report.participant_id, summary.revision
        ),
        occurred_at=summary.ended_at,
        session_id=session.session_id,
        room_id=session.room_id,
        participant_id=report.participant_id,
        name=participant.name,
        is_host=participant.is_host,
        participant_type=participant.participant_type,
        stints=report.stints,
        attended_s=report.attended_ms / 1000,
        first_joined_at=_format(report.first_joined_at),
        last_left_at=_format(report.last_left_at),
        revision=summary.revision,
    )


def _format(epoch_ms: int | None) -> str | None:
    return None if epoch_ms is None else format_epoch_ms(epoch_ms)


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
