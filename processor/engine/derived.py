"""Builders of the derived events (contract §4), each with its deterministic id (§5.7)."""

from __future__ import annotations

from typing import TypeVar

import msgspec

from processor.engine.attendance import Attendance, clamped
from processor.engine.ids import event_id, identity_digest
from processor.engine.session import Participant, RecordingFacts, Session, Stream
from schemas.callbacks import RoomExpiredCallback
from schemas.events import (
    DerivedEvent,
    LeftReason,
    ParticipantAttendanceEvent,
    ParticipantJoinedEvent,
    ParticipantLeftEvent,
    RecordingEndedEvent,
    RecordingExpiredEvent,
    RecordingFailedEvent,
    RecordingPausedEvent,
    RecordingReadyEvent,
    RecordingResumedEvent,
    RecordingStartedEvent,
    RecordingStorage,
    RoomExpiredEvent,
    SessionEndedEvent,
    SessionStartedEvent,
    SessionSummary,
    StreamEndedEvent,
    StreamStartedEvent,
    VideoType,
    event_type_name,
)
from schemas.timestamps import format_epoch_ms, format_timestamp

SESSION_STARTED = event_type_name(SessionStartedEvent)
SESSION_ENDED = event_type_name(SessionEndedEvent)
PARTICIPANT_JOINED = event_type_name(ParticipantJoinedEvent)
PARTICIPANT_LEFT = event_type_name(ParticipantLeftEvent)
PARTICIPANT_ATTENDANCE = event_type_name(ParticipantAttendanceEvent)
STREAM_STARTED = event_type_name(StreamStartedEvent)
STREAM_ENDED = event_type_name(StreamEndedEvent)
RECORDING_STARTED = event_type_name(RecordingStartedEvent)
RECORDING_PAUSED = event_type_name(RecordingPausedEvent)
RECORDING_RESUMED = event_type_name(RecordingResumedEvent)
RECORDING_ENDED = event_type_name(RecordingEndedEvent)
RECORDING_READY = event_type_name(RecordingReadyEvent)
RECORDING_FAILED = event_type_name(RecordingFailedEvent)
RECORDING_EXPIRED = event_type_name(RecordingExpiredEvent)
ROOM_EXPIRED = event_type_name(RoomExpiredEvent)

_VIDEO_TYPES: dict[str | None, VideoType] = {
    "camera": "camera",
    "screen": "screen",
    "custom": "custom",
}
_STORAGES: dict[str | None, RecordingStorage] = {"external": "external", "vonage": "vonage"}


def _event_id(event_type: str, session: Session, *parts: str | int) -> str:
    """The id of an event of ``session``: what identifies the session is its id, and for Video
    its source and instance too, the instance as its number and the event time that opened it
    (a Meetings session has one source and one instance, so its ids name neither)."""
    video = session.video
    if video is None:
        return identity_digest([event_type, session.session_id, *parts])
    return identity_digest(
        [event_type, "video", session.session_id, video.instance, video.opened_at, *parts]
    )


AnySessionEvent = TypeVar("AnySessionEvent", bound=DerivedEvent)


def _sourced(session: Session, event: AnySessionEvent) -> AnySessionEvent:
    """``event``, built with the Meetings defaults of ``source``, ``tenant_id`` and
    ``instance``, as ``session``'s source has them.

    Why not pass them to every constructor: CPython compiles a call of more than 15 keyword
    arguments into a dict and a call through it, which made the 18 of ``participant.left``
    cost 2.4 times the 15 left here. A Video event's one extra struct costs less than that."""
    video = session.video
    if video is None:
        return event
    return msgspec.structs.replace(
        event, source="video", tenant_id=video.tenant_id, instance=video.instance
    )


def session_started(session: Session, *, started_at: int) -> SessionStartedEvent:
    started = format_epoch_ms(started_at)
    return _sourced(
        session,
        SessionStartedEvent(
            event_id=_event_id(SESSION_STARTED, session),
            occurred_at=started,
            session_id=session.session_id,
            room_id=session.room_id,
            started_at=started,
        ),
    )


