"""One readable line per record of any pipeline topic, for ``meetings-tail``.

The record's content, not the topic's name, decides the format: deployments prefix topic names
(``MEETINGS_TOPIC_PREFIX``), and a DLQ record is recognised by its ``dlq-reason`` header.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import msgspec
import orjson

from schemas import (
    AnyDerivedEvent,
    DecodeFailure,
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
from schemas.timestamps import format_epoch_ms
from schemas.topics import (
    HEADER_DLQ_ERROR,
    HEADER_DLQ_REASON,
    HEADER_SOURCE_OFFSET,
    HEADER_SOURCE_PARTITION,
    HEADER_SOURCE_TOPIC,
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
        return self._callback(record)

    def _event(self, event: AnyDerivedEvent) -> str:
        kind = str(type(event).__struct_config__.tag)
        fields: list[str]
        match event:
            case SessionStartedEvent():
                fields = [
                    f"session={self._id(event.session_id)}",
                    f"room={self._id(event.room_id)}",
                ]
            case SessionEndedEvent(summary=summary):
                fields = [
                    f"session={self._id(event.session_id)}",
                    f"duration={_seconds(summary.duration_s)}",
                    f"participants={summary.unique_participants}",
                    f"peak={summary.peak_concurrency}",
                    f"joins={summary.total_joins}",
                    f"attended={_seconds(summary.participant_seconds)}",
                    f"recordings={summary.recordings}",
                    f"ended_by={summary.ended_by}",
                    f"rev={summary.revision}",
                ]
            case ParticipantJoinedEvent():
                fields = [
                    f"session={self._id(event.session_id)}",
                    f"participant={self._id(event.participant_id)}",
                    f"name={_quoted(event.name)}",
                    *(["host"] if event.is_host else []),
                ]
            case ParticipantLeftEvent():
                fields = [
                    f"session={self._id(event.session_id)}",
                    f"participant={self._id(event.participant_id)}",
                    f"name={_quoted(event.name)}",
                    f"duration={_seconds(event.duration_s)}",
                    f"reason={event.left_reason}",
                ]
            case ParticipantAttendanceEvent():
                fields = [
                    f"session={self._id(event.session_id)}",
                    f"participant={self._id(event.participant_id)}",
                    f"name={_quoted(event.name)}",
                    f"stints={event.stints}",
                    f"attended={_seconds(event.attended_s)}",
                    f"rev={event.revision}",
                ]
            case RecordingStartedEvent():
                fields = self._recording(event.recording_id, event.session_id)
            case RecordingEndedEvent():
                fields = [
                    *self._recording(event.recording_id, event.session_id),
                    f"duration={_seconds(event.duration_s)}",
                ]
            case RecordingReadyEvent():
                fields = [
                    *self._recording(event.recording_id, event.session_id),
                    f"duration={_seconds(event.duration_s)}",
                    f"url={event.url}",
                ]
            case RoomExpiredEvent():
                fields = [f"room={self._id(event.room_id)}", f"room_type={event.room_type}"]
        return _line(event.occurred_at, kind, fields)

    def _recording(self, recording_id: str, session_id: str) -> list[str]:
        return [f"recording={self._id(recording_id)}", f"session={self._id(session_id)}"]

    def _state(self, state: SessionState) -> str:
        fields = [
            f"session={self._id(state.session_id)}",
            f"status={state.status}",
            f"active={state.active_count}",
            f"peak={state.peak_concurrency}",
            f"unique={state.unique_participants}",
            f"joins={state.total_joins}",
            f"recordings={len(state.recordings)}{' (recording)' if state.recording_active else ''}",
            f"v={state.version}",
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

    def _callback(self, record: Record) -> str:
        """A raw callback, shown with its ids; anything else as the start of its bytes."""
        assert record.value is not None
        callback = decode_callback(record.value)
        if isinstance(callback, DecodeFailure):
            excerpt = record.value[:80].decode(errors="replace")
            fields = [f"reason={callback.reason}", f"value={_quoted(excerpt)}"]
            return _line(_at(record), "undecodable", fields)
        fields = [
            f"{name}={self._id(value)}"
            for name in ("session_id", "room_id", "participant_id", "recording_id")
            if isinstance(value := getattr(callback, name, None), str)
        ]
        return _line(_at(record), callback.canonical_event, fields)

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


def _quoted(value: str | None) -> str:
    return "-" if value is None else orjson.dumps(value).decode()


def _text(value: bytes | None) -> str | None:
    return None if value is None else value.decode(errors="replace")
