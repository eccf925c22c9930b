"""Vonage Video API callbacks (contract §7) as engine facts.

* A connection is not a person: ``ParticipantKey`` (``VIDEO_PARTICIPANT_KEY``) says who the
  participant behind a connection is — the connection itself, its whole token data, or a field
  of token data that is a JSON object — falling back to the connection id when the data lacks
  it. The engine keeps which participant opened each connection, so a ``connectionDestroyed``
  whose data was not repeated still closes the right person's connection.
* The first connection starts the session too (``sessionCreated`` may be missing or late).
  Session ids are reused: a ``sessionCreated``, ``connectionCreated`` or ``sessionDestroyed``
  timestamped after the session ended belongs to its next instance; anything timestamped at
  or before that end is late news of the ended instance and revises it.
* Archive statuses are recording stages; ``uploaded``/``available`` end a recording that has
  not been seen stopping, and ``deleted`` or statuses this version does not know change nothing.
* Event time is ``timestamp`` (archives: ``updatedAt``), else the ingest receive time.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, assert_never

import msgspec

from processor.engine.facts import (
    Arrived,
    Departed,
    Fact,
    Origin,
    Person,
    RecordingChanged,
    SessionBegan,
    SessionFinished,
    Stage,
    StreamBegan,
    StreamFinished,
)
from schemas.video import (
    ArchiveCallback,
    ConnectionCreatedCallback,
    ConnectionDestroyedCallback,
    SessionCreatedCallback,
    SessionDestroyedCallback,
    SessionNotificationCallback,
    StreamCreatedCallback,
    StreamDestroyedCallback,
    VideoCallback,
    VideoConnection,
)

URL_LIFETIME_MS = 10 * 60 * 1000
"""A Vonage-hosted archive URL works for 10 minutes after it was issued."""

_STAGES: dict[str, Stage] = {
    "started": Stage.STARTED,
    "paused": Stage.PAUSED,
    "stopped": Stage.ENDED,
    "uploaded": Stage.READY,
    "available": Stage.READY,
    "failed": Stage.FAILED,
    "expired": Stage.EXPIRED,
}
_STORAGE = {"uploaded": "external", "available": "vonage"}
_FINISHED = frozenset({"stopped", "uploaded", "available"})
"""Statuses whose ``duration`` and ``size`` are final (0 while recording)."""
_TOKEN_DATA = msgspec.json.Decoder()


@dataclass(frozen=True, slots=True)
class ParticipantKey:
    """Who a participant is, from a connection: ``connection``, ``data`` or ``data.<field>``."""

    spec: str = "connection"

    def __post_init__(self) -> None:
        if self.spec not in ("connection", "data") and not (
            self.spec.startswith("data.") and len(self.spec) > len("data.")
        ):
            raise ValueError(
                f"participant key {self.spec!r}: expected connection, data or data.<field>"
            )

    @property
    def field(self) -> str | None:
        return self.spec[len("data.") :] if self.spec.startswith("data.") else None

    def person(self, connection: VideoConnection) -> Person:
        data = connection.data
        fields = _token_fields(data)
        participant_id = connection.id
        if self.spec == "data":
            participant_id = data or connection.id
        elif (field := self.field) is not None and fields is not None:
            value = fields.get(field)
            if isinstance(value, str | int) and not isinstance(value, bool) and str(value):
                participant_id = str(value)
        name = None if fields is None else fields.get("name")
        return Person(
            participant_id=participant_id,
            connection_id=connection.id,
            name=name if isinstance(name, str) else None,
        )


def _token_fields(data: str | None) -> dict[str, Any] | None:
    """Token data as a JSON object, when it is one."""
    if not data or not data.lstrip().startswith("{"):
        return None
    try:
        decoded = _TOKEN_DATA.decode(data)
    except (msgspec.DecodeError, RecursionError):
        return None
    return decoded if isinstance(decoded, dict) else None


def video_facts(
    callback: VideoCallback, received_at_ms: int, key: ParticipantKey = ParticipantKey()
) -> list[Fact]:
    """The facts one Video callback states (none for ``sessionNotification``)."""
    origin = Origin(session_id=callback.session_id, source="video", tenant_id=callback.tenant_id)
    own_time = callback.event_time_ms
    at = received_at_ms if own_time is None else own_time
    match callback:
        case SessionCreatedCallback():
            return [SessionBegan(origin, at, opens_instance=True)]
        case SessionDestroyedCallback():
            return [SessionFinished(origin, at, reason=callback.reason, opens_instance=True)]
        case SessionNotificationCallback():
            return []
        case ConnectionCreatedCallback():
            return [
                SessionBegan(origin, at, opens_instance=True),
                Arrived(origin, key.person(callback.connection), at, opens_instance=True),
            ]
        case ConnectionDestroyedCallback():
            return [Departed(origin, key.person(callback.connection), at, reason=callback.reason)]
        case StreamCreatedCallback():
            stream = callback.stream
            return [
                StreamBegan(origin, stream.id, key.person(stream.connection), stream.video_type, at)
            ]
        case StreamDestroyedCallback():
            stream = callback.stream
            return [
                StreamFinished(
                    origin,
                    stream.id,
                    key.person(stream.connection),
                    stream.video_type,
                    at,
                    began_at=stream.created_at,
                    reason=callback.reason,
                )
            ]
        case ArchiveCallback():
            return _archive_facts(origin, callback, at)
        case _:
            assert_never(callback)


def _archive_facts(origin: Origin, archive: ArchiveCallback, at: int) -> list[Fact]:
    status = archive.status
    stage = _STAGES.get(status)
    if stage is None:
        return []  # deleted, or a status this version does not know: no recording stage
    finished = status in _FINISHED
    storage = _STORAGE.get(status)
    return [
        RecordingChanged(
            origin,
            archive.id,
            stage,
            at,
            started_at=archive.created_at,
            ended_at=at if finished else None,
            duration_s=archive.duration if finished else None,
            url=archive.url if storage == "vonage" else None,
            reason=archive.reason or None,
            storage=storage,
            url_expires_at=at + URL_LIFETIME_MS if storage == "vonage" else None,
            size_bytes=archive.size if finished and archive.size else None,
            output_mode=archive.output_mode,
            cycles=True,
            ready_ends=storage is not None,
        )
    ]
