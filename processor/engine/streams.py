"""Streams a participant publishes (Video ``streamCreated``/``streamDestroyed``; contract §7.5).

A stream belongs to the participant who opened its connection. It starts once (a retried
``streamCreated`` changes nothing) and ends once: by its own ``streamDestroyed``, or when its
connection or the session ends first, whichever is seen first — a ``streamDestroyed`` seen
after that still refines the end the summary's ``screen_share_s`` is measured with, so the
figure does not depend on the order the callbacks arrived in.
"""

from __future__ import annotations

from processor.engine import derived
from processor.engine.facts import Person, StreamBegan, StreamFinished
from processor.engine.session import Participant, Session, Stream, intern
from schemas.events import DerivedEvent


def record_stream_began(session: Session, fact: StreamBegan, events: list[DerivedEvent]) -> bool:
    participant_id, participant = _publisher(session, fact.person)
    streams = participant.video_part().streams
    stream = streams.get(fact.stream_id)
    if stream is not None and stream.started_at is not None:
        return False  # a retry
    session.touch(participant)
    connection_id = participant.video_part().kept_connection_id(fact.person.connection_id or "")
    if stream is None:
        stream = streams[fact.stream_id] = Stream(connection_id, intern(fact.video_type))
    stream.started_at = fact.at
    events.append(
        derived.stream_started(session, fact.stream_id, participant_id, stream, started_at=fact.at)
    )
    if stream.ended_at is not None:
        # Its end arrived first: both of its events have gone out now.
        stream.ended_at = max(stream.ended_at, fact.at)
        events.append(derived.stream_ended(session, fact.stream_id, participant_id, stream))
        return True
    ended_by = _end_already_known(session, participant, connection_id)
    if ended_by is not None:
        stream.ended_at = max(ended_by, fact.at)
        events.append(derived.stream_ended(session, fact.stream_id, participant_id, stream))
        return True
    session.video_part().open_streams += 1
    return True


def record_stream_finished(
    session: Session, fact: StreamFinished, events: list[DerivedEvent]
) -> bool:
    participant_id, participant = _publisher(session, fact.person)
    streams = participant.video_part().streams
    stream = streams.get(fact.stream_id)
    if stream is None:
        # Ended before it was seen starting: its start is the callback's own creation time
        # when it carries one, else it is held until its streamCreated arrives.
        stream = streams[fact.stream_id] = Stream(
            participant.video_part().kept_connection_id(fact.person.connection_id or ""),
            intern(fact.video_type),
            ended_at=fact.at,
            reason=fact.reason,
        )
        stream.own_end = True
        session.touch(participant)
        if fact.began_at is not None:
            stream.started_at = min(fact.began_at, fact.at)
            events.append(
                derived.stream_started(
                    session, fact.stream_id, participant_id, stream, started_at=stream.started_at
                )
            )
            events.append(derived.stream_ended(session, fact.stream_id, participant_id, stream))
        return True
    if stream.own_end:
        return False  # a retry
    session.touch(participant)
    stream.own_end = True
    stream.reason = fact.reason
    if stream.ended_at is not None:
        stream.ended_at = fact.at  # its connection or the session ended it: the real end
        return True
    stream.ended_at = fact.at
    if stream.started_at is not None:
        if session.closed_at is None:
            session.video_part().open_streams -= 1
        events.append(derived.stream_ended(session, fact.stream_id, participant_id, stream))
    return True


def end_streams_of_connection(
    session: Session,
    participant_id: str,
    participant: Participant,
    connection_id: str,
    at: int,
    reason: str | None,
    events: list[DerivedEvent],
) -> None:
    """The connection closed at ``at``: its streams still open end with it, and those the
    session's end had ended (its close arriving late) end when it closed instead."""
    streams = participant.streams
    if not streams:
        return
    for stream_id, stream in streams.items():
        if stream.connection_id != connection_id or stream.own_end or stream.started_at is None:
            continue
        end = max(at, stream.started_at)
        if stream.ended_at is None:
            stream.ended_at = end
            stream.reason = reason
            if session.closed_at is None:
                session.video_part().open_streams -= 1
            events.append(derived.stream_ended(session, stream_id, participant_id, stream))
        elif end < stream.ended_at:
            stream.ended_at = end
            stream.reason = reason


def end_all_streams(session: Session, events: list[DerivedEvent]) -> None:
    """The session closed: every stream still open ends with it."""
    closed_at = session.closed_at
    video = session.video
    if video is None:
        return
    if closed_at is None or not video.open_streams:
        video.open_streams = 0
        return
    for participant_id, participant in session.participants.items():
        streams = participant.streams
        if not streams:
            continue
        for stream_id, stream in streams.items():
            if stream.open:
                stream.ended_at = max(closed_at, stream.started_at or closed_at)
                session.touch(participant)
                events.append(derived.stream_ended(session, stream_id, participant_id, stream))
    video.open_streams = 0


def _publisher(session: Session, person: Person) -> tuple[str, Participant]:
    connection_id = person.connection_id
    participant_id = (
        (session.owner_of(connection_id) if connection_id is not None else None)
        or person.participant_id
        or connection_id
    )
    if participant_id is None:
        raise ValueError("a stream names its publisher's participant or connection")
    session.video_part()  # its participants hold streams
    participant = session.video_participant(participant_id)
    if participant is None:
        participant = session.add_participant(
            participant_id, person.name, person.is_host, person.participant_type
        )
        session.touch(participant)
    if connection_id is not None and session.owner_of(connection_id) is None:
        session.own(connection_id, participant_id)  # its connectionCreated is still to come
    return participant_id, participant


def _end_already_known(
    session: Session, participant: Participant, connection_id: str
) -> int | None:
    """When a stream starting now has already been ended: by its connection's close, or by
    the session's end."""
    connections = participant.connections
    connection = None if connections is None else connections.get(connection_id)
    if connection is not None and connection.closed_at is not None:
        return connection.closed_at
    return session.closed_at
