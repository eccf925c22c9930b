"""Vonage Video callbacks for engine tests, as the wire bodies ingest stores, and a player that
applies them the way the runtime does (decoded, adapted into facts, applied).

Times are epoch ms offsets from ``T0``.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import msgspec

from processor.engine import Session, all_records, apply, restore_sessions, snapshot
from processor.sources import CallbackReader, ParticipantKey
from schemas.decoding import DecodeFailure
from schemas.events import (
    DerivedEvent,
    ParticipantAttendanceEvent,
    SessionEndedEvent,
)
from schemas.sources import VIDEO_ARCHIVES_ROUTE, VIDEO_SESSIONS_ROUTE
from schemas.state import SessionState

SESSION_ID = "2_MX4xMzExMjU3MX5-MTQ3MDI1NzY3OTkxOH45QXRr"
PROJECT_ID = "123456"
T0 = 1_470_257_688_000

Delivery = tuple[bytes, bytes]
"""A callback body and the route it arrived on."""


def _body(fields: dict[str, Any]) -> bytes:
    return msgspec.json.encode({"sessionId": SESSION_ID, "projectId": PROJECT_ID, **fields})


def _connection(connection_id: str, data: str | None) -> dict[str, Any]:
    connection: dict[str, Any] = {"id": connection_id, "createdAt": T0}
    if data is not None:
        connection["data"] = data
    return connection


def person(user: str, name: str | None = None) -> str:
    """Token data naming a person (for ``VIDEO_PARTICIPANT_KEY=data.userId``)."""
    return msgspec.json.encode({"userId": user, "name": name or user.title()}).decode()


def session_created(t: int) -> Delivery:
    return _body({"event": "sessionCreated", "timestamp": T0 + t}), VIDEO_SESSIONS_ROUTE.encode()


def session_destroyed(t: int, reason: str = "clientDisconnected") -> Delivery:
    body = _body({"event": "sessionDestroyed", "timestamp": T0 + t, "reason": reason})
    return body, VIDEO_SESSIONS_ROUTE.encode()


def connected(t: int, connection_id: str, data: str | None = "") -> Delivery:
    body = _body(
        {
            "event": "connectionCreated",
            "timestamp": T0 + t,
            "connection": _connection(connection_id, data),
        }
    )
    return body, VIDEO_SESSIONS_ROUTE.encode()


def disconnected(
    t: int, connection_id: str, reason: str = "clientDisconnected", data: str | None = ""
) -> Delivery:
    body = _body(
        {
            "event": "connectionDestroyed",
            "timestamp": T0 + t,
            "reason": reason,
            "connection": _connection(connection_id, data),
        }
    )
    return body, VIDEO_SESSIONS_ROUTE.encode()


def _stream(stream_id: str, connection_id: str, video_type: str | None, created: int) -> Any:
    stream: dict[str, Any] = {
        "id": stream_id,
        "connection": _connection(connection_id, ""),
        "createdAt": T0 + created,
        "name": "",
    }
    if video_type is not None:
        stream["videoType"] = video_type
    return stream


def stream_created(t: int, stream_id: str, connection_id: str, video_type: str | None) -> Delivery:
    body = _body(
        {
            "event": "streamCreated",
            "timestamp": T0 + t,
            "stream": _stream(stream_id, connection_id, video_type, t),
        }
    )
    return body, VIDEO_SESSIONS_ROUTE.encode()


def stream_destroyed(
    t: int,
    stream_id: str,
    connection_id: str,
    video_type: str | None,
    *,
    created: int,
    reason: str = "clientDisconnected",
) -> Delivery:
    body = _body(
        {
            "event": "streamDestroyed",
            "timestamp": T0 + t,
            "reason": reason,
            "stream": _stream(stream_id, connection_id, video_type, created),
        }
    )
    return body, VIDEO_SESSIONS_ROUTE.encode()


def archive(t: int, archive_id: str, status: str, **fields: Any) -> Delivery:
    body = msgspec.json.encode(
        {
            "id": archive_id,
            "event": "archive",
            "sessionId": SESSION_ID,
            "applicationId": PROJECT_ID,
            "projectId": int(PROJECT_ID),
            "partnerId": int(PROJECT_ID),
            "createdAt": T0,
            "updatedAt": T0 + t,
            "status": status,
            "duration": 0,
            "size": 0,
            "url": None,
            "reason": "",
            "outputMode": "composed",
            **fields,
        }
    )
    return body, VIDEO_ARCHIVES_ROUTE.encode()


@dataclass
class VideoPlayer:
    """Applies deliveries as the runtime does, keeping the session and what was emitted."""

    key: ParticipantKey = field(default_factory=ParticipantKey)
    session: Session | None = None
    events: list[DerivedEvent] = field(default_factory=list)
    received: int = T0

    def play(self, deliveries: Iterable[Delivery]) -> VideoPlayer:
        reader = CallbackReader(self.key)
        for body, route in deliveries:
            self.received += 1
            facts = reader.read(body, route, self.received)
            assert not isinstance(facts, DecodeFailure), facts
            assert isinstance(facts, list)
            if facts:
                applied = apply(self.session, facts, self.received)
                self.session = applied.session
                self.events.extend(applied.events)
        return self

    @property
    def current(self) -> Session:
        assert self.session is not None
        return self.session

    def state(self) -> SessionState:
        return snapshot(self.current)

    def of_type(self, type_name: str) -> list[Any]:
        return [event for event in self.events if _type(event) == type_name]

    def final_summary(self) -> SessionEndedEvent:
        ended = [event for event in self.events if isinstance(event, SessionEndedEvent)]
        assert ended, "the session has not ended"
        return ended[-1]

    def final_attendance(self) -> dict[str, ParticipantAttendanceEvent]:
        revision = self.final_summary().summary.revision
        return {
            event.participant_id: event
            for event in self.events
            if isinstance(event, ParticipantAttendanceEvent) and event.revision == revision
        }

    def restarted(self) -> VideoPlayer:
        """The same player after a restore of its session from the changelog records."""
        (restored,) = restore_sessions(
            (key, value) for key, value in all_records(self.current) if value is not None
        )
        return VideoPlayer(self.key, restored, list(self.events), self.received)


def _type(event: DerivedEvent) -> str:
    return str(type(event).__struct_config__.tag)
