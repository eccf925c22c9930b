"""One readable line per record of any pipeline topic, for ``meetings-tail``.

The record's content, not the topic's name, decides the format: deployments prefix topic names
(``MEETINGS_TOPIC_PREFIX``), a DLQ record is recognised by its ``dlq-reason`` header, and a raw
callback's ``source-route`` header says which source's decoder reads it. Derived events end
with their ``source`` (and Video ones with their tenant); fields that only some events have
(an ``instance`` after the first, a Video ``connection``, a screen share) show when present.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import msgspec
import orjson

from schemas import (
    AnyDerivedEvent,
    Callback,
    DecodeFailure,
    DerivedEvent,
    ParticipantAttendanceEvent,
    ParticipantJoinedEvent,
    ParticipantLeftEvent,
    RecordingEndedEvent,
    RecordingReadyEvent,
    RecordingStartedEvent,
    RoomExpiredEvent,
    SessionEndedEvent,
    SessionStartedEvent,
    SessionState,
    decode_callback,
    decode_event,
    decode_state,
)
from schemas.decoding import decode_video_callback
from schemas.events import (
    RecordingExpiredEvent,
    RecordingFailedEvent,
    RecordingPausedEvent,
    RecordingResumedEvent,
    StreamEndedEvent,
    StreamStartedEvent,
)
from schemas.sources import MEETINGS_ROUTES, is_video_route
from schemas.timestamps import format_epoch_ms
from schemas.topics import (
    HEADER_DLQ_ERROR,
    HEADER_DLQ_REASON,
    HEADER_SOURCE_OFFSET,
    HEADER_SOURCE_PARTITION,
    HEADER_SOURCE_ROUTE,
    HEADER_SOURCE_TOPIC,
)
from schemas.video import (
    ArchiveCallback,
    BaseVideoCallback,
    ConnectionCreatedCallback,
    ConnectionDestroyedCallback,
    SessionDestroyedCallback,
    SessionNotificationCallback,
    StreamCreatedCallback,
    StreamDestroyedCallback,
    VideoCallback,
)

_KIND_WIDTH = len("participant.joined")


class Record(Protocol):
    """What a line is made of: the fields of aiokafka's ``ConsumerRecord`` used here."""

    @property
    def timestamp(self) -> int: ...
    @property
    def key(self) -> bytes | None: ...
    @property
    def value(self) -> bytes | None: ...
    @property
    def headers(self) -> tuple[tuple[str, bytes], ...] | list[tuple[str, bytes]]: ...


