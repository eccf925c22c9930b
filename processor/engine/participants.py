"""Participant joins and lefts.

``participant.joined`` goes out with a participant's first join; ``participant.left`` with the
first of its left callback and the session closing while it is present. Facts keep the earliest
time of each, so later copies (retries) change nothing.
"""

from __future__ import annotations

from processor.engine import derived
from processor.engine.session import ParticipantFacts, Session
from schemas.callbacks import ParticipantJoinedCallback, ParticipantLeftCallback
from schemas.events import DerivedEvent


def record_joined(
    session: Session, callback: ParticipantJoinedCallback, at: int, events: list[DerivedEvent]
) -> bool:
    participant = session.participants.get(callback.participant_id)
    newcomer = participant is None
    if participant is None:
        participant = _new_participant(session, callback)
    elif participant.joined_at is not None:
        if participant.joined_at <= at:
            return False
        participant.joined_at = at
        return True
    else:
        # Its left came first; the join describes the participant as it entered, so it wins.
        participant.name = callback.name
        participant.is_host = callback.is_host
        participant.participant_type = callback.type
    participant.joined_at = at
    events.append(derived.participant_joined(session, participant, joined_at=at))
    closed_at = session.closed_at
    # A known participant's left already went out (with its left callback); a newcomer to a
    # closed session must not stay present forever.
    if newcomer and closed_at is not None:
        events.append(
            derived.participant_left(
                session, participant, left_at=closed_at, reason=session.closing_left_reason
            )
        )
    return True


def record_left(
    session: Session, callback: ParticipantLeftCallback, at: int, events: list[DerivedEvent]
) -> bool:
    participant = session.participants.get(callback.participant_id)
    if participant is None:
        participant = _new_participant(session, callback)
    elif participant.left_at is not None:
        if participant.left_at <= at:
            return False
        participant.left_at = at
        return True
    elif session.closed_at is not None:
        # Its participant.left went out when the session closed; the left time still refines
        # the attendance (and so the summary).
        participant.left_at = at
        return True
    participant.left_at = at
    events.append(derived.participant_left(session, participant, left_at=at, reason="left"))
    return True


def _new_participant(
    session: Session, callback: ParticipantJoinedCallback | ParticipantLeftCallback
) -> ParticipantFacts:
    participant = ParticipantFacts(
        participant_id=callback.participant_id,
        name=callback.name,
        is_host=callback.is_host,
        participant_type=callback.type,
    )
    session.participants[callback.participant_id] = participant
    return participant
