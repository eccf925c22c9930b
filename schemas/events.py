"""Derived events the processor publishes (SPEC §4), as one tagged union on ``type``.

Downstream services decode these, never the raw callbacks. Evolution rule: new fields get
defaults; no field is ever renamed or retyped.
"""

from __future__ import annotations

from typing import Literal, get_args

import msgspec

from schemas.timestamps import Timestamp

SCHEMA_VERSION = 1

EndedBy = Literal["callback", "timeout"]
LeftReason = Literal["left", "session_ended", "timeout"]


class DerivedEvent(msgspec.Struct, frozen=True, kw_only=True, tag_field="type"):
    """Fields every derived event has."""

    event_id: str
    """Deterministic: the same input always yields the same id, so consumers can de-duplicate."""
    occurred_at: Timestamp
    """Event time of what happened."""
    session_id: str | None
    room_id: str | None
    schema_version: int = SCHEMA_VERSION


class SessionStartedEvent(DerivedEvent, frozen=True, kw_only=True, tag="session.started"):
    started_at: Timestamp


class SessionSummary(msgspec.Struct, frozen=True, kw_only=True):
    """What a finished session amounted to."""

    started_at: Timestamp | None
    """``None`` when the session's start was never seen."""
    ended_at: Timestamp
    duration_s: float
    unique_participants: int
    peak_concurrency: int
    total_joins: int
    participant_seconds: float
    """Sum of every participant's attendance."""
    recordings: int
    recorded_seconds: float
    ended_by: EndedBy
    revision: int
    """1 for the first summary; a later correction of the same session has a higher revision."""


class SessionEndedEvent(DerivedEvent, frozen=True, kw_only=True, tag="session.ended"):
    summary: SessionSummary


class _ParticipantEvent(DerivedEvent, frozen=True, kw_only=True):
    session_id: str
    participant_id: str
    name: str | None
    is_host: bool
    participant_type: str | None = None
    """The callback's ``type`` (e.g. ``Guest``), when it had one."""


class ParticipantJoinedEvent(
    _ParticipantEvent, frozen=True, kw_only=True, tag="participant.joined"
):
    joined_at: Timestamp
    stint: int = 1
    """Which of this participant's stints in the session begins (1, 2, ...): a participant
    who leaves and comes back has one stint per return."""


class ParticipantLeftEvent(_ParticipantEvent, frozen=True, kw_only=True, tag="participant.left"):
    joined_at: Timestamp | None
    """When the stint began; always set since stints exist (``None`` only in old events)."""
    left_at: Timestamp
    duration_s: float | None
    """The stint's length in seconds (``None`` only in old events)."""
    left_reason: LeftReason
    stint: int = 1
    """Which stint ends; the same number as its ``participant.joined``."""


class ParticipantAttendanceEvent(
    _ParticipantEvent, frozen=True, kw_only=True, tag="participant.attendance"
):
    """One participant id's attendance report, published with every ``session.ended``."""

    stints: int
    """How many times the participant was present (joins that started a stint)."""
    attended_s: float
    """Sum of the lengths of its stints, each clamped into the session."""
    first_joined_at: Timestamp | None
    """Start of its first stint; ``None`` when only a ``left`` of it was seen."""
    last_left_at: Timestamp | None
    """End of its last stint (its ``left``, or the session's end); ``None`` without stints."""
    revision: int
    """The ``revision`` of the ``session.ended`` summary this report belongs to."""


class _RecordingEvent(DerivedEvent, frozen=True, kw_only=True):
    session_id: str
    recording_id: str


class RecordingStartedEvent(_RecordingEvent, frozen=True, kw_only=True, tag="recording.started"):
    started_at: Timestamp


class RecordingEndedEvent(_RecordingEvent, frozen=True, kw_only=True, tag="recording.ended"):
    started_at: Timestamp
    ended_at: Timestamp
    duration_s: float


class RecordingReadyEvent(_RecordingEvent, frozen=True, kw_only=True, tag="recording.ready"):
    started_at: Timestamp
    ended_at: Timestamp
    duration_s: float
    url: str


class RoomExpiredEvent(DerivedEvent, frozen=True, kw_only=True, tag="room.expired"):
    room_id: str
    room_type: str
    expires_at: Timestamp
    created_at: Timestamp | None = None


AnyDerivedEvent = (
    SessionStartedEvent
    | SessionEndedEvent
    | ParticipantJoinedEvent
    | ParticipantLeftEvent
    | ParticipantAttendanceEvent
    | RecordingStartedEvent
    | RecordingEndedEvent
    | RecordingReadyEvent
    | RoomExpiredEvent
)
"""Any derived event; decode with ``schemas.codec.decode_event``."""

DERIVED_EVENT_TYPES: tuple[type[DerivedEvent], ...] = get_args(AnyDerivedEvent)


def event_type_name(event_type: type[DerivedEvent]) -> str:
    """The ``type`` value of a derived event struct (``session.started``, ...)."""
    return str(event_type.__struct_config__.tag)
