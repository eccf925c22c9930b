"""Session start and end: the ``session:*`` facts, closing, and summary revisions.

Each function records into ``session`` and appends the derived events the change triggers to
``events``; the returned bool says whether any fact changed.
"""

from __future__ import annotations

import msgspec

from processor.engine import derived
from processor.engine.session import Session
from processor.engine.summary import summarize
from schemas.callbacks import SessionEndedCallback, SessionStartedCallback
from schemas.events import DerivedEvent
from schemas.timestamps import to_epoch_ms


def record_session_started(
    session: Session, callback: SessionStartedCallback, events: list[DerivedEvent]
) -> bool:
    started_at = to_epoch_ms(callback.started_at)
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
    session: Session, callback: SessionEndedCallback, events: list[DerivedEvent]
) -> bool:
    changed = False
    reported_start = to_epoch_ms(callback.started_at)
    if not session.session_started_seen and (
        session.started_at is None or reported_start < session.started_at
    ):
        session.started_at = reported_start
        changed = True
    ended_at = to_epoch_ms(callback.ended_at)
    if session.ended_at is not None and session.ended_at <= ended_at:
        return changed
    # A timed-out session is already closed: its participants were sent away then, and the
    # summary revision (ended_by=callback) follows from the facts. The real end supersedes the
    # timeout for good, so its time is dropped rather than kept unused.
    was_closed = session.closed_at is not None
    session.ended_at = ended_at
    session.timed_out_at = None
    if not was_closed:
        send_away_present_participants(session, events)
    return True


def send_away_present_participants(session: Session, events: list[DerivedEvent]) -> None:
    """The session just closed: everyone still present gets their ``participant.left``."""
    closed_at = session.closed_at
    if closed_at is None:
        raise ValueError(f"session {session.session_id} is not closed")
    reason = session.closing_left_reason
    for _, participant in session.present_participants():
        events.append(
            derived.participant_left(session, participant, left_at=closed_at, reason=reason)
        )


def revise_summary(session: Session, events: list[DerivedEvent]) -> None:
    """After a change to a closed session: publish its summary if it differs from the last one.

    The first summary is revision 1; each later one that differs bumps the revision. A change
    that leaves the summary as it was publishes nothing.
    """
    closed_at = session.closed_at
    if closed_at is None:
        return
    previous = session.summary
    revision = 1 if previous is None else previous.revision
    summary = summarize(session, ended_at=closed_at, revision=revision)
    if summary == previous:
        return
    if previous is not None:
        summary = msgspec.structs.replace(summary, revision=revision + 1)
    session.summary = summary
    events.append(derived.session_ended(session, summary))
