"""Recording stages: ``recording:started``, ``recording:ended``, ``recording:uploaded``.

Stages arrive in any order. Each stage's event goes out when that stage's callback is first seen;
the recording's status is the furthest stage seen. Times and duration come from the furthest of
``ended``/``ready`` seen (Vonage's clock), never from the receive time of ``recording:started``
when Vonage's is known. A later copy of a stage already seen is a retry and changes nothing.
"""

from __future__ import annotations

from processor.engine import derived
from processor.engine.session import RecordingFacts, Session
from schemas.callbacks import (
    RecordingEndedCallback,
    RecordingReadyCallback,
    RecordingStartedCallback,
)
from schemas.events import DerivedEvent
from schemas.timestamps import to_epoch_ms


def record_recording_started(
    session: Session, callback: RecordingStartedCallback, at: int, events: list[DerivedEvent]
) -> bool:
    recording = _recording(session, callback.recording_id)
    if recording.started_received_at is not None:
        if recording.started_received_at <= at:
            return False
        recording.started_received_at = at
        return True
    recording.started_received_at = at
    started_at = recording.started_at if recording.started_at is not None else at
    events.append(derived.recording_started(session, recording.recording_id, started_at=started_at))
    return True


def record_recording_ended(
    session: Session, callback: RecordingEndedCallback, events: list[DerivedEvent]
) -> bool:
    recording = _recording(session, callback.recording_id)
    if recording.ended_seen:
        return False
    recording.ended_seen = True
    if not recording.ready_seen:  # ready is the later, final word on times and duration
        _take_times(recording, callback)
    events.append(derived.recording_ended(session, callback))
    return True


def record_recording_ready(
    session: Session, callback: RecordingReadyCallback, events: list[DerivedEvent]
) -> bool:
    recording = _recording(session, callback.recording_id)
    if recording.ready_seen:
        return False
    recording.ready_seen = True
    _take_times(recording, callback)
    recording.url = callback.url
    events.append(derived.recording_ready(session, callback))
    return True


def _recording(session: Session, recording_id: str) -> RecordingFacts:
    recording = session.find_recording(recording_id)
    if recording is None:
        recording = RecordingFacts(recording_id=recording_id)
        session.add_recording(recording)
    return recording


def _take_times(
    recording: RecordingFacts, callback: RecordingEndedCallback | RecordingReadyCallback
) -> None:
    recording.started_at = to_epoch_ms(callback.started_at)
    recording.ended_at = to_epoch_ms(callback.ended_at)
    recording.duration_s = callback.duration
