"""Participant joins and lefts: the stint rules of SPEC §5, in raw-topic order.

Per ``session_id`` + ``participant_id``:

* a join while absent starts a stint (``participant.joined`` with its number); a join while
  present changes nothing;
* a left while present ends the stint (``participant.left``); a left while absent changes
  nothing, except a left seen before any join: it is held, and the first join closes it at once
  as a stint of length 0 (both events go out, the participant is not present afterwards);
* the session closing sends every present participant away (``lifecycle``); in a closed
  session a left still refines the end of the stint the closing ended, and a join of an absent
  participant starts a stint that the closing ends at once.

Each function records into ``session`` and appends the events the change triggers to
``events``; the returned bool says whether any fact changed. Work per callback is a dict lookup
and, for present participants of a session of more than one chunk, a bisection of its sorted
present list.
"""

from __future__ import annotations

from processor.engine import derived
from processor.engine.session import Participant, Session, intern, shared_name
from schemas.callbacks import ParticipantJoinedCallback, ParticipantLeftCallback
from schemas.events import DerivedEvent


def record_joined(
    session: Session, callback: ParticipantJoinedCallback, at: int, events: list[DerivedEvent]
) -> bool:
    participant_id = callback.participant_id
    participant = session.participants.get(participant_id)
    if participant is None:
        participant = session.add_participant(
            participant_id, callback.name, callback.is_host, callback.type
        )
    elif participant.present:
        return False
    session.touch(participant)
    session.total_joins += 1
    if participant.joined_at is None and participant.left_at is not None:
        # The held left and this join crossed in delivery: a stint of length 0. The join
        # describes the participant as it entered, so its details win.
        participant.name = shared_name(callback.name)
        participant.is_host = callback.is_host
        participant.participant_type = intern(callback.type)
        participant.joined_at = participant.left_at = at
        events.append(
            derived.participant_joined(session, participant_id, participant, joined_at=at)
        )
        events.append(
            derived.participant_left(
                session, participant_id, participant, left_at=at, reason="left"
            )
        )
        return True
    _start_stint(participant, at)
    events.append(derived.participant_joined(session, participant_id, participant, joined_at=at))
    closed_at = session.closed_at
    if closed_at is None:
        session.arrive(participant_id, at)
    else:
        # Joining a closed session: the closing ends the stint at once (a later left of it
        # still refines its end).
        events.append(
            derived.participant_left(
                session,
                participant_id,
                participant,
                left_at=closed_at,
                reason=session.closing_left_reason,
            )
        )
    return True


def record_left(
    session: Session, callback: ParticipantLeftCallback, at: int, events: list[DerivedEvent]
) -> bool:
    participant_id = callback.participant_id
    participant = session.participants.get(participant_id)
    if participant is None:
        participant = session.add_participant(
            participant_id, callback.name, callback.is_host, callback.type
        )
        participant.left_at = at  # held until the first join
        session.touch(participant)
        return True
    joined_at = participant.joined_at
    if joined_at is None or participant.left_at is not None:
        return False  # absent (or a left already held): nothing changes
    participant.left_at = at
    session.touch(participant)
    if session.closed_at is not None:
        # Its participant.left went out when the session closed; the left time still
        # refines the stint (and so the summary).
        return True
    session.depart(participant_id, joined_at)
    events.append(
        derived.participant_left(session, participant_id, participant, left_at=at, reason="left")
    )
    return True


def _start_stint(participant: Participant, at: int) -> None:
    if participant.joined_at is not None and participant.left_at is not None:
        if participant.earlier is None:
            participant.earlier = []
        participant.earlier += (participant.joined_at, participant.left_at)
    participant.joined_at = at
    participant.left_at = None
