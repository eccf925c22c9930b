"""Session start and end: the ``session:*`` facts, closing, and summary revisions.

Each function records into ``session`` and appends the derived events the change triggers to
``events``; the returned bool says whether any fact changed.
"""

from __future__ import annotations

import msgspec

from processor.engine import derived
from processor.engine.facts import SessionBegan, SessionFinished
from processor.engine.session import Publication, Session
from processor.engine.streams import end_all_streams
from processor.engine.summary import attendance_digest, summarize
from schemas.events import DerivedEvent


def record_session_started(
    session: Session, fact: SessionBegan, events: list[DerivedEvent]
) -> bool:
    started_at = fact.at
    first_sighting = not session.session_started_seen
    if not first_sighting and session.started_at is not None and session.started_at <= started_at:
        return False
    # session:started's own time outranks the started_at a session:ended reported earlier.
    session.session_started_seen = True
    session.started_at = started_at
    if first_sighting:
        events.append(derived.session_started(session, started_at=started_at))
    return True


def record_session_ended(
    session: Session, fact: SessionFinished, events: list[DerivedEvent]
) -> bool:
    changed = False
    reported_start = fact.reported_start
    if (
        reported_start is not None
        and not session.session_started_seen
        and (session.started_at is None or reported_start < session.started_at)
    ):
        session.started_at = reported_start
        changed = True
    ended_at = fact.at
    if session.ended_at is not None and session.ended_at <= ended_at:
        return changed
    # A timed-out session is already closed: its participants were sent away then, and the
    # summary revision (ended_by=callback) follows from the facts. The real end supersedes the
    # timeout for good, so its time is dropped rather than kept unused.
    was_closed = session.closed_at is not None
    session.ended_at = ended_at
    session.timed_out_at = None
    if fact.reason is not None or session.video is not None:
        session.video_part().end_reason = fact.reason
    if session.video is not None:
        session.video.empty_ended_at = None  # the platform's end supersedes the empty rule
    if not was_closed:
        send_away_present_participants(session, events)
    return True


def send_away_present_participants(session: Session, events: list[DerivedEvent]) -> None:
    """The session just closed: its open streams end, and everyone still present gets their
    ``participant.left``, in join order; their stints stay without a ``left`` (the closing
    ends them)."""
    closed_at = session.closed_at
    if closed_at is None:
        raise ValueError(f"session {session.session_id} is not closed")
    end_all_streams(session, events)
    if session.video is not None:
        session.video.open_connections = 0
    reason = session.closing_left_reason
    participants = session.participants
    for participant_id in session.present_ids():
        events.append(
            derived.participant_left(
                session,
                participant_id,
                participants[participant_id],
                left_at=closed_at,
                reason=reason,
            )
        )
    session.send_everyone_away()


REVISION_COST_PARTICIPANTS = 64
"""A revision re-publishes one attendance report per participant id, so a closed session with
N participant ids considers a revision after every ``max(1, N // 64)`` changes: at most about
64 reports per late callback, whatever the session's size (see ``revise_summary``)."""


def revise_summary(session: Session, events: list[DerivedEvent], *, urgent: bool) -> None:
    """After a change to a closed session: publish its summary if it differs from the last one.

    The first summary (revision 1) goes out when the session closes. Later changes (late
    callbacks) are counted; a new revision is considered once their number reaches
    ``max(1, participants // REVISION_COST_PARTICIPANTS)``, or at once when ``urgent`` (the
    session's end itself changed), and published only if the summary or an attendance report
    differs from the last published one. The count depends only on the raw topic's content and
    order, so a replay publishes the same revisions; what is left uncounted is settled when the
    session leaves memory (``settle_revision``).
    """
    if session.closed_at is None:
        return
    published = session.published
    if published is not None and not urgent:
        published.unsettled_changes += 1
        threshold = max(1, len(session.participants) // REVISION_COST_PARTICIPANTS)
        if published.unsettled_changes < threshold:
            return
    _consider_revision(session, events)


def settle_revision(session: Session) -> list[DerivedEvent]:
    """The revision still owed for changes not yet considered (before the session is dropped)."""
    events: list[DerivedEvent] = []
    published = session.published
    if session.closed_at is not None and published is not None and published.unsettled_changes:
        _consider_revision(session, events)
    return events


def _consider_revision(session: Session, events: list[DerivedEvent]) -> None:
    closed_at = session.closed_at
    assert closed_at is not None
    published = session.published
    revision = 1 if published is None else published.summary.revision
    summary, reports = summarize(session, ended_at=closed_at, revision=revision)
    digest = attendance_digest(reports)
    if published is not None:
        published.unsettled_changes = 0
        if summary == published.summary and digest == published.digest:
            return
        summary = msgspec.structs.replace(summary, revision=revision + 1)
    session.published = Publication(summary=summary, digest=digest)
    events.append(derived.session_ended(session, summary))
    events.extend(derived.participant_attendance(session, report, summary) for report in reports)
