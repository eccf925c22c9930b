"""What a Vonage Video callback body must satisfy before it is stored (contract §7.2).

Session monitoring (``/video/sessions``) and archive status (``/video/archives``) callbacks are
flat camelCase JSON objects: a string ``event`` and a string ``sessionId``, which is the raw
topic's key, so a callback without one is refused rather than stored unkeyed. Ids are bounded
like Meetings' ones: ``sessionId``, ``id`` (an archive's), ``connection.id``, ``stream.id`` and
``stream.connection.id``. Unknown events pass (forward compatibility), as for Meetings.
"""

from __future__ import annotations

from typing import Annotated

import msgspec

from ingest.checks.validation import MAX_ID_LENGTH, BodyInspector, BoundedId, Rejection

SessionId = Annotated[str, msgspec.Meta(min_length=1, max_length=MAX_ID_LENGTH)]
"""An empty ``sessionId`` names no session: it would key every such callback alike."""


class ConnectionView(msgspec.Struct, frozen=True):
    id: BoundedId | None = None


class StreamView(msgspec.Struct, frozen=True):
    id: BoundedId | None = None
    connection: ConnectionView | None = None


class VideoCallbackView(msgspec.Struct, frozen=True, rename="camel"):
    """The fields ingest reads of a Video callback; every other field is skipped by the
    decoder."""

    event: str
    session_id: SessionId
    id: BoundedId | None = None
    connection: ConnectionView | None = None
    stream: StreamView | None = None

    @property
    def key(self) -> bytes:
        """The raw topic's key: ``sessionId`` (contract §7.2)."""
        return self.session_id.encode()


VIDEO_BODY = BodyInspector(
    VideoCallbackView,
    required={
        "$.event": "a string field `event`",
        "$.sessionId": "a non-empty string field `sessionId` (the record's key)",
    },
)
"""Video callbacks of both routes (contract §7)."""


def inspect_video_body(body: bytes) -> VideoCallbackView | Rejection:
    """The view of a Video callback body, or a 400 saying what is wrong."""
    return VIDEO_BODY.inspect(body)
