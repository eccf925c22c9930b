"""Cheap checks of a callback request before it is stored (SPEC §3).

Ingest stores bodies byte-for-byte and leaves full decoding to the processor, so it only looks
at what it needs: that the body is UTF-8 JSON holding an object (possibly double-encoded) with a
string ``event``, that the ids are at most 256 characters, and the ids that make the Kafka key.
A small msgspec "view" struct does this in one pass without building the whole callback.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

import msgspec

from schemas.decoding import validation_error_path

MAX_ID_LENGTH = 256
"""SPEC §3: a longer ``session_id``, ``room_id``, ``participant_id`` or ``recording_id`` is 400."""

BoundedId = Annotated[str, msgspec.Meta(max_length=MAX_ID_LENGTH)]


class CallbackView(msgspec.Struct, frozen=True):
    """The fields ingest reads; every other field is skipped by the decoder."""

    event: str
    session_id: BoundedId | None = None
    room_id: BoundedId | None = None
    participant_id: BoundedId | None = None
    recording_id: BoundedId | None = None

    @property
    def key(self) -> bytes | None:
        """The raw topic's key: ``session_id``, else ``room_id`` (SPEC §4)."""
        key = self.session_id or self.room_id
        return key.encode() if key else None


@dataclass(frozen=True, slots=True)
class Rejection:
    """Why a request is refused: HTTP status, a stable error code and a human explanation."""

    status: int
    error: str
    detail: str
    path: str | None = None


_BODY_VIEW: msgspec.json.Decoder[CallbackView | str] = msgspec.json.Decoder(CallbackView | str)
_INNER_VIEW: msgspec.json.Decoder[CallbackView] = msgspec.json.Decoder(CallbackView)

JSON_MEDIA_TYPES = ("application/json",)
SUPPORTED_ENCODINGS = ("", "identity", "gzip", "deflate")
"""Content codings aiohttp undoes before the handler reads the body (``auto_decompress``)."""


def check_content_type(content_type: str | None) -> Rejection | None:
    """A content type, when present, must be JSON (``application/json`` or ``*/*+json``)."""
    if not content_type:
        return None
    if not content_type.isascii():
        # Header bytes arrive decoded with surrogate escapes; a media type is plain ASCII.
        return Rejection(
            415, "unsupported_media_type", "the Content-Type header is not ASCII; send JSON"
        )
    media_type = content_type.split(";", 1)[0].strip().lower()
    if media_type in JSON_MEDIA_TYPES or media_type.endswith("+json"):
        return None
    return Rejection(
        415,
        "unsupported_media_type",
        f"content type {media_type!r} is not JSON; send application/json",
    )


def check_content_encoding(content_encoding: str | None) -> Rejection | None:
    """Only codings that are undone before the body is read; anything else would be stored
    still encoded. One coding at most: nobody sends a callback gzipped twice."""
    if content_encoding is None:
        return None
    coding = content_encoding.strip().lower()
    if coding in SUPPORTED_ENCODINGS:
        return None
    shown = coding.encode("ascii", "backslashreplace").decode()[:64]
    return Rejection(
        415,
        "unsupported_encoding",
        f"content encoding {shown!r} is not supported; send identity, gzip or deflate",
    )


def inspect_body(body: bytes) -> CallbackView | Rejection:
    """The view of a UTF-8 JSON object body with a string ``event``, or a 400 saying what is
    wrong."""
    # msgspec checks UTF-8 only in the strings it decodes, not in skipped values or keys; the
    # processor would send such a body to the DLQ after ingest said "stored". ASCII bodies (the
    # usual case) take the cheap test, which allocates nothing.
    if not body.isascii():
        try:
            body.decode()
        except UnicodeDecodeError as exc:
            return Rejection(
                400, "invalid_json", f"the body is not valid UTF-8 (byte offset {exc.start})"
            )
    try:
        view = _BODY_VIEW.decode(body)
    except msgspec.ValidationError as exc:
        return _invalid(str(exc))
    except msgspec.DecodeError as exc:
        return Rejection(400, "invalid_json", f"the body is not valid JSON: {exc}")
    except RecursionError:
        return Rejection(400, "invalid_json", "the body nests too deeply")
    if isinstance(view, str):
        return _inspect_double_encoded(view)
    return view


def _inspect_double_encoded(text: str) -> CallbackView | Rejection:
    try:
        return _INNER_VIEW.decode(text)
    except msgspec.ValidationError as exc:
        return _invalid(str(exc), " (inside a double-encoded body)")
    except (msgspec.DecodeError, RecursionError):
        return Rejection(
            400, "not_an_object", "the body is a JSON string that does not hold a JSON object"
        )


def _invalid(message: str, where: str = "") -> Rejection:
    path = validation_error_path(message)
    if path == "$" and message.startswith("Expected `"):  # the top level is not an object
        return Rejection(400, "not_an_object", f"the body must be a JSON object{where}", path)
    if path == "$.event":
        return Rejection(
            400, "invalid_callback", f"the body needs a string field `event`{where}", path
        )
    return Rejection(400, "invalid_callback", f"{message}{where}", path)