def session_ended(session: Session, summary: SessionSummary) -> SessionEndedEvent:
    return _sourced(
        session,
        SessionEndedEvent(
            event_id=_event_id(SESSION_ENDED, session, summary.revision),
            occurred_at=summary.ended_at,
            session_id=session.session_id,
            room_id=session.room_id,
            summary=summary,
        ),
    )


def participant_joined(
    session: Session,
    participant_id: str,
    participant: Participant,
    *,
    joined_at: int,
    connection_id: str | None = None,
) -> ParticipantJoinedEvent:
    """The start of the participant's latest stint (through ``connection_id``, on Video)."""
    joined = format_epoch_ms(joined_at)
    stint = participant.stint_count
    return _sourced(
        session,
        ParticipantJoinedEvent(
            event_id=_event_id(PARTICIPANT_JOINED, session, participant_id, stint),
            occurred_at=joined,
            session_id=session.session_id,
            room_id=session.room_id,
            connection_id=connection_id,
            participant_id=participant_id,
            name=participant.name,
            is_host=participant.is_host,
            participant_type=participant.participant_type,
            joined_at=joined,
            stint=stint,
        ),
    )


def participant_left(
    session: Session,
    participant_id: str,
    participant: Participant,
    *,
    left_at: int,
    reason: LeftReason,
    connection_id: str | None = None,
    disconnect_reason: str | None = None,
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
    return _sourced(
        session,
        ParticipantLeftEvent(
            event_id=_event_id(PARTICIPANT_LEFT, session, participant_id, stint),
            occurred_at=format_epoch_ms(end),
            session_id=session.session_id,
            room_id=session.room_id,
            connection_id=connection_id,
            disconnect_reason=disconnect_reason,
            participant_id=participant_id,
            name=participant.name,
            is_host=participant.is_host,
            participant_type=participant.participant_type,
            joined_at=format_epoch_ms(joined_at),
            left_at=format_epoch_ms(end),
            duration_s=(end - start) / 1000,
            left_reason=reason,
            stint=stint,
        ),
    )


def participant_attendance(
    session: Session, report: Attendance, summary: SessionSummary
) -> ParticipantAttendanceEvent:
    participant = report.participant
    return _sourced(
        session,
        ParticipantAttendanceEvent(
            event_id=_event_id(
                PARTICIPANT_ATTENDANCE, session, report.participant_id, summary.revision
            ),
            occurred_at=summary.ended_at,
            session_id=session.session_id,
            room_id=session.room_id,
            screen_share_s=report.screen_share_ms / 1000,
            participant_id=report.participant_id,
            name=participant.name,
            is_host=participant.is_host,
            participant_type=participant.participant_type,
            stints=report.stints,
            attended_s=report.attended_ms / 1000,
            first_joined_at=_format(report.first_joined_at),
            last_left_at=_format(report.last_left_at),
            revision=summary.revision,
        ),
    )


def _format(epoch_ms: int | None) -> str | None:
    return None if epoch_ms is None else format_epoch_ms(epoch_ms)


def stream_started(
    session: Session, stream_id: str, participant_id: str, stream: Stream, *, started_at: int
) -> StreamStartedEvent:
    started = format_epoch_ms(started_at)
    return _sourced(
        session,
        StreamStartedEvent(
            event_id=_event_id(STREAM_STARTED, session, stream_id),
            occurred_at=started,
            session_id=session.session_id,
            room_id=session.room_id,
            stream_id=stream_id,
            participant_id=participant_id,
            connection_id=stream.connection_id,
            video_type=_VIDEO_TYPES.get(stream.video_type),
            started_at=started,
        ),
    )


def stream_ended(
    session: Session, stream_id: str, participant_id: str, stream: Stream
) -> StreamEndedEvent:
    started_at, ended_at = stream.started_at, stream.ended_at
    if started_at is None or ended_at is None:
        raise ValueError(f"stream {stream_id} has not both started and ended")
    return _sourced(
        session,
        StreamEndedEvent(
            event_id=_event_id(STREAM_ENDED, session, stream_id),
            occurred_at=format_epoch_ms(ended_at),
            session_id=session.session_id,
            room_id=session.room_id,
            stream_id=stream_id,
            participant_id=participant_id,
            connection_id=stream.connection_id,
            video_type=_VIDEO_TYPES.get(stream.video_type),
            started_at=format_epoch_ms(started_at),
            ended_at=format_epoch_ms(ended_at),
            duration_s=max(0, ended_at - started_at) / 1000,
            reason=stream.reason,
        ),
    )


def recording_started(
    session: Session, recording: RecordingFacts, *, started_at: int
) -> RecordingStartedEvent:
    started = format_epoch_ms(started_at)
    return _sourced(
        session,
        RecordingStartedEvent(
            event_id=_event_id(RECORDING_STARTED, session, recording.recording_id),
            occurred_at=started,
            session_id=session.session_id,
            room_id=session.room_id,
            recording_id=recording.recording_id,
            started_at=started,
        ),
    )


def recording_paused(
    session: Session, recording: RecordingFacts, *, at: int
) -> RecordingPausedEvent:
    paused = format_epoch_ms(at)
    return _sourced(
        session,
        RecordingPausedEvent(
            event_id=_event_id(RECORDING_PAUSED, session, recording.recording_id, at),
            occurred_at=paused,
            session_id=session.session_id,
            room_id=session.room_id,
            recording_id=recording.recording_id,
            paused_at=paused,
        ),
    )


def recording_resumed(
    session: Session, recording: RecordingFacts, *, at: int
) -> RecordingResumedEvent:
    resumed = format_epoch_ms(at)
    return _sourced(
        session,
        RecordingResumedEvent(
            event_id=_event_id(RECORDING_RESUMED, session, recording.recording_id, at),
            occurred_at=resumed,
            session_id=session.session_id,
            room_id=session.room_id,
            recording_id=recording.recording_id,
            resumed_at=resumed,
        ),
    )


def recording_ended(
    session: Session, recording: RecordingFacts, started_at: int, ended_at: int, duration_s: float
) -> RecordingEndedEvent:
    ended = format_epoch_ms(ended_at)
    return _sourced(
        session,
        RecordingEndedEvent(
            event_id=_event_id(RECORDING_ENDED, session, recording.recording_id),
            occurred_at=ended,
            session_id=session.session_id,
            room_id=session.room_id,
            recording_id=recording.recording_id,
            started_at=format_epoch_ms(started_at),
            ended_at=ended,
            duration_s=duration_s,
            reason=recording.reason,
        ),
    )


def recording_ready(
    session: Session, recording: RecordingFacts, started_at: int, ended_at: int, duration_s: float
) -> RecordingReadyEvent:
    ended = format_epoch_ms(ended_at)
    archive = recording.archive
    return _sourced(
        session,
        RecordingReadyEvent(
            event_id=_event_id(RECORDING_READY, session, recording.recording_id),
            occurred_at=ended,
            session_id=session.session_id,
            room_id=session.room_id,
            recording_id=recording.recording_id,
            started_at=format_epoch_ms(started_at),
            ended_at=ended,
            duration_s=duration_s,
            url=recording.url or "",
            storage=None if archive is None else _STORAGES.get(archive.storage),
            url_expires_at=None if archive is None else _format(archive.url_expires_at),
            size_bytes=None if archive is None else archive.size_bytes,
            output_mode=None if archive is None else archive.output_mode,
        ),
    )


def recording_failed(
    session: Session, recording: RecordingFacts, *, at: int
) -> RecordingFailedEvent:
    failed = format_epoch_ms(at)
    return _sourced(
        session,
        RecordingFailedEvent(
            event_id=_event_id(RECORDING_FAILED, session, recording.recording_id),
            occurred_at=failed,
            session_id=session.session_id,
            room_id=session.room_id,
            recording_id=recording.recording_id,
            failed_at=failed,
            reason=recording.reason,
        ),
    )


def recording_expired(
    session: Session, recording: RecordingFacts, *, at: int
) -> RecordingExpiredEvent:
    expired = format_epoch_ms(at)
    return _sourced(
        session,
        RecordingExpiredEvent(
            event_id=_event_id(RECORDING_EXPIRED, session, recording.recording_id),
            occurred_at=expired,
            session_id=session.session_id,
            room_id=session.room_id,
            recording_id=recording.recording_id,
            expired_at=expired,
        ),
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
