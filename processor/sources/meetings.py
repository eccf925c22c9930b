"""Vonage Meetings callbacks (contract §2) as engine facts.

Times: a callback's own time field when it has one, else the ingest receive time (joins,
lefts and ``recording:started`` carry none).
"""

from __future__ import annotations

from typing import assert_never

from processor.engine.apply import Applied, apply
from processor.engine.facts import (
    Arrived,
    Departed,
    Fact,
    Origin,
    Person,
    RecordingChanged,
    SessionBegan,
    SessionFinished,
    Stage,
)
from processor.engine.session import Session
from schemas.callbacks import (
    ParticipantJoinedCallback,
    ParticipantLeftCallback,
    RecordingEndedCallback,
    RecordingReadyCallback,
    RecordingStartedCallback,
    SessionEndedCallback,
    SessionStartedCallback,
)
from schemas.timestamps import to_epoch_ms

SessionCallback = (
    SessionStartedCallback
    | SessionEndedCallback
    | RecordingStartedCallback
    | RecordingEndedCallback
    | RecordingReadyCallback
    | ParticipantJoinedCallback
    | ParticipantLeftCallback
)
"""Every Meetings callback that belongs to a session (all but ``room:expired``)."""


def meetings_facts(callback: SessionCallback, received_at_ms: int) -> list[Fact]:
    """The facts one Meetings session callback states."""
    origin = Origin(session_id=callback.session_id, source="meetings", room_id=callback.room_id)
    match callback:
        case SessionStartedCallback():
            return [SessionBegan(origin, to_epoch_ms(callback.started_at))]
        case SessionEndedCallback():
            return [
                SessionFinished(
                    origin,
                    to_epoch_ms(callback.ended_at),
                    reported_start=to_epoch_ms(callback.started_at),
                )
            ]
        case ParticipantJoinedCallback():
            return [Arrived(origin, _person(callback), received_at_ms)]
        case ParticipantLeftCallback():
            return [Departed(origin, _person(callback), received_at_ms)]
        case RecordingStartedCallback():
            return [RecordingChanged(origin, callback.recording_id, Stage.STARTED, received_at_ms)]
        case RecordingEndedCallback() | RecordingReadyCallback():
            ended_at = to_epoch_ms(callback.ended_at)
            ready = isinstance(callback, RecordingReadyCallback)
            return [
                RecordingChanged(
                    origin,
                    callback.recording_id,
                    Stage.READY if ready else Stage.ENDED,
                    ended_at,
                    started_at=to_epoch_ms(callback.started_at),
                    ended_at=ended_at,
                    duration_s=callback.duration,
                    url=callback.url if isinstance(callback, RecordingReadyCallback) else None,
                )
            ]
        case _:
            assert_never(callback)


def _person(callback: ParticipantJoinedCallback | ParticipantLeftCallback) -> Person:
    return Person(
        participant_id=callback.participant_id,
        name=callback.name,
        is_host=callback.is_host,
        participant_type=callback.type,
    )


def apply_callback(
    session: Session | None, callback: SessionCallback, received_at_ms: int
) -> Applied:
    """Apply one Meetings callback (its facts) to its session: what the runtime does per
    record, for callers that hold decoded callbacks (tests, benchmarks)."""
    return apply(session, meetings_facts(callback, received_at_ms), received_at_ms)