@dataclass(frozen=True, slots=True)
class LineFormat:
    full_ids: bool = False
    """Session ids are ~70 characters; by default lines show enough of each id to tell them
    apart (UUIDs by their first 8 hex digits, like git's short hashes)."""

    def line(self, record: Record) -> str:
        headers = {name: value for name, value in record.headers}
        if HEADER_DLQ_REASON in headers:
            return self._dlq(record, headers)
        if record.value is None:
            return _line(_at(record), "tombstone", [f"key={self._id(_text(record.key))}"])
        try:
            return self._event(decode_event(record.value))
        except msgspec.DecodeError:
            pass  # not a derived event: maybe state
        try:
            return self._state(decode_state(record.value))
        except msgspec.DecodeError:
            pass  # nor state: maybe a raw callback
        return self._callback(record, headers)

    def _event(self, event: AnyDerivedEvent) -> str:
        kind = str(type(event).__struct_config__.tag)
        fields: list[str]
        match event:
            case SessionStartedEvent():
                fields = [
                    *self._session(event.session_id, event.instance),
                    *_present("room", self._some_id(event.room_id)),
                ]
            case SessionEndedEvent(summary=summary):
                fields = [
                    *self._session(event.session_id, event.instance),
                    f"duration={_seconds(summary.duration_s)}",
                    f"participants={summary.unique_participants}",
                    f"peak={summary.peak_concurrency}",
                    f"joins={summary.total_joins}",
                    f"attended={_seconds(summary.participant_seconds)}",
                    f"recordings={summary.recordings}",
                    *_present("screen_share", _some_seconds(summary.screen_share_s)),
                    f"ended_by={summary.ended_by}",
                    *_present("end_reason", _quoted(summary.end_reason, bare=True)),
                    f"rev={summary.revision}",
                ]
            case ParticipantJoinedEvent():
                fields = [
                    *self._participant(event.session_id, event.instance, event.participant_id),
                    f"name={_quoted(event.name)}",
                    *(["host"] if event.is_host else []),
                    *_present("stint", event.stint if event.stint > 1 else None),
                    *_present("connection", self._some_id(event.connection_id)),
                ]
            case ParticipantLeftEvent():
                fields = [
                    *self._participant(event.session_id, event.instance, event.participant_id),
                    f"name={_quoted(event.name)}",
                    f"duration={_seconds(event.duration_s)}",
                    f"reason={event.left_reason}",
                    *_present("stint", event.stint if event.stint > 1 else None),
                    *_present("connection", self._some_id(event.connection_id)),
                    *_present("disconnect_reason", event.disconnect_reason),
                ]
            case ParticipantAttendanceEvent():
                fields = [
                    *self._participant(event.session_id, event.instance, event.participant_id),
                    f"name={_quoted(event.name)}",
                    f"stints={event.stints}",
                    f"attended={_seconds(event.attended_s)}",
                    *_present("screen_share", _some_seconds(event.screen_share_s)),
                    f"rev={event.revision}",
                ]
            case StreamStartedEvent():
                fields = self._stream(event)
            case StreamEndedEvent():
                fields = [
                    *self._stream(event),
                    f"duration={_seconds(event.duration_s)}",
                    f"reason={event.reason or '-'}",
                ]
            case (
                RecordingStartedEvent()
                | RecordingPausedEvent()
                | RecordingResumedEvent()
                | RecordingExpiredEvent()
            ):
                fields = self._recording(event.recording_id, event.session_id, event.instance)
            case RecordingEndedEvent():
                fields = [
                    *self._recording(event.recording_id, event.session_id, event.instance),
                    f"duration={_seconds(event.duration_s)}",
                    *_present("reason", _quoted(event.reason, bare=True)),
                ]
            case RecordingReadyEvent():
                fields = [
                    *self._recording(event.recording_id, event.session_id, event.instance),
                    f"duration={_seconds(event.duration_s)}",
                    *_present("storage", event.storage),
                    *_present("size", _size(event.size_bytes)),
                    *_present("url", event.url or None),
                    *_present("url_expires", event.url_expires_at),
                ]
            case RecordingFailedEvent():
                fields = [
                    *self._recording(event.recording_id, event.session_id, event.instance),
                    f"reason={_quoted(event.reason, bare=True)}",
                ]
            case RoomExpiredEvent():
                fields = [f"room={self._id(event.room_id)}", f"room_type={event.room_type}"]
        return _line(event.occurred_at, kind, [*fields, *_provenance(event)])

    def _session(self, session_id: str | None, instance: int) -> list[str]:
        """The session, and which use of its id when it is not the first."""
        return [f"session={self._id(session_id)}", *_present("instance", _later(instance))]

    def _participant(self, session_id: str, instance: int, participant_id: str) -> list[str]:
        return [*self._session(session_id, instance), f"participant={self._id(participant_id)}"]

    def _stream(self, event: StreamStartedEvent | StreamEndedEvent) -> list[str]:
        return [
            *self._participant(event.session_id, event.instance, event.participant_id),
            f"stream={self._id(event.stream_id)}",
            f"video_type={event.video_type or '-'}",
            f"connection={self._id(event.connection_id)}",
        ]

    def _recording(self, recording_id: str, session_id: str, instance: int) -> list[str]:
        return [f"recording={self._id(recording_id)}", *self._session(session_id, instance)]

    def _state(self, state: SessionState) -> str:
        video = state.source == "video"
        fields = [
            *self._session(state.session_id, state.instance),
            f"status={state.status}",
            f"active={state.active_count}",
            *_present("connections", state.active_connections if video else None),
            *_present("streams", state.active_streams if video else None),
            f"peak={state.peak_concurrency}",
            f"unique={state.unique_participants}",
            f"joins={state.total_joins}",
            f"recordings={len(state.recordings)}{' (recording)' if state.recording_active else ''}",
            f"v={state.version}",
            *(_provenance(state) if video else []),
        ]
        return _line(state.last_event_at or "-", "state", fields)

    def _dlq(self, record: Record, headers: dict[str, bytes]) -> str:
        source = (
            f"{_text(headers.get(HEADER_SOURCE_TOPIC))}[{_text(headers.get(HEADER_SOURCE_PARTITION))}]"
            f"@{_text(headers.get(HEADER_SOURCE_OFFSET))}"
        )
        fields = [
            f"reason={_text(headers.get(HEADER_DLQ_REASON))}",
            f"source={source}",
            f"key={self._id(_text(record.key))}",
            f"error={_quoted(_text(headers.get(HEADER_DLQ_ERROR)))}",
        ]
        return _line(_at(record), "dlq", fields)

    def _callback(self, record: Record, headers: dict[str, bytes]) -> str:
        """A raw callback, shown with its ids; anything else as the start of its bytes."""
        assert record.value is not None
        callback = _decode_raw(record.value, headers.get(HEADER_SOURCE_ROUTE))
        if isinstance(callback, DecodeFailure):
            excerpt = record.value[:80].decode(errors="replace")
            fields = [f"reason={callback.reason}", f"value={_quoted(excerpt)}"]
            return _line(_at(record), "undecodable", fields)
        if isinstance(callback, BaseVideoCallback):
            return _line(_at(record), callback.canonical_event, self._video_callback(callback))
        fields = [
            f"{name}={self._id(value)}"
            for name in ("session_id", "room_id", "participant_id", "recording_id")
            if isinstance(value := getattr(callback, name, None), str)
        ]
        return _line(_at(record), callback.canonical_event, fields)

    def _video_callback(self, callback: VideoCallback) -> list[str]:
        fields = [f"session={self._id(callback.session_id)}"]
        match callback:
            case ConnectionCreatedCallback() | ConnectionDestroyedCallback():
                fields.append(f"connection={self._id(callback.connection.id)}")
            case StreamCreatedCallback() | StreamDestroyedCallback():
                fields.append(f"stream={self._id(callback.stream.id)}")
                fields.append(f"connection={self._id(callback.stream.connection.id)}")
                fields.append(f"video_type={callback.stream.video_type or '-'}")
            case ArchiveCallback():
                fields.append(f"archive={self._id(callback.id)}")
                fields.append(f"status={callback.status}")
        match callback:
            case (
                ConnectionDestroyedCallback()
                | StreamDestroyedCallback()
                | SessionDestroyedCallback()
                | SessionNotificationCallback()
            ):
                fields += _present("reason", _quoted(callback.reason, bare=True))
        return [*fields, *_present("tenant", callback.tenant_id)]

    def _some_id(self, value: str | None) -> str | None:
        """An id worth showing: one that is there."""
        return None if value is None else self._id(value)

    def _id(self, value: str | None) -> str:
        if value is None:
            return "-"
        if self.full_ids or len(value) <= 16:
            return value
        if len(value) == 36 and value[8] == "-":  # a UUID
            return value[:8]
        # Vonage session ids share a long prefix (the encoded API key): keep the tail.
        return f"{value[:4]}..{value[-10:]}"


