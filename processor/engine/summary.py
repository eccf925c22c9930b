"""The ``session.ended`` summary and the attendance reports, from a closed session's facts."""

from __future__ import annotations

import hashlib
import math

import msgspec

from processor.engine.attendance import Attendance, attendances, peak_concurrency
from processor.engine.session import Session
from schemas.events import SessionSummary
from schemas.timestamps import format_epoch_ms


def summarize(
    session: Session, *, ended_at: int, revision: int
) -> tuple[SessionSummary, list[Attendance]]:
    """What the session amounted to, given that it ended at ``ended_at``, and who attended."""
    reports, intervals = attendances(session)
    started_at = session.started_at
    # Unknown start: the session's length cannot be measured, so it counts as zero.
    duration_ms = 0 if started_at is None else max(0, ended_at - started_at)
    summary = SessionSummary(
        started_at=None if started_at is None else format_epoch_ms(started_at),
        ended_at=format_epoch_ms(ended_at),
        duration_s=duration_ms / 1000,
        unique_participants=len(session.participants),
        peak_concurrency=peak_concurrency(intervals),
        # From the stints attendance reports: for Video, the union of each person's
        # connections, whatever order they arrived in (for Meetings, every stint started).
        total_joins=sum(report.stints for report in reports),
        # Summed in integer ms: exactly the sum of the reports' attended_s, in any order.
        participant_seconds=sum(report.attended_ms for report in reports) / 1000,
        recordings=session.recording_count,
        # fsum is exactly rounded, hence independent of the order recordings arrived in.
        recorded_seconds=math.fsum(
            recording.duration_s
            for recording in session.recordings.values()
            if recording.duration_s is not None
        ),
        ended_by=session.ended_by,
        revision=revision,
        screen_share_s=sum(report.screen_share_ms for report in reports) / 1000,
        end_reason=session.end_reason if session.ended_at is not None else None,
    )
    return summary, reports


def attendance_digest(reports: list[Attendance]) -> bytes:
    """A digest of what the attendance reports say, to tell whether a revision changes them."""
    # A screen share is in a row only when there is one, so a session without screen shares
    # (every Meetings session) keeps the digest its changelog records already hold: restoring
    # them publishes no spurious revision.
    rows = [
        (
            report.participant_id,
            report.participant.name,
            report.participant.is_host,
            report.stints,
            report.attended_ms,
            report.first_joined_at,
            report.last_left_at,
        )
        + ((report.screen_share_ms,) if report.screen_share_ms else ())
        for report in reports
    ]
    return hashlib.blake2b(msgspec.msgpack.encode(rows), digest_size=16).digest()
