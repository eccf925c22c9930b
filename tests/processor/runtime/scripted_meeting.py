"""A scripted meeting as the raw records ingest would have written for it."""

from __future__ import annotations

import time
from collections.abc import Iterable

import orjson

from schemas.timestamps import format_epoch_ms
from tests.processor.runtime.conftest import RawCallback

PARTICIPANT_SECONDS = 99 + 60 + 97
"""Of every scripted meeting: Ada 99 s, Alan 60 s, Grace 97 s."""


def recent_ms(minutes_ago: float = 10) -> int:
    """A receive time in the recent past: far older records would fall to the raw topic's
    time-based retention as soon as the broker looks."""
    return time.time_ns() // 1_000_000 - int(minutes_ago * 60_000)


def _record(body: dict[str, object], at_ms: int) -> RawCallback:
    key = body.get("session_id") or body.get("room_id")
    assert isinstance(key, str)
    return RawCallback(body=orjson.dumps(body), key=key.encode(), received_at_ms=at_ms)


def scripted_meeting(session_id: str, room_id: str, *, t0: int | None = None) -> list[RawCallback]:
    """Start; Ada, Alan and Grace join; Alan leaves; a recording runs and is uploaded; the
    session ends with Ada and Grace still in it; the room expires. ``t0``: first receive time."""
    if t0 is None:
        t0 = recent_ms()

    def person(name: str) -> dict[str, object]:
        return {
            "participant_id": f"{session_id}-{name.lower()}",
            "session_id": session_id,
            "room_id": room_id,
            "name": name,
            "type": "Guest",
            "is_host": name == "Ada",
        }

    recording = {"recording_id": f"{session_id}-rec", "session_id": session_id}
    times = {"started_at": format_epoch_ms(t0 + 20_000), "ended_at": format_epoch_ms(t0 + 80_000)}
    return [
        _record({"event": "session:started", "session_id": session_id, "room_id": room_id,
                 "started_at": format_epoch_ms(t0)}, t0),
        _record({"event": "session:participant:joined", **person("Ada")}, t0 + 1_000),
        _record({"event": "participant:joined", **person("Alan")}, t0 + 2_000),
        _record({"event": "participant-joined", **person("Grace")}, t0 + 3_000),
        _record({"event": "recording:started", **recording}, t0 + 20_000),
        _record({"event": "session:participant:left", **person("Alan")}, t0 + 62_000),
        _record({"event": "recording:ended", **recording, **times, "duration": "60"},
                t0 + 80_500),
        _record({"event": "recording:uploaded", **recording, **times, "duration": 60,
                 "url": "https://example.invalid/rec.mp4"}, t0 + 95_000),
        _record({"event": "session:ended", "session_id": session_id, "room_id": room_id,
                 "started_at": format_epoch_ms(t0), "ended_at": format_epoch_ms(t0 + 100_000)},
                t0 + 100_200),
        _record({"event": "room:expired", "room_id": room_id, "room_type": "instant",
                 "expires_at": format_epoch_ms(t0 + 200_000)}, t0 + 200_100),
    ]  # fmt: skip


def meetings(session_ids: Iterable[str], *, t0: int) -> list[RawCallback]:
    """The scripted meetings of ``session_ids`` without their room expiry, one after another."""
    return [r for s in session_ids for r in scripted_meeting(s, f"room-{s}", t0=t0)[:-1]]
