"""The engine's transitions: a callback applied to a session, and a session expired by idleness.

Pure: no I/O and no clock. The runtime passes each record's receive time and decides when a
session is idle. ``apply`` and ``expire_idle`` update the given ``Session`` in place (it is the
engine's working state); a caller that must be able to roll back keeps a ``snapshot``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import assert_never

import msgspec

from processor.engine.facts import (
    Arrived,
    Departed,
    Fact,
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
from processor.engine.session import Session
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
    callback of a session (the facts then name it)."""
    if not facts:
        raise ValueError("a callback with no facts has nothing to apply")
    origin = facts[0].origin
    if session is None:
        session = Session(
            session_id=origin.session_id,
            room_id=None,
            last_event_at=facts[0].at,
            last_received_at=received_at_ms,
            source=origin.source,
            tenant_id=origin.tenant_id,
        )
    elif origin.session_id != session.session_id:
        raise ValueError(
            f"a fact of session {origin.session_id} applied to session {session.session_id}"
        )
    changed = False
    if session.room_id is None and origin.room_id is not None:
        session.room_id = origin.room_id
        changed = True
    if session.tenant_id is None and origin.tenant_id is not None:
        session.tenant_id = origin.tenant_id
        changed = True
    events: list[DerivedEvent] = []
    closed_before = session.closed_at
    for fact in facts:
        changed = _record(session, fact, events) or changed
    if not changed:
        return Applied(session=session, events=events, changed=False)
    session.last_event_at = max(session.last_event_at, *(fact.at for fact in facts))
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
