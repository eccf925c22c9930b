"""Deterministic event ids."""

from __future__ import annotations

import re
from datetime import UTC, datetime

from processor.engine import event_id, room_expired_event
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
