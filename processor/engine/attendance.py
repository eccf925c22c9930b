"""Attendance intervals and the concurrency sweep over them.

Join and left times are ingest receive times while session times are Vonage's, so the two clocks
disagree a little; clamping every interval into the session's bounds keeps every duration and
count non-negative whatever the skew.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from processor.engine.session import ParticipantFacts, Session


@dataclass(frozen=True, slots=True)
class Interval:
    """A finished attendance in epoch ms; ``end >= start``."""

    start: int
    end: int

    @property
    def length_ms(self) -> int:
        return self.end - self.start


@dataclass(frozen=True, slots=True)
class OpenInterval:
    """An attendance still running: joined, not left, session still active."""

    start: int


# Sweep order of boundaries that share a time: ends of intervals with a length go first, so
# back-to-back attendances do not overlap; zero-length intervals end last, so a participant who
# joined and left within one millisecond still counts as present at that instant.
_END = 0
_START = 1
_INSTANT_END = 2


def attendance(participant: ParticipantFacts, session: Session) -> Interval | OpenInterval:
    """The participant's clamped attendance as the facts stand now."""
    end = participant.left_at if participant.left_at is not None else session.closed_at
    if end is not None:
        return closed_attendance(participant, session, end=end)
    if participant.joined_at is None:
        raise ValueError(f"participant {participant.participant_id} has neither join nor left")
    return OpenInterval(start=_not_before_session(participant.joined_at, session))


def closed_attendance(participant: ParticipantFacts, session: Session, *, end: int) -> Interval:
    """The attendance ending at ``end`` (its left, or the session's end), clamped.

    Start is the join, else the session's start, else ``end`` itself (left before any join and
    no known start: nothing to measure). Start is kept within the session; end within
    ``[start, session end]``.
    """
    if participant.joined_at is not None:
        start = participant.joined_at
    elif session.started_at is not None:
        start = session.started_at
    else:
        start = end
    start = _not_before_session(start, session)
    closed_at = session.closed_at
    if closed_at is not None:
        start = min(start, closed_at)
        end = min(end, closed_at)
    return Interval(start=start, end=max(end, start))


def _not_before_session(moment: int, session: Session) -> int:
    return moment if session.started_at is None else max(moment, session.started_at)


def peak_concurrency(intervals: Iterable[Interval | OpenInterval]) -> int:
    """The most attendances overlapping at any instant."""
    boundaries: list[tuple[int, int, int]] = []
    for interval in intervals:
        boundaries.append((interval.start, _START, 1))
        if isinstance(interval, Interval):
            order = _END if interval.end > interval.start else _INSTANT_END
            boundaries.append((interval.end, order, -1))
    boundaries.sort()
    present = peak = 0
    for _, _, change in boundaries:
        present += change
        peak = max(peak, present)
    return peak
