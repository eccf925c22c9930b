"""``Session`` ⇄ ``SessionState``: the published snapshot, which is also the changelog.

The snapshot carries every fact, so ``restore(snapshot(s))`` continues exactly as ``s`` would;
the live figures (active participants, counts, peak, recording_active) are derived on the way out
and ignored on the way back in.
"""

from __future__ import annotations

from processor.engine.attendance import attendance, peak_concurrency
from processor.engine.session import ParticipantFacts, RecordingFacts, Session
from schemas.state import (
    ActiveParticipant,
    ParticipantRecord,
    RecordingState,
    RecordingStatus,
    SessionState,
)
from schemas.timestamps import Timestamp, format_epoch_ms, parse_timestamp, to_epoch_ms


def snapshot(session: Session) -> SessionState:
    closed_at = session.closed_at
    active = [] if closed_at is not None else session.present_participants()
    recordings = sorted(session.recordings.values(), key=_recording_order)
    started_at = session.started_at
    duration_ms = None
    if closed_at is not None:
        duration_ms = 0 if started_at is None else max(0, closed_at - started_at)
    return SessionState(
        session_id=session.session_id,
        room_id=session.room_id,
        status=session.status,
        started_at=_format(started_at),
        ended_at=_format(closed_at),
        duration_s=None if duration_ms is None else duration_ms / 1000,
        active_participants=[
            ActiveParticipant(
                participant_id=participant.participant_id,
                name=participant.name,
                is_host=participant.is_host,
                joined_at=format_epoch_ms(joined_at),
            )
            for joined_at, participant in active
        ],
        active_count=len(active),
        peak_concurrency=peak_concurrency(
            attendance(participant, session) for participant in session.participants.values()
        ),
        unique_participants=len(session.participants),
        total_joins=sum(1 for p in session.participants.values() if p.joined_at is not None),
        recordings=[_recording_state(recording) for recording in recordings],
        recording_active=closed_at is None
        and any(recording.status == "started" for recording in recordings),
        last_event_at=format_epoch_ms(session.last_event_at),
        last_received_at=format_epoch_ms(session.last_received_at),
        version=session.version,
        participants=[
            _participant_record(session.participants[participant_id])
            for participant_id in sorted(session.participants)
        ],
        session_started_seen=session.session_started_seen,
        summary=session.summary,
    )


def restore(state: SessionState) -> Session:
    """The session a snapshot was taken of; raises ``ValueError`` for a snapshot this engine
    cannot have written."""
    if state.last_event_at is None:
        raise ValueError(f"snapshot of session {state.session_id} has no last_event_at")
    ended_at = _parse(state.ended_at)
    return Session(
        session_id=state.session_id,
        room_id=state.room_id,
        last_event_at=to_epoch_ms(parse_timestamp(state.last_event_at)),
        last_received_at=_parse(state.last_received_at) or 0,
        started_at=_parse(state.started_at),
        session_started_seen=state.session_started_seen,
        ended_at=ended_at if state.status == "ended" else None,
        timed_out_at=ended_at if state.status == "timed_out" else None,
        participants={
            record.participant_id: _participant_facts(record) for record in state.participants
        },
        recordings={
            recording.recording_id: _recording_facts(recording) for recording in state.recordings
        },
        summary=state.summary,
        version=state.version,
    )


def _recording_order(recording: RecordingFacts) -> tuple[bool, int, str]:
    """Chronological, recordings with no known start last, ties by id."""
    started_at = recording.effective_started_at
    return (started_at is None, started_at or 0, recording.recording_id)


def _recording_state(recording: RecordingFacts) -> RecordingState:
    stages: list[RecordingStatus] = []
    if recording.started_received_at is not None:
        stages.append("started")
    if recording.ended_seen:
        stages.append("ended")
    if recording.ready_seen:
        stages.append("ready")
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


def _recording_facts(state: RecordingState) -> RecordingFacts:
    ended_seen = "ended" in state.stages_seen
    ready_seen = "ready" in state.stages_seen
    # started_at is Vonage's time exactly when an ended/ready callback was seen; otherwise it
    # is the receive time of recording:started, kept separately.
    vonage_times = ended_seen or ready_seen
    return RecordingFacts(
        recording_id=state.recording_id,
        started_received_at=_parse(state.started_received_at),
        ended_seen=ended_seen,
        ready_seen=ready_seen,
        started_at=_parse(state.started_at) if vonage_times else None,
        ended_at=_parse(state.ended_at),
        duration_s=state.duration_s,
        url=state.url,
    )


def _participant_record(participant: ParticipantFacts) -> ParticipantRecord:
    return ParticipantRecord(
        participant_id=participant.participant_id,
        name=participant.name,
        is_host=participant.is_host,
        participant_type=participant.participant_type,
        joined_at=_format(participant.joined_at),
        left_at=_format(participant.left_at),
    )


def _participant_facts(record: ParticipantRecord) -> ParticipantFacts:
    return ParticipantFacts(
        participant_id=record.participant_id,
        name=record.name,
        is_host=record.is_host,
        participant_type=record.participant_type,
        joined_at=_parse(record.joined_at),
        left_at=_parse(record.left_at),
    )


def _format(epoch_ms: int | None) -> Timestamp | None:
    return None if epoch_ms is None else format_epoch_ms(epoch_ms)


def _parse(timestamp: Timestamp | None) -> int | None:
    return None if timestamp is None else to_epoch_ms(parse_timestamp(timestamp))
