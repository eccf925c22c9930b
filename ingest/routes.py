"""The callback routes and what differs between them (contract §3, §7).

Every callback route runs the same receive pipeline (``ingest.app.CallbackReceiver``): the same
durability, limits, read timeout, hostile-input handling and ``503`` semantics. A route decides
only its source's part: how a request is authenticated, how its body is inspected (and so
keyed), and what success is answered.

* Vonage Meetings: ``/callbacks`` and the three URLs Vonage lets an application configure;
  the shared token and/or ``INGEST_JWT_SECRET``; keyed by ``session_id``, else ``room_id``;
  ``204``.
* Vonage Video: ``/video/sessions`` (session monitoring) and ``/video/archives`` (archive
  status), each signed with its own secret or unsigned; keyed by ``sessionId``; ``200`` with an
  empty body, which is what Vonage documents as delivered.

The raw record's ``source-route`` header is the route's path: the processor picks the decoder
of a record's source by it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

from ingest.checks.auth import Authenticator, meetings_authenticator, video_authenticator
from ingest.checks.validation import MEETINGS_BODY, KeyedView, Rejection
from ingest.checks.video import VIDEO_BODY
from ingest.settings import IngestSettings
from schemas.sources import (
    MEETINGS_ROUTES,
    VIDEO_ARCHIVES_ROUTE,
    VIDEO_ROUTES,
    VIDEO_SESSIONS_ROUTE,
)

__all__ = ["CALLBACK_ROUTES", "VIDEO_ARCHIVES_ROUTE", "VIDEO_ROUTES", "VIDEO_SESSIONS_ROUTE"]

logger = logging.getLogger(__name__)

CALLBACK_ROUTES = MEETINGS_ROUTES
"""The Vonage Meetings routes."""

Inspect = Callable[[bytes], KeyedView | Rejection]


@dataclass(frozen=True, slots=True)
class CallbackRoute:
    """One callback route: its path and its source's checks and answer."""

    path: str
    authenticator: Authenticator
    inspect: Inspect
    """The body's view (its key) or why it is refused."""
    accepted_status: int
    """The answer once the record is stored: ``204``, or ``200`` with an empty body."""
    source_route: bytes
    """The stored record's ``source-route`` header: the path."""


def callback_routes(settings: IngestSettings) -> list[CallbackRoute]:
    """Every callback route, Meetings' then Video's. Says once, at start, which Video route
    accepts unsigned callbacks while the Meetings routes are authenticated."""
    meetings = meetings_authenticator(settings)
    routes = [
        CallbackRoute(path, meetings, MEETINGS_BODY.inspect, 204, path.encode())
        for path in CALLBACK_ROUTES
    ]
    for path, secret, setting in (
        (VIDEO_SESSIONS_ROUTE, settings.video_sessions_secret, "INGEST_VIDEO_SESSIONS_SECRET"),
        (VIDEO_ARCHIVES_ROUTE, settings.video_archives_secret, "INGEST_VIDEO_ARCHIVES_SECRET"),
    ):
        if secret is None and meetings.configured:
            logger.warning(
                "%s accepts unsigned callbacks: the Meetings authentication does not apply to "
                "Vonage Video callbacks; set %s to require signed ones",
                path,
                setting,
            )
        video = video_authenticator(settings, secret, setting=setting)
        routes.append(CallbackRoute(path, video, VIDEO_BODY.inspect, 200, path.encode()))
    return routes
