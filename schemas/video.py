"""The raw Vonage Video API callbacks the pipeline accepts (contract §7), as one tagged union.

Session monitoring (``POST /video/sessions``) sends one flat camelCase object per session,
connection and stream event; archive status (``POST /video/archives``) sends ``"event":
"archive"`` with a ``status``. Times are epoch milliseconds. The structs are lenient where Vonage
is: unknown fields are ignored, ``videoType`` and ``connection.data`` may be absent, ``size``
may be a numeric string, archive statuses are kept as text (unknown ones included), and the
tenant is whichever of ``applicationId``, ``projectId``, ``partnerId`` is present.

Attribute names are the snake_case of the wire names (``session_id`` is ``sessionId``).
"""

from __future__ import annotations

from typing import Annotated, ClassVar, get_args

import msgspec
from msgspec import Meta

Identifier = Annotated[str, Meta(min_length=1, max_length=256)]
"""A session, connection, stream or archive id: non-empty and bounded (it becomes a key)."""

EpochMillis = Annotated[int, Meta(ge=0)]
"""Milliseconds since the Unix epoch."""

Tenant = int | str
"""A tenant id: a string on session events, a number (or a string) on archives."""


class VideoConnection(msgspec.Struct, frozen=True, kw_only=True, rename="camel"):
    id: Identifier
    created_at: EpochMillis | None = None
    data: str | None = None
    """The token data the application chose; need not repeat on destroyed events."""


class VideoStream(msgspec.Struct, frozen=True, kw_only=True, rename="camel"):
    id: Identifier
    connection: VideoConnection
    created_at: EpochMillis | None = None
    name: str | None = None
    video_type: str | None = None
    """``camera``, ``screen``, ``custom``; absent for an audio-only stream."""


class BaseVideoCallback(
    msgspec.Struct, frozen=True, kw_only=True, tag_field="event", rename="camel"
):
    """Fields and behaviour shared by every Video callback."""

    canonical_event: ClassVar[str]

    session_id: Identifier
    project_id: Tenant | None = None
    application_id: Tenant | None = None
    partner_id: Tenant | None = None

    @property
    def tenant_id(self) -> str | None:
        """The one tenant id, whichever name carried it (contract §7.3), as a string."""
        for value in (self.application_id, self.project_id, self.partner_id):
            if value is not None:
                return str(value)
        return None

    @property
    def event_time_ms(self) -> int | None:
        """The callback's own time, or ``None`` (the receive time is used then)."""
        return None


class _MonitoringCallback(BaseVideoCallback, frozen=True, kw_only=True):
    timestamp: EpochMillis | None = None
    """Event time; documented on connection and stream events, optional on the others."""

    @property
    def event_time_ms(self) -> int | None:
        return self.timestamp


class SessionCreatedCallback(_MonitoringCallback, frozen=True, kw_only=True, tag="sessionCreated"):
    canonical_event: ClassVar[str] = "sessionCreated"


class SessionDestroyedCallback(
    _MonitoringCallback, frozen=True, kw_only=True, tag="sessionDestroyed"
):
    canonical_event: ClassVar[str] = "sessionDestroyed"

    reason: str | None = None
    """``serverRotation``, ``forceDisconnected`` or any text."""


class SessionNotificationCallback(
    _MonitoringCallback, frozen=True, kw_only=True, tag="sessionNotification"
):
    """A server rotation is coming; changes no state."""

    canonical_event: ClassVar[str] = "sessionNotification"

    reason: str | None = None


class ConnectionCreatedCallback(
    _MonitoringCallback, frozen=True, kw_only=True, tag="connectionCreated"
):
    canonical_event: ClassVar[str] = "connectionCreated"

    connection: VideoConnection


class ConnectionDestroyedCallback(
    _MonitoringCallback, frozen=True, kw_only=True, tag="connectionDestroyed"
):
    canonical_event: ClassVar[str] = "connectionDestroyed"

    connection: VideoConnection
    reason: str | None = None
    """``clientDisconnected``, ``forceDisconnected``, ``networkDisconnected`` or any text."""


class StreamCreatedCallback(_MonitoringCallback, frozen=True, kw_only=True, tag="streamCreated"):
    canonical_event: ClassVar[str] = "streamCreated"

    stream: VideoStream


class StreamDestroyedCallback(
    _MonitoringCallback, frozen=True, kw_only=True, tag="streamDestroyed"
):
    canonical_event: ClassVar[str] = "streamDestroyed"

    stream: VideoStream
    reason: str | None = None
    """``clientDisconnected``, ``forceUnpublished``, ``mediaStopped``... or any text."""


class ArchiveStream(msgspec.Struct, frozen=True, kw_only=True, rename="camel"):
    stream_id: str | None = None
    has_audio: bool | None = None
    has_video: bool | None = None


class ArchiveCallback(BaseVideoCallback, frozen=True, kw_only=True, tag="archive"):
    """An archive (recording) changed status."""

    canonical_event: ClassVar[str] = "archive"

    id: Identifier
    status: Annotated[str, Meta(min_length=1, max_length=64)]
    """``started``, ``paused``, ``stopped``, ``uploaded``, ``available``, ``expired``,
    ``failed``; ``deleted`` and unknown values are kept."""
    created_at: EpochMillis | None = None
    updated_at: EpochMillis | None = None
    duration: Annotated[float, Meta(ge=0)] | None = None
    """Seconds; 0 while in progress."""
    size: Annotated[int, Meta(ge=0)] | None = None
    """Bytes; a number or a numeric string; 0 until generated."""
    url: str | None = None
    """Only on ``available``, and valid for 10 minutes."""
    reason: str | None = None
    name: str | None = None
    output_mode: str | None = None
    has_audio: bool | None = None
    has_video: bool | None = None
    streams: list[ArchiveStream] | None = None

    @property
    def event_time_ms(self) -> int | None:
        return self.updated_at


VideoCallback = (
    SessionCreatedCallback
    | SessionDestroyedCallback
    | SessionNotificationCallback
    | ConnectionCreatedCallback
    | ConnectionDestroyedCallback
    | StreamCreatedCallback
    | StreamDestroyedCallback
    | ArchiveCallback
)
"""Any accepted Video callback."""

VIDEO_CALLBACK_TYPES: tuple[type[BaseVideoCallback], ...] = get_args(VideoCallback)

VIDEO_EVENTS: dict[str, str] = {
    str(struct_type.__struct_config__.tag): struct_type.canonical_event
    for struct_type in VIDEO_CALLBACK_TYPES
}
"""Every accepted ``event`` value (each is its own canonical name)."""