def _line(at: str, kind: str, fields: list[str]) -> str:
    return f"{at} {kind:<{_KIND_WIDTH}} {' '.join(fields)}"


def _at(record: Record) -> str:
    return format_epoch_ms(record.timestamp)


def _seconds(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:.0f}s" if value >= 100 else f"{value:.1f}s"


def _some_seconds(value: float) -> str | None:
    """Seconds worth showing: more than none."""
    return _seconds(value) if value > 0 else None


def _quoted(value: str | None, *, bare: bool = False) -> str | None:
    """JSON-quoted; ``bare``: a single word stays as it is, and nothing is ``None``."""
    if bare:
        if not value:
            return None
        if value.isidentifier():
            return value
    return "-" if value is None else orjson.dumps(value).decode()


def _present(name: str, value: object) -> list[str]:
    """``name=value``, or nothing when there is no value."""
    return [] if value is None else [f"{name}={value}"]


def _later(instance: int) -> int | None:
    """An instance worth showing: any but the first use of a session id."""
    return instance if instance > 1 else None


def _provenance(item: DerivedEvent | SessionState) -> list[str]:
    return [f"source={item.source}", *_present("tenant", item.tenant_id)]


def _size(size_bytes: int | None) -> str | None:
    if size_bytes is None:
        return None
    for unit, scale in (("GB", 10**9), ("MB", 10**6), ("kB", 10**3)):
        if size_bytes >= scale:
            return f"{size_bytes / scale:.1f}{unit}"
    return f"{size_bytes}B"


def _decode_raw(body: bytes, route: bytes | None) -> Callback | VideoCallback | DecodeFailure:
    """A raw callback by its route's source; without a known route, as either source's."""
    if route is not None and is_video_route(route):
        return decode_video_callback(body)
    meetings = decode_callback(body)
    if route is not None and route.decode(errors="replace") in MEETINGS_ROUTES:
        return meetings
    if isinstance(meetings, DecodeFailure):
        video = decode_video_callback(body)
        return meetings if isinstance(video, DecodeFailure) else video
    return meetings


def _text(value: bytes | None) -> str | None:
    return None if value is None else value.decode(errors="replace")
