"""The engine's transitions: a callback applied to a session, and the closings and releases
the runtime decides on (``expire_idle``, ``expire_empty``, ``release_previous``, ``settle``).

Pure: no I/O and no clock; the runtime passes each record's receive time and decides when a
session is idle, empty or past retention. Every transition updates the given ``Session`` in place
(the engine's working state) and returns in ``Applied`` the session now current (a new Video
instance when one begins) with the events to publish. There is
no rollback: a transition that raises may leave the session part-changed, and ``snapshot`` (the
public ``SessionState``) cannot give it back. The runtime recovers by rebuilding the partition's
sessions from its last commit (the changelog) and replaying the records since, the failing one
dead-lettered unapplied (``processor.runtime.partition``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import assert_never

import msgspec

from processor.engine.changelog import instance_tombstones
from processor.engine.facts import (
    Arrived,
    Departed,
    Fact,
    Origin,
    RecordingChanged,
    SessionBegan,
    SessionFinished,
    StreamBegan,
    StreamFinished,
)
from processor.engine.lifecycle import (
    record_session_ended,
    record_session_started,
    revise_summary,
    send_away_present_participants,
    settle_revision,
)
from processor.engine.participants import record_arrived, record_departed
from processor.engine.recordings import record_recording
from processor.engine.session import Session, VideoSession
from processor.engine.streams import record_stream_began, record_stream_finished
from schemas.events import DerivedEvent


class Applied(msgspec.Struct, frozen=True):
    """What one transition did (a struct: cheaper to make than a slotted dataclass)."""

    session: Session
    events: list[DerivedEvent]
    """Derived events to publish, in a deterministic order; empty when nothing changed."""
    changed: bool
    """Whether any fact changed (and so the snapshot, whose version was incremented)."""


def apply(session: Session | None, facts: Sequence[Fact], received_at_ms: int) -> Applied:
    """Apply the facts of one callback, in order; ``session`` is ``None`` for the first
    callback of a session id (the facts then name it).

    A session id whose platform reuses ids (Video) goes through instances: a begin timestamped
    after the current instance ended starts the next one (``Applied.session`` is then the new
    instance, the ended one kept as its ``previous``), and a callback timestamped at or before
    the previous instance's end revises that instance (contract §7.6)."""
    if not facts:
        raise ValueError("a callback with no facts has nothing to apply")
    origin = facts[0].origin
    at = facts[0].at  # one callback, one event time
    if session is None:
        session = _new_session(origin, at, received_at_ms)
    elif origin.session_id != session.session_id:
        raise ValueError(
            f"a fact of session {origin.session_id} applied to session {session.session_id}"
        )
    events: list[DerivedEvent] = []
    closed_at = session.closed_at
    if closed_at is not None and at > closed_at and _opens_instance(facts, session):
        session = _next_instance(session, origin, at, received_at_ms, events)
        _apply_to(session, facts, received_at_ms, events)
        return Applied(session=session, events=events, changed=True)
    video = session.video  # read here, not through ``previous``: this runs per callback
    previous = None if video is None else video.previous
    if video is not None and previous is not None:
        previous_end = previous.closed_at
        if previous_end is not None and at <= previous_end:
            changed = _apply_to(previous, facts, received_at_ms, events)
            if changed:
                video.previous_dirty = True
            return Applied(session=session, events=events, changed=changed)
    changed = _apply_to(session, facts, received_at_ms, events)
    return Applied(session=session, events=events, changed=changed)


def _new_session(origin: Origin, at: int, received_at_ms: int) -> Session:
    return Session(
        session_id=origin.session_id,
        room_id=None,
        last_event_at=at,
        last_received_at=received_at_ms,
        video=VideoSession(tenant_id=origin.tenant_id, opened_at=at)
        if origin.source == "video"
        else None,
    )


def _opens_instance(facts: Sequence[Fact], closed: Session) -> bool:
    """Whether these facts, later than ``closed``'s end, belong to its next instance. An end
    opens one only after an end the platform reported: after an idle timeout or the empty
    rule, the platform's own end is the real end of the same instance."""
    for fact in facts:
        if isinstance(fact, SessionBegan | Arrived) and fact.opens_instance:
            return True
        if isinstance(fact, SessionFinished) and fact.opens_instance:
            return closed.ended_at is not None
    return False


