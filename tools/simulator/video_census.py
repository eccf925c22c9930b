"""What a Video plan amounts to in Vonage Video terms, for the simulator's summary: counted from
the bodies it sends (each distinct body once), so it says what ingest was given."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import orjson


@dataclass(frozen=True, slots=True, kw_only=True)
class VideoCensus:
    sessions: int
    """Distinct session ids."""
    instances: int
    """Uses of them (``sessionCreated``s): a reused session id counts once per use."""
    people: int
    """Distinct token ``userId``s per session."""
    connections: int
    network_drops: int
    """Connections lost with ``networkDisconnected``."""
    streams: int
    screen_shares: int
    audio_only: int
    archives: int
    archives_paused: int
    uploaded_before_stopped: int
    """Archives whose ``uploaded`` is sent before their ``stopped``."""

    def lines(self) -> list[str]:
        return [
            f"  video      {_count(self.sessions, 'session')} ({self.instances} instances), "
            f"{_count(self.people, 'person', 'people')} on "
            f"{_count(self.connections, 'connection')} ({self.network_drops} network drops)",
            f"             {_count(self.streams, 'stream')} ({self.screen_shares} screen shares, "
            f"{self.audio_only} audio only), {_count(self.archives, 'archive')} "
            f"({self.archives_paused} paused, {self.uploaded_before_stopped} uploaded before "
            "stopped)",
        ]


def census(bodies: Iterable[bytes]) -> VideoCensus:
    """Counts over ``bodies`` in send order; re-sends count once."""
    sessions: set[str] = set()
    instances = drops = 0
    people: set[tuple[str, str]] = set()
    connections: set[str] = set()
    streams: dict[str, str | None] = {}
    archives: set[str] = set()
    paused: set[str] = set()
    stopped: set[str] = set()
    uploaded_first: set[str] = set()
    for raw in dict.fromkeys(bodies):
        body = orjson.loads(raw)
        session_id, event = body["sessionId"], body["event"]
        sessions.add(session_id)
        match event:
            case "sessionCreated":
                instances += 1
            case "connectionCreated":
                connections.add(body["connection"]["id"])
                people.add((session_id, _user(body["connection"].get("data"))))
            case "connectionDestroyed" if body.get("reason") == "networkDisconnected":
                drops += 1
            case "streamCreated":
                streams[body["stream"]["id"]] = body["stream"].get("videoType")
            case "archive":
                archive_id, status = body["id"], body["status"]
                archives.add(archive_id)
                if status == "paused":
                    paused.add(archive_id)
                elif status == "stopped":
                    stopped.add(archive_id)
                elif status == "uploaded" and archive_id not in stopped:
                    uploaded_first.add(archive_id)
    return VideoCensus(
        sessions=len(sessions),
        instances=instances,
        people=len(people),
        connections=len(connections),
        network_drops=drops,
        streams=len(streams),
        screen_shares=sum(kind == "screen" for kind in streams.values()),
        audio_only=sum(kind is None for kind in streams.values()),
        archives=len(archives),
        archives_paused=len(paused),
        uploaded_before_stopped=len(uploaded_first & stopped),
    )


def _user(data: str | None) -> str:
    """Who a connection is: its token data's ``userId``, else the data itself."""
    try:
        token = orjson.loads(data or "")
    except orjson.JSONDecodeError:
        return data or ""
    return str(token.get("userId", data)) if isinstance(token, dict) else str(data)


def _count(number: int, noun: str, plural: str | None = None) -> str:
    return f"{number} {noun}" if number == 1 else f"{number} {plural or noun + 's'}"
