"""The engine's transitions: a callback applied to a session, and a session expired by idleness.

Pure: no I/O and no clock. The runtime passes each record's receive time and decides when a
session is idle. ``apply`` and ``expire_idle`` update the given ``Session`` in place (it is the
engine's working state); a caller that must be able to roll back keeps a ``snapshot``.
"""

from __future__ import annotations

from typing import assert_never

import msgspec

from processor.engine.lifecycle import (
    record_session_ended,
    record_session_started,
    revise_summary,
    send_away_present_participants,
    settle_revision,
)
from processor.engine.participants import record_joined, record_left
from processor.engine.recordings import (
    record_recording_ended,
    record_recording_ready,
    record_recording_started,
)
from processor.engine.session import Session
from schemas.callbacks import (
    BaseCallback,
    ParticipantJoinedCallback,
    ParticipantLeftCallback,
    RecordingEndedCallback,
    RecordingReadyCallback,
    RecordingStartedCallback,
    SessionEndedCallback,
    SessionStartedCallback,
)
from schemas.events import DerivedEvent
from schemas.timestamps import to_epoch_ms

SessionCallback = (
    SessionStartedCallback
    | SessionEndedCallback
    | RecordingStartedCallback
    | RecordingEndedCallback
    | RecordingReadyCallback
    | ParticipantJoinedCallback
    | ParticipantLeftCallback
)
"""Every callback that belongs to a session (all but ``room:expired``), in any spelling."""


class Applied(msgspec.Struct, frozen=True):
    """What one transition did (a struct: cheaper to make than a slotted dataclass)."""

    session: Session
    events: list[DerivedEvent]
    """Derived events to publish, in a deterministic order; empty when nothing changed."""
    changed: bool
    """Whether any fact changed (and so the snapshot, whose version was incremented)."""


def event_time_ms(callback: BaseCallback, received_at_ms: int) -> int:
    """The callback's own time when it has one, else the ingest receive time (SPEC §5)."""
    own_time = callback.event_time
    return received_at_ms if own_time is None else to_epoch_ms(own_time)


def apply(session: Session | None, callback: SessionCallback, received_at_ms: int) -> Applied:
    """Apply one callback; ``session`` is ``None`` for the first callback of a session."""
    at = event_time_ms(callback, received_at_ms)
    if session is None:
        session = Session(
            session_id=callback.session_id,
            room_id=None,
            last_event_at=at,
            last_received_at=received_at_ms,
        )
    elif callback.session_id != session.session_id:
        raise ValueError(
            f"callback for session {callback.session_id} applied to session {session.session_id}"
        )
    changed = False
    if session.room_id is None and callback.room_id is not None:
        session.room_id = callback.room_id
        changed = True
    events: list[DerivedEvent] = []
    closed_before = session.closed_at
    changed = _record(session, callback, at, events) or changed
    if not changed:
        return Applied(session=session, events=events, changed=False)
    session.last_event_at = max(session.last_event_at, at)
    session.last_received_at = max(session.last_received_at, received_at_ms)
    revise_summary(session, events, urgent=session.closed_at != closed_before)
    session.version += 1
    return Applied(session=session, events=events, changed=True)


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


def settle(session: Session) -> Applied:
    """Publish the summary revision still owed for late changes not yet considered; the
    runtime calls it before a finished session leaves memory (``revise_summary``)."""
    events = settle_revision(session)
    if not events:
        return Applied(session=session, events=[], changed=False)
    session.version += 1
    return Applied(session=session, events=events, changed=True)


def _record(
    session: Session, callback: SessionCallback, at: int, events: list[DerivedEvent]
) -> bool:
    match callback:
        case SessionStartedCallback():
            return record_session_started(session, callback, events)
        case SessionEndedCallback():
            return record_session_ended(session, callback, events)
        case ParticipantJoinedCallback():
            return record_joined(session, callback, at, events)
        case ParticipantLeftCallback():
            return record_left(session, callback, at, events)
        case RecordingStartedCallback():
            return record_recording_started(session, callback, at, events)
        case RecordingEndedCallback():
            return record_recording_ended(session, callback, events)
        case RecordingReadyCallback():
            return record_recording_ready(session, callback, events)
        case _:
            assert_never(callback)