def _next_instance(
    ended: Session, origin: Origin, at: int, received_at_ms: int, events: list[DerivedEvent]
) -> Session:
    """The instance after ``ended``, which becomes its previous; the instance before that is
    let go (its owed revision published, its records tombstoned with the next write)."""
    video = ended.video_part()
    session = _new_session(origin, at, received_at_ms)
    session.room_id = ended.room_id
    session.version = ended.version  # the state record's version keeps increasing
    successor = session.video_part()
    successor.tenant_id = successor.tenant_id or video.tenant_id
    successor.instance = video.instance + 1
    successor.pending = video.pending
    video.pending = []
    let_go = video.previous
    if let_go is not None:
        events.extend(settle(let_go).events)
        successor.pending.extend(instance_tombstones(let_go, previous=True))
        video.previous = None
    # The ended instance leaves the session id's own key space for the previous one's.
    successor.pending.extend(instance_tombstones(ended, previous=False))
    ended.split_parts = None
    if ended.crowd is not None:
        ended.crowd.dirty = (1 << ended.chunk_count) - 1
    successor.previous = ended
    successor.previous_dirty = True
    return session


def _apply_to(
    session: Session, facts: Sequence[Fact], received_at_ms: int, events: list[DerivedEvent]
) -> bool:
    changed = False
    origin = facts[0].origin
    if session.room_id is None and origin.room_id is not None:
        session.room_id = origin.room_id
        changed = True
    if origin.tenant_id is not None and session.tenant_id is None:
        session.video_part().tenant_id = origin.tenant_id
        changed = True
    closed_before = session.closed_at
    for fact in facts:
        changed = _record(session, fact, events) or changed
    if not changed:
        return False
    at = facts[0].at  # one callback, one event time
    if at > session.last_event_at:
        session.last_event_at = at
    session.last_received_at = max(session.last_received_at, received_at_ms)
    revise_summary(session, events, urgent=session.closed_at != closed_before)
    session.version += 1
    return True


def expire_idle(session: Session) -> Applied:
    """Close an active session by idle timeout, as of its last event time.

    Everyone present leaves with ``left_reason=timeout`` and the first summary goes out with
    ``ended_by=timeout``. A session already closed is left as it is.
    """
    if session.closed_at is not None:
        return Applied(session=session, events=[], changed=False)
    session.timed_out_at = session.last_event_at
    events: list[DerivedEvent] = []
    send_away_present_participants(session, events)
    revise_summary(session, events, urgent=True)
    session.version += 1
    return Applied(session=session, events=events, changed=True)


def expire_empty(session: Session) -> Applied:
    """Close an active Video session that has had no open connection since ``emptied_at``
    (the runtime decides when that is long enough: ``VIDEO_EMPTY_SESSION_END_S``), as of then:
    its summary goes out with ``ended_by=empty``. Anything else is left as it is."""
    video = session.video
    if (
        session.closed_at is not None
        or video is None
        or video.emptied_at is None
        or video.open_connections
    ):
        return Applied(session=session, events=[], changed=False)
    video.empty_ended_at = video.emptied_at
    events: list[DerivedEvent] = []
    send_away_present_participants(session, events)
    revise_summary(session, events, urgent=True)
    session.version += 1
    return Applied(session=session, events=events, changed=True)


def release_previous(session: Session) -> Applied:
    """Let the previous instance go (past its retention): its owed revision is published and
    its records are tombstoned with the next changelog write."""
    video = session.video
    previous = None if video is None else video.previous
    if video is None or previous is None:
        return Applied(session=session, events=[], changed=False)
    events = settle_revision(previous)
    video.pending.extend(instance_tombstones(previous, previous=True))
    video.previous = None
    video.previous_dirty = False
    session.version += 1
    return Applied(session=session, events=events, changed=True)


def settle(session: Session) -> Applied:
    """Publish the summary revision still owed for late changes not yet considered (of the
    session and of its previous instance); the runtime calls it before a finished session
    leaves memory (``revise_summary``)."""
    previous = session.previous
    events = [] if previous is None else settle_revision(previous)
    events.extend(settle_revision(session))
    if not events:
        return Applied(session=session, events=[], changed=False)
    session.version += 1
    return Applied(session=session, events=events, changed=True)


def _record(session: Session, fact: Fact, events: list[DerivedEvent]) -> bool:
    match fact:
        case SessionBegan():
            return record_session_started(session, fact, events)
        case SessionFinished():
            return record_session_ended(session, fact, events)
        case Arrived():
            return record_arrived(session, fact, events)
        case Departed():
            return record_departed(session, fact, events)
        case StreamBegan():
            return record_stream_began(session, fact, events)
        case StreamFinished():
            return record_stream_finished(session, fact, events)
        case RecordingChanged():
            return record_recording(session, fact, events)
        case _:
            assert_never(fact)
