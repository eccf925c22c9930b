"""The platforms callbacks come from, each an adapter from its callbacks to engine facts.

``CallbackReader`` picks the source of a raw record by the route ingest recorded it under
(``source-route``): ``/video/...`` routes carry Vonage Video API callbacks, every other route
Vonage Meetings ones. Adding a provider means a decoder (a module of ``schemas``), an adapter
here, and a route at ingest; the engine does not change.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from processor.engine.facts import Fact
from processor.sources.meetings import SessionCallback, meetings_facts
from processor.sources.video import ParticipantKey, video_facts
from schemas.callbacks import RoomExpiredCallback
from schemas.decoding import DecodeFailure, decode_callback, decode_video_callback
from schemas.sources import is_video_route

__all__ = [
    "CallbackReader",
    "ParticipantKey",
    "SessionCallback",
    "meetings_facts",
    "video_facts",
]


@dataclass(frozen=True, slots=True)
class CallbackReader:
    """Raw callback bytes → the facts they state, a room expiry, or why they are unusable."""

    participant_key: ParticipantKey = field(default_factory=ParticipantKey)

    def read(
        self, body: bytes, route: bytes | None, received_at_ms: int
    ) -> list[Fact] | RoomExpiredCallback | DecodeFailure:
        if route is not None and is_video_route(route):
            video = decode_video_callback(body)
            if isinstance(video, DecodeFailure):
                return video
            return video_facts(video, received_at_ms, self.participant_key)
        decoded = decode_callback(body)
        if isinstance(decoded, DecodeFailure | RoomExpiredCallback):
            return decoded
        return meetings_facts(decoded, received_at_ms)
