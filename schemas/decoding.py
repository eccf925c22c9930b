"""The one way raw callback bytes become a typed callback, or a typed reason why not.

Each source has its decoder (``decode_callback`` for Meetings, ``decode_video_callback`` for
Video); neither raises for bad input: whatever the bytes, the caller gets either a callback
struct or a ``DecodeFailure`` whose ``reason`` is what the processor's DLQ records.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Mapping
from typing import Any, Generic, TypeVar

import msgspec

from schemas.callbacks import EVENT_SPELLINGS, Callback
from schemas.video import VIDEO_EVENTS, VideoCallback


class FailureReason(enum.StrEnum):
    """Why a body is not a callback; the values are the DLQ's ``dlq-reason`` header
    (contract §4.4)."""

    INVALID_JSON = "invalid_json"
    """Not parseable JSON (including invalid UTF-8 and a double-encoded string that is not)."""
    NOT_AN_OBJECT = "not_an_object"
    """Valid JSON, but not an object (nor a string holding one)."""
    UNKNOWN_EVENT = "unknown_event"
    """An object whose ``event`` is a string this version does not know."""
    INVALID_CALLBACK = "invalid_callback"
    """A known event (or no ``event`` at all) with a missing or ill-typed field."""


class DecodeFailure(msgspec.Struct, frozen=True, kw_only=True):
    reason: FailureReason
    message: str
    """Human-readable; names the field and the problem."""
    path: str | None = None
    """JSON path of the offending value (``$.duration``), when there is one."""
    event: str | None = None
    """The ``event`` value, when the body had a string one."""


_PATH = re.compile(r" - at `(\$[^`]*)`$")
_MISSING_FIELD = re.compile(r"^Object missing required field `([^`]+)`")

Body = bytes | bytearray | memoryview | str


T = TypeVar("T")


class CallbackDecoder(Generic[T]):
    """Decodes one source's callbacks: ``union`` is its tagged union of structs, ``events``
    every ``event`` value it knows (to tell an unknown event from an invalid one)."""

    def __init__(self, union: Any, events: Mapping[str, str]) -> None:
        # strict=False: numbers may arrive as numeric strings ("duration": "42"); contract §2, §7.
        self._body: msgspec.json.Decoder[Any] = msgspec.json.Decoder(union | str, strict=False)
        self._object: msgspec.json.Decoder[Any] = msgspec.json.Decoder(union, strict=False)
        self._events = events

    def decode(self, body: Body) -> T | DecodeFailure:
        """Decode one callback body; double-encoded bodies (a JSON string of the object) too."""
        try:
            decoded = self._body.decode(body)
            # `type(...) is` rather than isinstance: measurably cheaper on this hot path, and
            # the decoder only ever returns an exact str.
            if type(decoded) is str:  # a double-encoded body
                return self._decode_inner(decoded)
            return decoded  # type: ignore[no-any-return]
        except msgspec.ValidationError as exc:
            return _explain(body, exc, self._events)
        except (msgspec.DecodeError, RecursionError, UnicodeError) as exc:
            return DecodeFailure(reason=FailureReason.INVALID_JSON, message=f"invalid JSON: {exc}")

    def _decode_inner(self, text: str) -> T | DecodeFailure:
        """The body was a JSON string; its content must be the callback object itself."""
        try:
            return self._object.decode(text)  # type: ignore[no-any-return]
        except msgspec.ValidationError as exc:
            return _explain(text, exc, self._events, double_encoded=True)
        except (msgspec.DecodeError, RecursionError, UnicodeError):
            return DecodeFailure(
                reason=FailureReason.NOT_AN_OBJECT,
                message="the body is a JSON string that does not hold a JSON object",
            )


_MEETINGS: CallbackDecoder[Callback] = CallbackDecoder(Callback, EVENT_SPELLINGS)
_VIDEO: CallbackDecoder[VideoCallback] = CallbackDecoder(VideoCallback, VIDEO_EVENTS)
_ANY_DECODER = msgspec.json.Decoder()

decode_callback = _MEETINGS.decode
"""Decode one Vonage Meetings callback body (contract §2)."""

decode_video_callback = _VIDEO.decode
"""Decode one Vonage Video API callback body (contract §7)."""


def _explain(
    body: Body,
    error: msgspec.ValidationError,
    events: Mapping[str, str],
    *,
    double_encoded: bool = False,
) -> DecodeFailure:
    """Turn a validation error into a reason. Only failed bodies pay for this second parse."""
    try:
        raw: Any = _ANY_DECODER.decode(body)
    except (msgspec.DecodeError, RecursionError, UnicodeError) as exc:
        # The typed decoder stopped at a bad value before reaching a syntax error further on.
        return DecodeFailure(reason=FailureReason.INVALID_JSON, message=f"invalid JSON: {exc}")
    where = " (inside a double-encoded body)" if double_encoded else ""
    if not isinstance(raw, dict):
        return DecodeFailure(
            reason=FailureReason.NOT_AN_OBJECT,
            message=f"expected a JSON object, got {_json_kind(raw)}{where}",
            path="$",
        )
    event = raw.get("event")
    if not isinstance(event, str):
        problem = "is missing" if event is None else f"must be a string, got {_json_kind(event)}"
        return DecodeFailure(
            reason=FailureReason.INVALID_CALLBACK,
            message=f"field `event` {problem}{where}",
            path="$.event",
        )
    if event not in events:
        return DecodeFailure(
            reason=FailureReason.UNKNOWN_EVENT,
            message=f"unknown event {event!r}{where}",
            path="$.event",
            event=event,
        )
    message = str(error)
    return DecodeFailure(
        reason=FailureReason.INVALID_CALLBACK,
        message=f"{event}: {message}{where}",
        path=validation_error_path(message),
        event=event,
    )


def validation_error_path(message: str) -> str:
    """JSON path of a msgspec validation error; a missing field's path names the field."""
    located = _PATH.search(message)
    path = located.group(1) if located else "$"
    missing = _MISSING_FIELD.match(message)
    return f"{path}.{missing.group(1)}" if missing else path


def _json_kind(value: object) -> str:
    match value:
        case None:
            return "null"
        case bool():
            return "a boolean"
        case int() | float():
            return "a number"
        case str():
            return "a string"
        case list():
            return "an array"
        case _:
            return "an object"
