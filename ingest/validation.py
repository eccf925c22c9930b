"""Cheap checks of a callback request before it is stored (SPEC §3).

Ingest stores bodies byte-for-byte and leaves full decoding to the processor, so it only looks
at what it needs: that the body is a JSON object (possibly double-encoded) with a string
``event``, and the ids that make the Kafka key. A small msgspec "view" struct does this in one
pass without building the whole callback.
"""

from __future__ import annotations

from dataclasses import dataclass

import msgspec

from schemas.decoding import validation_error_path


class CallbackView(msgspec.Struct, frozen=True):
    """The fields ingest reads; every other field is skipped by the decoder."""

    event: str
    session_id: str | None = None
    room_id: str | None = None

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


def check_content_type(content_type: str | None) -> Rejection | None:
    """A content type, when present, must be JSON (``application/json`` or ``*/*+json``)."""
    if not content_type:
        return None
    media_type = content_type.split(";", 1)[0].strip().lower()
    if media_type in JSON_MEDIA_TYPES or media_type.endswith("+json"):
        return None
    return Rejection(
        415,
        "unsupported_media_type",
        f"content type {media_type!r} is not JSON; send application/json",
    )


def inspect_body(body: bytes) -> CallbackView | Rejection:
    """The view of a JSON object body with a string ``event``, or a 400 saying what is wrong."""
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
