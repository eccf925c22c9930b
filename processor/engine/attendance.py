"""Stints as clamped intervals, each participant's attendance, and the concurrency sweep.

Join and left times are ingest receive times while session times are Vonage's, so the two clocks
disagree a little; clamping every stint into the session's bounds keeps every duration and count
non-negative whatever the skew. Clamping happens when a figure is computed, never in the stored
facts, so a ``session:started`` that arrives late still corrects every figure after it.
"""

from __future__ import annotations

import msgspec

from processor.engine.session import Participant, Session

# Sweep order of boundaries that share a time: ends of stints with a length go first, so
# back-to-back stints do not overlap; zero-length stints end last, so a participant who joined
# and left within one millisecond still counts as present at that instant.
_END = 0
_START = 1
_INSTANT_END = 2


def clamped(session: Session, joined: int, left: int | None) -> tuple[int, int] | None:
    """A stint's ``(start, end)`` within the session; ``None`` while it is still open.

    A stint without a ``left`` ends with the session. Start is kept within the session; end
    within ``[start, session end]``.
    """
    closed_at = session.closed_at
    end = left if left is not None else closed_at
    if end is None:
        return None
    start = joined if session.started_at is None else max(joined, session.started_at)
    if closed_at is not None:
        start = min(start, closed_at)
        end = min(end, closed_at)
    return start, max(end, start)


class Attendance(msgspec.Struct, frozen=True, gc=False):
    """One participant id's attendance in a closed session (made per participant each time a
    closed session's figures are computed: a struct, untracked by the garbage collector)."""

    participant_id: str
    participant: Participant
    stints: int
    attended_ms: int
    first_joined_at: int | None
    last_left_at: int | None
    screen_share_ms: int = 0


def attendances(session: Session) -> tuple[list[Attendance], list[tuple[int, int]]]:
    """Every participant's attendance, ordered by id, and every clamped stint (for the sweep).

    Meant for a closed session (every stint then has an end).
    """
    reports: list[Attendance] = []
    intervals: list[tuple[int, int]] = []
    for participant_id in sorted(session.participants):
        participant = session.participants[participant_id]
        attended = 0
        first = last = None
        stints = participant.attended_stints()
        for joined, left in stints:
            interval = clamped(session, joined, left)
            if interval is None:
                continue
            start, end = interval
            attended += end - start
            intervals.append(interval)
            if first is None:
                first = start
            last = end
        reports.append(
            Attendance(
                participant_id=participant_id,
                participant=participant,
                stints=len(stints),
                attended_ms=attended,
                first_joined_at=first,
                last_left_at=last,
                screen_share_ms=screen_share_ms(session, participant),
            )
        )
    return reports, intervals


def screen_share_ms(session: Session, participant: Participant) -> int:
    """The lengths of the participant's screen-sharing streams, each clamped into the session
    (a stream still open ends with the session)."""
    streams = participant.streams
    if not streams:
        return 0
    total = 0
    for stream in streams.values():
        if stream.video_type != "screen" or stream.started_at is None:
            continue
        interval = clamped(session, stream.started_at, stream.ended_at)
        if interval is not None:
            total += interval[1] - interval[0]
    return total


def peak_concurrency(intervals: list[tuple[int, int]]) -> int:
    """The most stints overlapping at any instant."""
    boundaries: list[tuple[int, int, int]] = []
    for start, end in intervals:
        boundaries.append((start, _START, 1))
        boundaries.append((end, _END if end > start else _INSTANT_END, -1))
    boundaries.sort()
    present = peak = 0
    for _, _, change in boundaries:
        present += change
        if present > peak:
            peak = present
    return peak
