"""Realistic raw callbacks of many concurrent meetings, as ingest writes them to the raw topic.

Each meeting: ``session:started``; 2-12 participants joining over its first half and (most of
them) leaving before it ends; about 30% with a recording started, ended and uploaded;
``session:ended``; for some, ``room:expired`` a little later; about 1% of callbacks retried by
Vonage. Receive times lie in the hour before ``now_ms`` (older raw records would fall to the
topic's time retention), and meetings overlap, so thousands are active at once.
"""

from __future__ import annotations

import base64
import random
import uuid
from dataclasses import dataclass

import orjson

from schemas.timestamps import format_epoch_ms
from schemas.topics import (
    HEADER_CONTENT_TYPE,
    HEADER_RECEIVED_AT,
    HEADER_REQUEST_ID,
    HEADER_SOURCE_ROUTE,
)

MINUTE_MS = 60_000
NAMES = ("Ada Lovelace", "Alan Turing", "Grace Hopper", "Edsger Dijkstra", "Guest", None)

Body = dict[str, object]


@dataclass(frozen=True, slots=True)
class RawCallback:
    """A raw-topic record as ingest would write it."""

    body: bytes
    key: bytes
    received_at_ms: int

    def headers(self, number: int) -> list[tuple[str, bytes]]:
        return [
            (HEADER_RECEIVED_AT, str(self.received_at_ms).encode()),
            (HEADER_SOURCE_ROUTE, b"/callbacks"),
            (HEADER_REQUEST_ID, uuid.UUID(int=number).hex.encode()),
            (HEADER_CONTENT_TYPE, b"application/json"),
        ]


def session_id_of(rng: random.Random) -> str:
    """Shaped like a Vonage session id (``2_MX4…-fg``)."""
    token = base64.urlsafe_b64encode(rng.randbytes(36)).decode()
    return f"2_MX40NjMzOTg5Mn5-{token}-fg"


def meeting(
    rng: random.Random,
    *,
    session_id: str,
    t0: int,
    duration_ms: int,
    participants: int,
    recording: bool,
    ended: bool = True,
) -> list[tuple[int, Body]]:
    """``(receive time, body)`` of one meeting starting at ``t0``; unsorted.

    ``ended=False`` cuts the meeting at ``t0 + duration_ms`` (still active): callbacks due later
    are left out, so participants not yet gone stay present and a recording may still run.
    """
    room_id = str(uuid.UUID(int=rng.getrandbits(128)))
    end = t0 + duration_ms
    out: list[tuple[int, Body]] = [
        (
            t0 + rng.randint(50, 400),
            {
                "event": "session:started",
                "session_id": session_id,
                "room_id": room_id,
                "started_at": format_epoch_ms(t0),
            },
        )
    ]
    for number in range(participants):
        person: Body = {
            "participant_id": str(uuid.UUID(int=rng.getrandbits(128))),
            "session_id": session_id,
            "room_id": room_id,
            "name": rng.choice(NAMES),
            "type": "Host" if number == 0 else "Guest",
            "is_host": number == 0,
        }
        joined = t0 + rng.randint(1_000, max(duration_ms // 2, 2_000))
        out.append((joined, {"event": "session:participant:joined", **person}))
        if rng.random() < 0.8:  # the others are sent away by session:ended
            left = joined + rng.randint(1_000, max(end - joined - 1_000, 2_000))
            out.append((left, {"event": "session:participant:left", **person}))
    if recording:
        recording_id = str(uuid.UUID(int=rng.getrandbits(128)))
        started = t0 + rng.randint(5_000, max(duration_ms // 3, 10_000))
        stopped = started + rng.randint(30_000, max(end - started - 10_000, 60_000))
        times: Body = {
            "recording_id": recording_id,
            "session_id": session_id,
            "started_at": format_epoch_ms(started),
            "ended_at": format_epoch_ms(stopped),
            "duration": round((stopped - started) / 1000),
        }
        out.append((started + 300, {"event": "recording:started", **_pick(times, 2)}))
        out.append((stopped + 500, {"event": "recording:ended", **times}))
        ready: Body = {**times, "url": f"https://example.invalid/{recording_id}.mp4"}
        out.append(
            (stopped + rng.randint(20_000, 90_000), {"event": "recording:uploaded", **ready})
        )
    ending: Body = {"session_id": session_id, "room_id": room_id}
    times = {"started_at": format_epoch_ms(t0), "ended_at": format_epoch_ms(end)}
    out.append((end + rng.randint(50, 400), {"event": "session:ended", **ending, **times}))
    if rng.random() < 0.4:
        expiry: Body = {
            "event": "room:expired",
            "room_id": room_id,
            "room_type": "instant",
            "expires_at": format_epoch_ms(end + 2 * MINUTE_MS),
            "created_at": format_epoch_ms(t0 - MINUTE_MS),
        }
        out.append((end + 2 * MINUTE_MS + rng.randint(0, 2_000), expiry))
    if not ended:
        out = [(at, body) for at, body in out if at < end]
    return out


def _pick(body: Body, count: int) -> Body:
    return dict(list(body.items())[:count])


def raw_callbacks(sessions: int, *, now_ms: int, seed: int = 11) -> list[RawCallback]:
    """Every meeting's callbacks interleaved in receive order, as they reach the raw topic."""
    rng = random.Random(seed)
    timeline: list[tuple[int, Body]] = []
    for _ in range(sessions):
        duration_ms = rng.randint(5, 35) * MINUTE_MS
        t0 = now_ms - 55 * MINUTE_MS + rng.randint(0, 10 * MINUTE_MS)
        timeline += meeting(
            rng,
            session_id=session_id_of(rng),
            t0=t0,
            duration_ms=duration_ms,
            participants=rng.randint(2, 12),
            recording=rng.random() < 0.3,
        )
    retries = [
        (at + rng.randint(1_000, 30_000), body) for at, body in timeline if rng.random() < 0.01
    ]
    timeline += retries
    timeline.sort(key=lambda pair: pair[0])
    return [_raw(body, min(at, now_ms - 1_000)) for at, body in timeline]


def _raw(body: Body, received_at_ms: int) -> RawCallback:
    key = body.get("session_id") or body["room_id"]
    assert isinstance(key, str)
    return RawCallback(body=orjson.dumps(body), key=key.encode(), received_at_ms=received_at_ms)
