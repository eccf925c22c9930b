"""Arrivals and departures: the stint rules of contract §5.4, in raw-topic order.

Per ``session_id`` + ``participant_id``:

* an arrival while absent starts a stint (``participant.joined`` with its number); an arrival
  while present changes nothing;
* a departure while present ends the stint (``participant.left``); a departure while absent
  changes nothing, except one seen before any arrival: it is held, and the first arrival closes
  it at once as a stint of length 0 (both events go out, the participant is not present
  afterwards);
* the session closing sends every present participant away (``lifecycle``); in a closed
  session a departure still refines the end of the stint the closing ended, and an arrival of
  an absent participant starts a stint that the closing ends at once.

Where the platform names connections (Video, contract §7.4), a participant is a person who may
hold several: the person arrives with their first open connection and departs with their last, a
retried callback of a connection already seen changes nothing, and attendance is the union of
the connections by event time (``Participant.attended_stints``), so it does not depend on the
order they arrived in. A connection's open streams end with it (``streams``).

Each function records into ``session`` and appends the events the change triggers to
``events``; the returned bool says whether any fact changed. Work per callback is a dict lookup
and, for present participants of a session of more than one chunk, a bisection of its sorted
present list.
"""

from __future__ import annotations

from processor.engine import derived
from processor.engine.facts import Arrived, Departed, Person
from processor.engine.session import Connection, Participant, Session, intern, shared_name
from processor.engine.streams import end_streams_of_connection
from schemas.events import DerivedEvent


def record_arrived(session: Session, fact: Arrived, events: list[DerivedEvent]) -> bool:
    person, at = fact.person, fact.at
    connection_id = person.connection_id
    if connection_id is not None:
        return _connection_opened(session, person, connection_id, at, events)
    participant_id = person.participant_id
    if participant_id is None:
        raise ValueError("an arrival names its participant or its connection")
    participant = session.participants.get(participant_id)
    if participant is None:
        participant = _added(session, participant_id, person)
    elif participant.present:
        return False
    _begin(session, participant_id, participant, person, at, events)
    return True


def _begin(
    session: Session,
    participant_id: str,
    participant: Participant,
    person: Person,
    at: int,
    events: list[DerivedEvent],
    *,
    held_left_at: int | None = None,
) -> None:
    """An absent participant arrives at ``at``: a new stint (closed at once by a departure
    that was held, or by the session's end when it is closed)."""
    session.touch(participant)
    session.total_joins += 1
    connection_id = person.connection_id
    if participant.joined_at is None and participant.left_at is not None:
        # The held left and this join crossed in delivery: a stint of length 0 (Video: the
        # length of the connection, whose both ends are now known). The join describes the
        # participant as it entered, so its details win.
        participant.name = shared_name(person.name)
        participant.is_host = person.is_host
        participant.participant_type = intern(person.participant_type)
        left_at = at if held_left_at is None else max(held_left_at, at)
        participant.joined_at = at
        participant.left_at = left_at
        events.append(
            derived.participant_joined(
                session, participant_id, participant, joined_at=at, connection_id=connection_id
            )
        )
        events.append(
            derived.participant_left(
                session,
                participant_id,
                participant,
                left_at=left_at,
                reason="left",
                connection_id=connection_id,
            )
        )
        return
    _start_stint(participant, at)
    events.append(
        derived.participant_joined(
            session, participant_id, participant, joined_at=at, connection_id=connection_id
        )
    )
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
                connection_id=connection_id,
            )
        )


def record_departed(session: Session, fact: Departed, events: list[DerivedEvent]) -> bool:
    person, at = fact.person, fact.at
    connection_id = person.connection_id
    if connection_id is not None:
        return _connection_closed(session, person, connection_id, fact, events)
    participant_id = person.participant_id
    if participant_id is None:
        raise ValueError("a departure names its participant or its connection")
    participant = session.participants.get(participant_id)
    if participant is None:
        participant = _added(session, participant_id, person)
        participant.left_at = at  # held until the first join
        return True
    joined_at = participant.joined_at
    if joined_at is None or participant.left_at is not None:
        return False  # absent (or a left already held): nothing changes
    _end(session, participant_id, participant, at, events, None, None)
    return True


def _end(
    session: Session,
    participant_id: str,
    participant: Participant,
    at: int,
    events: list[DerivedEvent],
    connection_id: str | None,
    reason: str | None,
) -> None:
    """A present participant departs at ``at`` (or, in a closed session, the stint the closing
    ended gets its real end)."""
    joined_at = participant.joined_at
    assert joined_at is not None
    participant.left_at = at
    session.touch(participant)
    if session.closed_at is not None:
        # Its participant.left went out when the session closed; the left time still
        # refines the stint (and so the summary).
        return
    session.depart(participant_id, joined_at)
    events.append(
        derived.participant_left(
            session,
            participant_id,
            participant,
            left_at=at,
            reason="left",
            connection_id=connection_id,
            disconnect_reason=reason,
        )
    )


