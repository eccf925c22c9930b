"""The raw Vonage Meetings callbacks the pipeline accepts (contract §2), as one tagged union.

Every callback is a flat JSON object whose ``event`` field names its kind. Each kind has one
canonical struct; the other spellings Vonage uses for the same kind are subclasses carrying only a
different tag, so ``isinstance``/``match`` on the canonical struct covers every spelling and the
whole union still decodes in one pass.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, ClassVar, get_args

import msgspec
from msgspec import Meta
from msgspec.structs import force_setattr

Identifier = Annotated[str, Meta(min_length=1, max_length=256)]
"""A room, session, participant or recording id: non-empty, bounded (it becomes a Kafka key)."""

Instant = Annotated[datetime, Meta(tz=True)]
"""An ISO-8601 timestamp with a zone (``Z`` in practice); normalised to UTC after decoding."""

Seconds = Annotated[float, Meta(ge=0)]
"""A duration in seconds; arrives as a number or a numeric string."""


def _times_to_utc(callback: BaseCallback) -> None:
    """``__post_init__`` of callbacks with timestamps: any zone offset becomes UTC."""
    for name in callback.time_fields:
        value: datetime | None = getattr(callback, name)
        if value is not None and value.tzinfo is not UTC:
            force_setattr(callback, name, value.astimezone(UTC))


class BaseCallback(msgspec.Struct, frozen=True, kw_only=True, tag_field="event"):
    """Fields and behaviour shared by every callback."""

    canonical_event: ClassVar[str]
    """The contract §2 name of this kind, whatever spelling the callback arrived with."""

    time_fields: ClassVar[tuple[str, ...]] = ()
    """Timestamp fields; structs that have any normalise them with ``_times_to_utc``."""

    @property
    def event_time(self) -> datetime | None:
        """The callback's own time (contract §2 "time field"), or ``None`` when it carries none."""
        return None


class RoomExpiredCallback(BaseCallback, frozen=True, kw_only=True, tag="room:expired"):
    canonical_event: ClassVar[str] = "room:expired"
    time_fields: ClassVar[tuple[str, ...]] = ("expires_at", "created_at")

    def __post_init__(self) -> None:
        _times_to_utc(self)

    room_id: Identifier
    room_type: str
    """``instant`` or ``long_term`` today; other values are kept, not rejected."""
    expires_at: Instant
    created_at: Instant | None = None

    @property
    def event_time(self) -> datetime:
        return self.expires_at


class SessionStartedCallback(BaseCallback, frozen=True, kw_only=True, tag="session:started"):
    canonical_event: ClassVar[str] = "session:started"
    time_fields: ClassVar[tuple[str, ...]] = ("started_at",)

    def __post_init__(self) -> None:
        _times_to_utc(self)

    session_id: Identifier
    room_id: Identifier
    started_at: Instant

    @property
    def event_time(self) -> datetime:
        return self.started_at


class SessionEndedCallback(BaseCallback, frozen=True, kw_only=True, tag="session:ended"):
    canonical_event: ClassVar[str] = "session:ended"
    time_fields: ClassVar[tuple[str, ...]] = ("started_at", "ended_at")

    def __post_init__(self) -> None:
        _times_to_utc(self)

    session_id: Identifier
    room_id: Identifier
    started_at: Instant
    ended_at: Instant

    @property
    def event_time(self) -> datetime:
        return self.ended_at


class _RecordingCallback(BaseCallback, frozen=True, kw_only=True):
    recording_id: Identifier
    session_id: Identifier
    room_id: Identifier | None = None
    """Often missing on recording callbacks; the session's state knows the room."""


class RecordingStartedCallback(
    _RecordingCallback, frozen=True, kw_only=True, tag="recording:started"
):
    canonical_event: ClassVar[str] = "recording:started"


class _FinishedRecordingCallback(_RecordingCallback, frozen=True, kw_only=True):
    """A recording that has stopped: it carries Vonage's times and its duration."""

    time_fields: ClassVar[tuple[str, ...]] = ("started_at", "ended_at")

    def __post_init__(self) -> None:
        _times_to_utc(self)

    started_at: Instant
    ended_at: Instant
    duration: Seconds

    @property
    def event_time(self) -> datetime:
        return self.ended_at


class RecordingEndedCallback(
    _FinishedRecordingCallback, frozen=True, kw_only=True, tag="recording:ended"
):
    canonical_event: ClassVar[str] = "recording:ended"


class RecordingReadyCallback(
    _FinishedRecordingCallback, frozen=True, kw_only=True, tag="recording:uploaded"
):
    """A recording is uploaded and ready to download."""

    canonical_event: ClassVar[str] = "recording:uploaded"

    url: Annotated[str, Meta(min_length=1)]


class RecordingReadyAliasCallback(
    RecordingReadyCallback, frozen=True, kw_only=True, tag="recording:ready"
):
    """``recording:ready``, another spelling of ``recording:uploaded``."""


class _ParticipantCallback(BaseCallback, frozen=True, kw_only=True):
    participant_id: Identifier
    session_id: Identifier
    room_id: Identifier
    name: str | None = None
    type: str | None = None
    """Participant type (e.g. ``Guest``); often missing."""
    is_host: bool = False


class ParticipantJoinedCallback(
    _ParticipantCallback, frozen=True, kw_only=True, tag="session:participant:joined"
):
    canonical_event: ClassVar[str] = "session:participant:joined"


class ParticipantJoinedShortCallback(
    ParticipantJoinedCallback, frozen=True, kw_only=True, tag="participant:joined"
):
    """``participant:joined``, another spelling."""


class ParticipantJoinedHyphenCallback(
    ParticipantJoinedCallback, frozen=True, kw_only=True, tag="participant-joined"
):
    """``participant-joined``, another spelling."""


class ParticipantLeftCallback(
    _ParticipantCallback, frozen=True, kw_only=True, tag="session:participant:left"
):
    canonical_event: ClassVar[str] = "session:participant:left"


class ParticipantLeftShortCallback(
    ParticipantLeftCallback, frozen=True, kw_only=True, tag="participant:left"
):
    """``participant:left``, another spelling."""


class ParticipantLeftHyphenCallback(
    ParticipantLeftCallback, frozen=True, kw_only=True, tag="participant-left"
):
    """``participant-left``, another spelling."""


Callback = (
    RoomExpiredCallback
    | SessionStartedCallback
    | SessionEndedCallback
    | RecordingStartedCallback
    | RecordingEndedCallback
    | RecordingReadyCallback
    | RecordingReadyAliasCallback
    | ParticipantJoinedCallback
    | ParticipantJoinedShortCallback
    | ParticipantJoinedHyphenCallback
    | ParticipantLeftCallback
    | ParticipantLeftShortCallback
    | ParticipantLeftHyphenCallback
)
"""Any accepted callback, in any accepted spelling."""

CALLBACK_TYPES: tuple[type[BaseCallback], ...] = get_args(Callback)
CANONICAL_TYPES: tuple[type[BaseCallback], ...] = (
    RoomExpiredCallback,
    SessionStartedCallback,
    SessionEndedCallback,
    RecordingStartedCallback,
    RecordingEndedCallback,
    RecordingReadyCallback,
    ParticipantJoinedCallback,
    ParticipantLeftCallback,
)

EVENT_SPELLINGS: dict[str, str] = {
    str(struct_type.__struct_config__.tag): struct_type.canonical_event
    for struct_type in CALLBACK_TYPES
}
"""Every accepted ``event`` value, mapped to its canonical contract §2 name."""
