"""``Session`` → ``SessionState``: the public, bounded snapshot of the session-state topic.

Its cost does not grow with the session: at most ``max_listed`` present participants are listed
(the earliest joined first, read off the front of the session's sorted present list, or
sorted from its at most ``CHUNK_PARTICIPANTS`` participants) and every
count is an aggregate the engine keeps up to date. What a restore needs is written separately,
to the internal changelog (``changelog``).
"""

from __future__ import annotations

import itertools

from processor.engine.session import RecordingFacts, Session
from schemas.state import ActiveParticipant, RecordingState, RecordingStatus, SessionState
from schemas.timestamps import Timestamp, format_epoch_ms

DEFAULT_MAX_LISTED_PARTICIPANTS = 1000
MAX_LISTED_BYTES = 640 * 1024
"""The most the listed participants may take in the JSON state, counted at worst."""
MAX_LISTED_RECORDING_BYTES = 256 * 1024
"""The same for the recordings: together far below Kafka's 1 MB per record."""
_LISTED_OVERHEAD = 100
"""JSON bytes of a listed participant besides its id and name (field names, time, flags)."""
_RECORDING_OVERHEAD = 300
"""JSON bytes of a listed recording besides its id and URL."""
_JSON_BYTES_PER_CHAR = 6
"""The worst case of a character in JSON (a control character is escaped as ``\u0000``)."""


def snapshot(
    session: Session, *, max_listed: int = DEFAULT_MAX_LISTED_PARTICIPANTS
) -> SessionState:
    closed_at = session.closed_at
    recordings = sorted(session.recordings.values(), key=recording_order)
    listed_recordings = _within_budget(recordings)
    started_at = session.started_at
    duration_ms = None
    if closed_at is not None:
        duration_ms = 0 if started_at is None else max(0, closed_at - started_at)
    participants = session.participants
    listed: list[ActiveParticipant] = []
    budget = MAX_LISTED_BYTES
    for participant_id in itertools.islice(session.present_ids(), max_listed):
        participant = participants[participant_id]
        joined_at = participant.joined_at
        assert joined_at is not None  # present
        # Names are not bounded by Vonage: the list also stops at a size, so the state
        # record stays far below Kafka's 1 MB whatever the names.
        budget -= _LISTED_OVERHEAD + _JSON_BYTES_PER_CHAR * (
            len(participant_id) + len(participant.name or "")
        )
        if budget < 0:
            break
        listed.append(
            ActiveParticipant(
                participant_id=participant_id,
                name=participant.name,
                is_host=participant.is_host,
                joined_at=format_epoch_ms(joined_at),
            )
        )
    summary = session.summary
    return SessionState(
        session_id=session.session_id,
        room_id=session.room_id,
        status=session.status,
        started_at=_format(started_at),
        ended_at=_format(closed_at),
        duration_s=None if duration_ms is None else duration_ms / 1000,
        active_participants=listed,
        active_count=session.active_count,
        active_participants_truncated=session.active_count > len(listed),
        peak_concurrency=session.live_peak
        if closed_at is None or summary is None
        else summary.peak_concurrency,
        unique_participants=len(participants),
        total_joins=session.total_joins,
        recordings=[_recording_state(recording) for recording in listed_recordings],
        recordings_truncated=len(listed_recordings) < len(recordings),
        recording_active=closed_at is None
        and any(recording.status == "started" for recording in recordings),
        source=session.source,
        tenant_id=session.tenant_id,
        instance=session.instance,
        active_connections=session.open_connections,
        active_streams=session.open_streams,
        last_event_at=format_epoch_ms(session.last_event_at),
        last_received_at=format_epoch_ms(session.last_received_at),
        version=session.version,
        session_started_seen=session.session_started_seen,
        summary=summary,
    )


def _within_budget(recordings: list[RecordingFacts]) -> list[RecordingFacts]:
    """The first recordings that fit ``MAX_LISTED_RECORDING_BYTES`` (URLs are not bounded)."""
    budget = MAX_LISTED_RECORDING_BYTES
    for count, recording in enumerate(recordings):
        budget -= _RECORDING_OVERHEAD + _JSON_BYTES_PER_CHAR * (
            len(recording.recording_id) + len(recording.url or "")
        )
        if budget < 0:
            return recordings[:count]
    return recordings


def recording_order(recording: RecordingFacts) -> tuple[bool, int, str]:
    """Chronological, recordings with no known start last, ties by id."""
    started_at = recording.effective_started_at
    return (started_at is None, started_at or 0, recording.recording_id)


def _recording_state(recording: RecordingFacts) -> RecordingState:
    stages: list[RecordingStatus] = []
    if recording.started_received_at is not None:
        stages.append("started")
    if recording.paused:
        stages.append("paused")
    if recording.ended_seen:
        stages.append("ended")
    if recording.ready_seen:
        stages.append("ready")
    if recording.failed_at is not None:
        stages.append("failed")
    if recording.expired_at is not None:
        stages.append("expired")
    return RecordingState(
        recording_id=recording.recording_id,
        status=recording.status,
        started_at=_format(recording.effective_started_at),
        ended_at=_format(recording.ended_at),
        duration_s=recording.duration_s,
        url=recording.url,
        stages_seen=stages,
        started_received_at=_format(recording.started_received_at),
    )


def _format(epoch_ms: int | None) -> Timestamp | None:
    return None if epoch_ms is None else format_epoch_ms(epoch_ms)
