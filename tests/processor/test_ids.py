"""Deterministic event ids."""

from __future__ import annotations

import ast
import re
from datetime import UTC, datetime
from pathlib import Path

from processor.engine import derived, event_id, room_expired_event
from processor.engine.derived import participant_joined
from processor.engine.session import Session, VideoSession
from schemas.callbacks import RoomExpiredCallback
from schemas.events import SessionEndedEvent
from tests.processor.builders import (
    SESSION_ID,
    joined,
    left,
    recording_started,
    replay,
    session_ended,
    session_started,
)

MEETING = [
    session_started(0),
    joined("alice", 1_000),
    recording_started("rec-1", 2_000),
    left("alice", 3_000),
    session_ended(0, 4_000),
]


def test_an_event_id_is_32_hex_characters_and_depends_only_on_its_parts() -> None:
    identifier = event_id("participant.joined", SESSION_ID, "alice")
    assert re.fullmatch(r"[0-9a-f]{32}", identifier)
    assert identifier == event_id("participant.joined", SESSION_ID, "alice")
    assert identifier != event_id("participant.left", SESSION_ID, "alice")
    assert identifier != event_id("participant.joined", SESSION_ID, "bob")


def test_separators_inside_ids_cannot_make_two_identities_collide() -> None:
    assert event_id("participant.joined", "a|b", "c") != event_id("participant.joined", "a", "b|c")


def test_replaying_a_meeting_yields_the_same_ids() -> None:
    first = [event.event_id for event in replay(MEETING).events]
    second = [event.event_id for event in replay(MEETING).events]
    assert first == second
    assert len(set(first)) == len(first)


def test_a_summary_revision_has_its_own_id() -> None:
    fed = replay(MEETING)
    fed.feed([joined("bob", 3_500)])
    first, second = fed.of_type(SessionEndedEvent)
    assert (first.summary.revision, second.summary.revision) == (1, 2)
    assert first.event_id == event_id("session.ended", SESSION_ID, 1)
    assert second.event_id == event_id("session.ended", SESSION_ID, 2)


def test_room_expired_is_deterministic() -> None:
    callback = RoomExpiredCallback(
        room_id="b307d837-c0ce-4619-8c5c-70e418ef9693",
        room_type="instant",
        expires_at=datetime(2021, 11, 2, 16, 0, tzinfo=UTC),
        created_at=datetime(2021, 11, 2, 15, 0, tzinfo=UTC),
    )
    event = room_expired_event(callback)
    assert event == room_expired_event(callback)
    assert event.event_id == event_id("room.expired", callback.room_id, event.expires_at)
    assert (event.occurred_at, event.expires_at) == ("2021-11-02T16:00:00.000Z",) * 2
    assert (event.session_id, event.room_type) == (None, "instant")
    assert event.created_at == "2021-11-02T15:00:00.000Z"


def test_video_event_ids_name_the_source_and_the_instance() -> None:
    """A Video event's id is that of its type, ``"video"``, the session id, the instance's
    number and opening time, then its own parts (so an id reused by the next instance is not)."""
    session = Session(
        session_id=SESSION_ID,
        room_id=None,
        last_event_at=1_000,
        video=VideoSession(tenant_id="t", instance=2, opened_at=1_000),
    )
    participant = session.add_participant("alice", "Alice", False, None)
    participant.joined_at = 1_000
    event = participant_joined(session, "alice", participant, joined_at=1_000)
    assert event.event_id == event_id(
        "participant.joined", "video", SESSION_ID, 2, 1_000, "alice", 1
    )
    assert (event.source, event.tenant_id, event.instance) == ("video", "t", 2)


def test_event_builders_pass_at_most_15_keyword_arguments() -> None:
    """CPython compiles a call of more than 15 keyword arguments into a dict and a call through
    it: 2.4 times the cost of building an event this way, paid per callback."""
    path = Path(derived.__file__)
    crowded = [
        f"{path.name}:{node.lineno} {ast.unparse(node.func)}: {len(node.keywords)} keywords"
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
        if isinstance(node, ast.Call) and len(node.args) + 2 * len(node.keywords) > 30
    ]
    assert not crowded
