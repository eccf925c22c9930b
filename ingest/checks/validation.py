"""Cheap checks of a callback request before it is stored (contract §3, §7).

Ingest stores bodies byte-for-byte and leaves full decoding to the processor, so it only looks
at what it needs: that the body is UTF-8 JSON holding an object (possibly double-encoded) with a
string ``event``, that the ids are at most 256 characters, and the ids that make the Kafka key.
Each source has a small msgspec "view" struct of those fields (Meetings' ``CallbackView`` here,
Vonage Video's in ``ingest.checks.video``), and a ``BodyInspector`` decodes it in one pass
without building the whole callback.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Annotated, Any, Generic, Protocol, TypeVar

import msgspec

from schemas.decoding import validation_error_path

MAX_ID_LENGTH = 256
"""contract §3.3, §7.2: a longer id (``session_id``, ``sessionId``, ``connection.id``...) is 400."""

BoundedId = Annotated[str, msgspec.Meta(max_length=MAX_ID_LENGTH)]


class KeyedView(Protocol):
    """What ingest takes from an inspected body: the raw topic's key."""

    @property
    def key(self) -> bytes | None: ...


View = TypeVar("View", bound=KeyedView)


class CallbackView(msgspec.Struct, frozen=True):
    """The fields ingest reads of a Meetings callback; every other field is skipped by the
    decoder."""

    event: str
    session_id: BoundedId | None = None
    room_id: BoundedId | None = None
    participant_id: BoundedId | None = None
    recording_id: BoundedId | None = None

    @property
    def key(self) -> bytes | None:
        """The raw topic's key: ``session_id``, else ``room_id`` (contract §3.2)."""
        key = self.session_id or self.room_id
        return key.encode() if key else None


@dataclass(frozen=True, slots=True)
class Rejection:
    """Why a request is refused: HTTP status, a stable error code and a human explanation."""

    status: int
    error: str
    detail: str
    path: str | None = None


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


class BodyInspector(Generic[View]):
    """One source's body check: a UTF-8 JSON object (possibly double-encoded) that decodes as
    the source's ``view``, or a 400 saying what is wrong. Built once per source: its decoders
    are reused for every request.

    ``required``: the view's required fields by JSON path (``"$.event"``), each with how a
    refusal names it (``"a string field `event`"``)."""

    __slots__ = ("_body", "_inner", "_required")

    def __init__(self, view: type[View], *, required: Mapping[str, str]) -> None:
        # The view or a JSON string (a double-encoded body), in one pass.
        either: Any = view | str
        self._body: msgspec.json.Decoder[View | str] = msgspec.json.Decoder(either)
        self._inner: msgspec.json.Decoder[View] = msgspec.json.Decoder(view)
        self._required = dict(required)

    def inspect(self, body: bytes) -> View | Rejection:
        """The view of ``body``, or why it is refused."""
        # msgspec checks UTF-8 only in the strings it decodes, not in skipped values or keys;
        # the processor would send such a body to the DLQ after ingest said "stored". ASCII
        # bodies (the usual case) take the cheap test, which allocates nothing.
        if not body.isascii():
            try:
                body.decode()
            except UnicodeDecodeError as exc:
                return Rejection(
                    400, "invalid_json", f"the body is not valid UTF-8 (byte offset {exc.start})"
                )
        try:
            view = self._body.decode(body)
        except msgspec.ValidationError as exc:
            return self._invalid(str(exc))
        except msgspec.DecodeError as exc:
            return Rejection(400, "invalid_json", f"the body is not valid JSON: {exc}")
        except RecursionError:
            return Rejection(400, "invalid_json", "the body nests too deeply")
        if isinstance(view, str):
            return self._inspect_double_encoded(view)
        return view

    def _inspect_double_encoded(self, text: str) -> View | Rejection:
        try:
            return self._inner.decode(text)
        except msgspec.ValidationError as exc:
            return self._invalid(str(exc), " (inside a double-encoded body)")
        except (msgspec.DecodeError, RecursionError):
            return Rejection(
                400, "not_an_object", "the body is a JSON string that does not hold a JSON object"
            )

    def _invalid(self, message: str, where: str = "") -> Rejection:
        path = validation_error_path(message)
        if path == "$" and message.startswith("Expected `"):  # the top level is not an object
            return Rejection(400, "not_an_object", f"the body must be a JSON object{where}", path)
        if message.startswith(_TOO_LONG):  # an id, required or not
            field = path.removeprefix("$.")
            detail = f"`{field}` is longer than {MAX_ID_LENGTH} characters{where}"
            return Rejection(400, "invalid_callback", detail, path)
        needed = self._required.get(path)
        if needed is not None:  # missing, or of another type
            return Rejection(400, "invalid_callback", f"the body needs {needed}{where}", path)
        return Rejection(400, "invalid_callback", f"{message}{where}", path)


_TOO_LONG = f"Expected `str` of length <= {MAX_ID_LENGTH}"


MEETINGS_BODY = BodyInspector(CallbackView, required={"$.event": "a string field `event`"})
"""Meetings callbacks (contract §3)."""


def inspect_body(body: bytes) -> CallbackView | Rejection:
    """The view of a Meetings callback body (a UTF-8 JSON object with a string ``event``), or
    a 400 saying what is wrong."""
    return MEETINGS_BODY.inspect(body)
