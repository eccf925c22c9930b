"""What every simulated Vonage Video callback shares: the project that sends it, the session it
belongs to, and the two clocks of a callback (when it happened, when Vonage sends it).

``tools.simulator.video`` (sessions, people, streams) and ``tools.simulator.video_archive``
(archives) write one session instance's callbacks through a ``SessionWriter``.
"""

from __future__ import annotations

import random
import uuid
from dataclasses import dataclass

from tools.simulator.meetings import Body, Timeline

_LATENCY_MS = (20, 400)
"""From an event to its callback leaving Vonage."""


@dataclass(frozen=True, slots=True)
class VideoTenant:
    """The Vonage Video project whose sessions are simulated."""

    project_id: int
    """The project's API key (a number)."""
    application_id: str
    """The ``application_id`` claim of its signed callbacks (a UUID)."""

    @property
    def api_key(self) -> str:
        return str(self.project_id)

    def session_fields(self) -> Body:
        """Session monitoring names the project as a string."""
        return {"projectId": str(self.project_id)}

    def archive_fields(self) -> Body:
        """Archive callbacks carry all three names, the same value, two of them numbers."""
        return {
            "applicationId": str(self.project_id),
            "projectId": self.project_id,
            "partnerId": self.project_id,
        }


def tenant_of(rng: random.Random) -> VideoTenant:
    return VideoTenant(project_id=rng.randint(10_000_000, 99_999_999), application_id=uuid_of(rng))


def uuid_of(rng: random.Random) -> str:
    """A version-4 UUID from ``rng`` (Vonage's connection, stream and archive ids are)."""
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


@dataclass(frozen=True, slots=True)
class StreamSpan:
    """A published stream, as an archive sees it."""

    stream_id: str
    start_ms: int
    end_ms: int
    has_video: bool


class SessionWriter:
    """Collects one instance's callbacks with the times Vonage sends them."""

    def __init__(
        self,
        rng: random.Random,
        *,
        session_id: str,
        tenant: VideoTenant,
        t0: int,
        time_scale: float,
    ) -> None:
        self.rng = rng
        self.session_id = session_id
        self.tenant = tenant
        self._t0 = t0
        self._time_scale = time_scale
        self.out: Timeline = []
        self.streams: list[StreamSpan] = []
        """Every stream published, for the archive's ``streams``."""

    def at(self, offset_ms: int) -> int:
        """Epoch ms of a meeting-time offset, compressed by the time scale like the sends."""
        return self._t0 + round(offset_ms / self._time_scale)

    def sent(self, offset_ms: int, body: Body) -> tuple[int, Body]:
        """``body`` as it leaves Vonage a moment after the event at ``offset_ms``."""
        return self.at(offset_ms + self.rng.randint(*_LATENCY_MS)), body

    def monitoring(
        self, offset_ms: int, event: str, *, reason: str | None = None, **objects: Body
    ) -> Body:
        """A session monitoring body, its fields in the order of the docs' examples."""
        body: Body = {"sessionId": self.session_id, **self.tenant.session_fields(), "event": event}
        if reason is not None:
            body["reason"] = reason
        body["timestamp"] = self.at(offset_ms)
        return {**body, **objects}

    def lane(self, events: list[tuple[int, Body]]) -> None:
        """One connection's callbacks: sent in the order they happened (a stable sort by
        event time; send times never go backwards, whatever each one's latency)."""
        previous = 0
        for offset_ms, body in sorted(events, key=lambda event: event[0]):
            previous = max(self.sent(offset_ms, body)[0], previous)
            self.out.append((previous, body))
