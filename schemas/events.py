"""Derived events the processor publishes (contract §4), as one tagged union on ``type``.

Downstream services decode these, never the raw callbacks. Evolution rule: new fields get
defaults; no field is ever renamed or retyped.
"""

from __future__ import annotations

from typing import Literal, get_args

import msgspec

from schemas.timestamps import Timestamp

SCHEMA_VERSION = 1

EndedBy = Literal["callback", "timeout", "empty"]
"""``empty``: a Video session left without an open connection for ``VIDEO_EMPTY_SESSION_END_S``."""
LeftReason = Literal["left", "session_ended", "timeout"]
Source = Literal["meetings", "video"]
"""Which platform's callbacks an event was derived from (contract §7.3)."""
VideoType = Literal["camera", "screen", "custom"]
RecordingStorage = Literal["external", "vonage"]
"""Where a ready recording is: the customer's own bucket, or Vonage's cloud (for a while)."""


class DerivedEvent(msgspec.Struct, frozen=True, kw_only=True, tag_field="type"):
    """Fields every derived event has."""

    event_id: str
    """Deterministic: the same input always yields the same id, so consumers can de-duplicate."""
    occurred_at: Timestamp
    """Event time of what happened."""
    session_id: str | None
    room_id: str | None
    schema_version: int = SCHEMA_VERSION
    source: Source = "meetings"
    tenant_id: str | None = None
    """The Video tenant (``applicationId``/``projectId``/``partnerId``); ``None`` for Meetings."""


class _SessionKeyedEvent(DerivedEvent, frozen=True, kw_only=True):
    instance: int = 1
    """Which use of the session id (a Video session id can be reused after it ended: 1, 2, ...);
    always 1 for Meetings."""


class SessionStartedEvent(_SessionKeyedEvent, frozen=True, kw_only=True, tag="session.started"):
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
    screen_share_s: float = 0.0
    """Sum of the screen-sharing streams' lengths (Video; 0 for Meetings)."""
    end_reason: str | None = None
    """The ``reason`` of the Video ``sessionDestroyed`` that ended the session, if any."""


class SessionEndedEvent(_SessionKeyedEvent, frozen=True, kw_only=True, tag="session.ended"):
    summary: SessionSummary


class _ParticipantEvent(_SessionKeyedEvent, frozen=True, kw_only=True):
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
    connection_id: str | None = None
    """The Video connection that opened the stint; ``None`` for Meetings."""


class ParticipantLeftEvent(_ParticipantEvent, frozen=True, kw_only=True, tag="participant.left"):
    joined_at: Timestamp | None
    """When the stint began; always set since stints exist (``None`` only in old events)."""
    left_at: Timestamp
    duration_s: float | None
    """The stint's length in seconds (``None`` only in old events)."""
    left_reason: LeftReason
    stint: int = 1
    """Which stint ends; the same number as its ``participant.joined``."""
    connection_id: str | None = None
    """The Video connection whose end closed the stint; ``None`` for Meetings."""
    disconnect_reason: str | None = None
    """The Video ``connectionDestroyed`` reason (``clientDisconnected``...), when one closed
    the stint."""


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
    screen_share_s: float = 0.0
    """Sum of the lengths of this participant's screen-sharing streams (Video)."""


class _StreamEvent(_SessionKeyedEvent, frozen=True, kw_only=True):
    session_id: str
    stream_id: str
    participant_id: str
    connection_id: str
    video_type: VideoType | None
    """``None`` for an audio-only stream (or a type this version does not know)."""
    started_at: Timestamp


class StreamStartedEvent(_StreamEvent, frozen=True, kw_only=True, tag="stream.started"):
    """A Video participant started publishing a stream (camera, screen share...)."""


class StreamEndedEvent(_StreamEvent, frozen=True, kw_only=True, tag="stream.ended"):
    """A stream ended: its own ``streamDestroyed``, or its connection or session ending."""

    ended_at: Timestamp
    duration_s: float
    reason: str | None
    """The ``streamDestroyed`` reason (``mediaStopped``...), else the connection's, else
    ``None`` when the session's end closed it."""


class _RecordingEvent(_SessionKeyedEvent, frozen=True, kw_only=True):
    session_id: str
    recording_id: str


class RecordingStartedEvent(_RecordingEvent, frozen=True, kw_only=True, tag="recording.started"):
    started_at: Timestamp


class RecordingPausedEvent(_RecordingEvent, frozen=True, kw_only=True, tag="recording.paused"):
    """A Video archive paused (nobody publishing); it may resume."""

    paused_at: Timestamp


class RecordingResumedEvent(_RecordingEvent, frozen=True, kw_only=True, tag="recording.resumed"):
    """A paused Video archive records again."""

    resumed_at: Timestamp


class RecordingEndedEvent(_RecordingEvent, frozen=True, kw_only=True, tag="recording.ended"):
    started_at: Timestamp
    ended_at: Timestamp
    duration_s: float
    reason: str | None = None
    """Why a Video archive stopped (``user initiated``, ``maximum duration exceeded``...)."""


class RecordingReadyEvent(_RecordingEvent, frozen=True, kw_only=True, tag="recording.ready"):
    started_at: Timestamp
    ended_at: Timestamp
    duration_s: float
    url: str
    """Where to download it; empty for ``storage: external`` (the file is in the customer's
    own bucket, which Vonage does not name)."""
    storage: RecordingStorage | None = None
    """Video: ``external`` (uploaded to the customer's bucket) or ``vonage`` (available from
    ``url`` until ``url_expires_at``); ``None`` for Meetings."""
    url_expires_at: Timestamp | None = None
    """When a ``vonage`` URL stops working (10 minutes after it was issued)."""
    size_bytes: int | None = None
    output_mode: str | None = None
    """``composed`` or ``individual`` (Video)."""


class RecordingFailedEvent(_RecordingEvent, frozen=True, kw_only=True, tag="recording.failed"):
    failed_at: Timestamp
    reason: str | None


class RecordingExpiredEvent(_RecordingEvent, frozen=True, kw_only=True, tag="recording.expired"):
    """A Video archive is no longer downloadable from Vonage's cloud."""

    expired_at: Timestamp


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
    | StreamStartedEvent
    | StreamEndedEvent
    | RecordingStartedEvent
    | RecordingPausedEvent
    | RecordingResumedEvent
    | RecordingEndedEvent
    | RecordingReadyEvent
    | RecordingFailedEvent
    | RecordingExpiredEvent
    | RoomExpiredEvent
)
"""Any derived event; decode with ``schemas.codec.decode_event``."""

DERIVED_EVENT_TYPES: tuple[type[DerivedEvent], ...] = get_args(AnyDerivedEvent)


def event_type_name(event_type: type[DerivedEvent]) -> str:
    """The ``type`` value of a derived event struct (``session.started``, ...)."""
    return str(event_type.__struct_config__.tag)