def _added(session: Session, participant_id: str, person: Person) -> Participant:
    participant = session.add_participant(
        participant_id, person.name, person.is_host, person.participant_type
    )
    session.touch(participant)
    return participant


# -- connections (Video) -------------------------------------------------------------------


def _connection_opened(
    session: Session, person: Person, connection_id: str, at: int, events: list[DerivedEvent]
) -> bool:
    participant_id = session.owner_of(connection_id) or person.participant_id or connection_id
    session.video_part()  # its participants hold connections
    participant = session.video_participant(participant_id)
    if participant is None:
        participant = _added(session, participant_id, person)
    connections = participant.video_part().connections
    connection = connections.get(connection_id)
    if connection is not None and connection.opened_at is not None:
        return False  # a retry: this connection opened already (and may have closed since)
    was_present = participant.open_connections() > 0
    session.touch(participant)
    if connection is None:
        connection = connections[connection_id] = Connection(opened_at=at)
        session.own(connection_id, participant_id)
    else:
        connection.opened_at = at  # its close was held: both ends are known now
    video = session.video_part()
    if connection.closed_at is None and session.closed_at is None:
        video.open_connections += 1
        video.emptied_at = None
    if was_present:
        return True  # another connection of a person already present
    if connection.closed_at is not None:
        # Opened and closed, in the wrong order: a stint of the connection's length (a
        # fresh one when the person's last stint had ended before).
        if participant.joined_at is None or participant.left_at is not None:
            if participant.joined_at is None:
                _begin(
                    session,
                    participant_id,
                    participant,
                    person,
                    at,
                    events,
                    held_left_at=connection.closed_at,
                )
            else:
                _start_stint(participant, at)
                _begin_closed(session, participant_id, participant, person, at, connection, events)
        return True
    _begin(session, participant_id, participant, person, at, events)
    return True


def _begin_closed(
    session: Session,
    participant_id: str,
    participant: Participant,
    person: Person,
    at: int,
    connection: Connection,
    events: list[DerivedEvent],
) -> None:
    """A person whose earlier stint had ended gets a stint for a connection whose close was
    seen before its open: both of its events go out at once."""
    closed_at = connection.closed_at
    assert closed_at is not None
    session.total_joins += 1
    participant.joined_at = at
    participant.left_at = max(at, closed_at)
    events.append(
        derived.participant_joined(
            session, participant_id, participant, joined_at=at, connection_id=person.connection_id
        )
    )
    events.append(
        derived.participant_left(
            session,
            participant_id,
            participant,
            left_at=participant.left_at,
            reason="left",
            connection_id=person.connection_id,
        )
    )


def _connection_closed(
    session: Session,
    person: Person,
    connection_id: str,
    fact: Departed,
    events: list[DerivedEvent],
) -> bool:
    at = fact.at
    participant_id = session.owner_of(connection_id) or person.participant_id or connection_id
    session.video_part()  # its participants hold connections
    participant = session.video_participant(participant_id)
    if participant is None:
        participant = _added(session, participant_id, person)
    connections = participant.video_part().connections
    connection = connections.get(connection_id)
    if connection is None:
        # Closed before it was seen opening: held until its open arrives.
        connections[connection_id] = Connection(closed_at=at)
        session.own(connection_id, participant_id)
        session.touch(participant)
        if participant.joined_at is None:
            participant.left_at = at
        return True
    if connection.closed_at is not None or connection.opened_at is None:
        return False  # a retry
    connection.closed_at = at
    session.touch(participant)
    video = session.video_part()
    if video.last_closed_at is None or at > video.last_closed_at:
        video.last_closed_at = at
    if session.closed_at is None:
        video.open_connections -= 1
        if not video.open_connections:
            # Empty since the latest close of any connection (closes arrive in any order).
            video.emptied_at = video.last_closed_at
    end_streams_of_connection(
        session, participant_id, participant, connection_id, at, fact.reason, events
    )
    if participant.open_connections() or participant.joined_at is None:
        return True  # the person is still here through another connection
    if participant.left_at is not None and session.closed_at is None:
        return True  # the live stint had ended already
    _end(session, participant_id, participant, at, events, connection_id, fact.reason)
    return True


def _start_stint(participant: Participant, at: int) -> None:
    if participant.joined_at is not None and participant.left_at is not None:
        if participant.earlier is None:
            participant.earlier = []
        participant.earlier += (participant.joined_at, participant.left_at)
    participant.joined_at = at
    participant.left_at = None
