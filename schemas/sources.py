"""The callback sources and the ingest routes each arrives on (contract §3, §7).

Ingest records the route of every callback in the raw record's ``source-route`` header; the
processor decodes a record with its source's decoder accordingly.
"""

from __future__ import annotations

MEETINGS_ROUTES = ("/callbacks", "/callbacks/rooms", "/callbacks/sessions", "/callbacks/recordings")
"""Vonage Meetings: any callback, or the three URLs Vonage lets an application configure."""

VIDEO_SESSIONS_ROUTE = "/video/sessions"
"""Vonage Video API session monitoring (sessions, connections, streams)."""
VIDEO_ARCHIVES_ROUTE = "/video/archives"
"""Vonage Video API archive status."""
VIDEO_ROUTES = (VIDEO_SESSIONS_ROUTE, VIDEO_ARCHIVES_ROUTE)

_VIDEO_PREFIX = b"/video/"


def is_video_route(route: bytes) -> bool:
    """Whether a ``source-route`` header names a Video API route."""
    return route.startswith(_VIDEO_PREFIX)
