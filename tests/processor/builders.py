"""Concise callbacks for engine tests, and a replayer that collects what the engine emits.

Times are epoch ms offsets from ``T0`` (a fixed instant), so tests read as timelines.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TypeVar

from processor.engine import Session, all_records, restore_sessions
from processor.sources.meetings import SessionCallback, apply_callback
from schemas.callbacks import (
    ParticipantJoinedCallback,
    ParticipantLeftCallback,
    RecordingEndedCallback,
    RecordingReadyCallback,
    RecordingStartedCallback,
    SessionEndedCallback,
    SessionStartedCallback,
)
from schemas.events import DerivedEvent, SessionEndedEvent, SessionSummary
from schemas.timestamps import format_epoch_ms, from_epoch_ms

SESSION_ID = "2_MX40NjMzOTg5Mn5-MTYzNTg2ODQwODY4NH41cXIzMDdSa1BZa05BUDFpYnhxcTV4MCt-fg"
ROOM_ID = "b307d837-c0ce-4619-8c5c-70e418ef9693"
T0 = 1_635_868_408_000
"""2021-11-02T15:53:28.000Z"""

EventT = TypeVar("EventT", bound=DerivedEvent)

Delivery = tuple[SessionCallback, int]
"""A callback and its receive time (the raw record's timestamp), in epoch ms."""


def at(offset_ms: int) -> str:
    """The published timestamp of ``T0 + offset_ms``."""
    return format_epoch_ms(T0 + offset_ms)


def session_started(started: int, *, received: int | None = None) -> Delivery:
    callback = SessionStartedCallback(
        session_id=SESSION_ID, room_id=ROOM_ID, started_at=from_epoch_ms(T0 + started)
    )
    return callback, T0 + (started if received is None else received)


def session_ended(started: int, ended: int, *, received: int | None = None) -> Delivery:
    callback = SessionEndedCallback(
        session_id=SESSION_ID,
        room_id=ROOM_ID,
        started_at=from_epoch_ms(T0 + started),
        ended_at=from_epoch_ms(T0 + ended),
    )
    return callback, T0 + (ended if received is None else received)


def joined(
    participant_id: str,
    received: int,
    *,
    name: str | None = None,
    is_host: bool = False,
    spelling: type[ParticipantJoinedCallback] = ParticipantJoinedCallback,
) -> Delivery:
    callback = spelling(
        participant_id=participant_id,
        session_id=SESSION_ID,
        room_id=ROOM_ID,
        name=name if name is not None else participant_id.title(),
        is_host=is_host,
        type="Guest",
    )
    return callback, T0 + received


def left(
    participant_id: str,
    received: int,
    *,
    spelling: type[ParticipantLeftCallback] = ParticipantLeftCallback,
) -> Delivery:
    callback = spelling(
        participant_id=participant_id,
        session_id=SESSION_ID,
        room_id=ROOM_ID,
        name=participant_id.title(),
        is_host=False,
        type="Guest",
    )
    return callback, T0 + received


def recording_started(recording_id: str, received: int) -> Delivery:
    callback = RecordingStartedCallback(recording_id=recording_id, session_id=SESSION_ID)
    return callback, T0 + received


def recording_ended(recording_id: str, started: int, ended: int, *, received: int) -> Delivery:
    callback = RecordingEndedCallback(
        recording_id=recording_id,
        session_id=SESSION_ID,
        started_at=from_epoch_ms(T0 + started),
        ended_at=from_epoch_ms(T0 + ended),
        duration=(ended - started) / 1000,
    )
    return callback, T0 + received


def recording_ready(
    recording_id: str,
    started: int,
    ended: int,
    *,
    received: int,
    spelling: type[RecordingReadyCallback] = RecordingReadyCallback,
) -> Delivery:
    callback = spelling(
        recording_id=recording_id,
        session_id=SESSION_ID,
        started_at=from_epoch_ms(T0 + started),
        ended_at=from_epoch_ms(T0 + ended),
        duration=(ended - started) / 1000,
        url=f"https://example.com/recordings/{recording_id}.mp4",
    )
    return callback, T0 + received


@dataclass
class Replay:
    """A session fed callback by callback, remembering everything it emitted."""

    session: Session | None = None
    events: list[DerivedEvent] = field(default_factory=list)

    def feed(self, deliveries: Iterable[Delivery]) -> list[DerivedEvent]:
        """Apply each delivery in order; returns the events emitted by these deliveries."""
        emitted: list[DerivedEvent] = []
        for callback, received_at_ms in deliveries:
            applied = apply_callback(self.session, callback, received_at_ms)
            self.session = applied.session
            emitted.extend(applied.events)
        self.events.extend(emitted)
        return emitted

    @property
    def current(self) -> Session:
        assert self.session is not None, "nothing was fed yet"
        return self.session

    def of_type(self, event_type: type[EventT]) -> list[EventT]:
        return [event for event in self.events if isinstance(event, event_type)]

    @property
    def final_summary(self) -> SessionSummary | None:
        ended = self.of_type(SessionEndedEvent)
        return ended[-1].summary if ended else None


def replay(deliveries: Iterable[Delivery]) -> Replay:
    fed = Replay()
    fed.feed(deliveries)
    return fed


def through_the_changelog(session: Session) -> Session:
    """Every changelog record of the session, read back: what a restore after a rebalance or
    restart does. The original is left as it was."""
    records = all_records(copy.deepcopy(session))
    [restored] = restore_sessions(
        (key, value) for key, value in dict(records).items() if value is not None
    )
    return restored
