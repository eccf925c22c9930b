"""The ``session.ended`` summary, computed from a closed session's facts alone."""

from __future__ import annotations

import math

from processor.engine.attendance import closed_attendance, peak_concurrency
from processor.engine.session import Session
from schemas.events import SessionSummary
from schemas.timestamps import format_epoch_ms


def summarize(session: Session, *, ended_at: int, revision: int) -> SessionSummary:
    """What the session amounted to, given that it ended at ``ended_at``."""
    attendances = [
        closed_attendance(
            participant,
            session,
            end=participant.left_at if participant.left_at is not None else ended_at,
        )
        for participant in session.participants.values()
    ]
    started_at = session.started_at
    # Unknown start: the session's length cannot be measured, so it counts as zero.
    duration_ms = 0 if started_at is None else max(0, ended_at - started_at)
    return SessionSummary(
        started_at=None if started_at is None else format_epoch_ms(started_at),
        ended_at=format_epoch_ms(ended_at),
        duration_s=duration_ms / 1000,
        unique_participants=len(session.participants),
        peak_concurrency=peak_concurrency(attendances),
        total_joins=sum(1 for p in session.participants.values() if p.joined_at is not None),
        # Summed in integer ms: float sums would depend on the dict's (arrival) order.
        participant_seconds=sum(attendance.length_ms for attendance in attendances) / 1000,
        recordings=len(session.recordings),
        # fsum is exactly rounded, hence independent of the order recordings arrived in.
        recorded_seconds=math.fsum(
            recording.duration_s
            for recording in session.recordings.values()
            if recording.duration_s is not None
        ),
        ended_by=session.ended_by,
        revision=revision,
    )
