"""Realistic raw callbacks of many concurrent meetings, as ingest writes them to the raw topic.

Each meeting comes from ``tools.simulator.meetings`` (shared with ``meetings-simulate``): 2-12
participants, about 30% with a recording; about 1% of callbacks are retried by Vonage. Receive
times lie in the hour before ``now_ms`` (older raw records would fall to the topic's time
retention), and meetings overlap, so thousands are active at once.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Callable
from dataclasses import dataclass

import orjson

from schemas.topics import (
    HEADER_CONTENT_TYPE,
    HEADER_RECEIVED_AT,
    HEADER_REQUEST_ID,
    HEADER_SOURCE_ROUTE,
)
from tools.simulator.meetings import MINUTE_MS, Body, Timeline, meeting, session_id_of

__all__ = ["MINUTE_MS", "Body", "RawCallback", "meeting", "raw_callbacks", "session_id_of"]


@dataclass(frozen=True, slots=True)
class RawCallback:
    """A raw-topic record as ingest would write it."""

    body: bytes
    key: bytes
    received_at_ms: int
    route: bytes = b"/callbacks"
    """The ingest route it came in on (``source-route``): it picks the processor's decoder."""

    def headers(self, number: int) -> list[tuple[str, bytes]]:
        return [
            (HEADER_RECEIVED_AT, str(self.received_at_ms).encode()),
            (HEADER_SOURCE_ROUTE, self.route),
            (HEADER_REQUEST_ID, uuid.UUID(int=number).hex.encode()),
            (HEADER_CONTENT_TYPE, b"application/json"),
        ]


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
    return in_receive_order(timeline, rng, now_ms, _raw)


def in_receive_order(
    timeline: Timeline,
    rng: random.Random,
    now_ms: int,
    raw: Callable[[Body, int], RawCallback],
) -> list[RawCallback]:
    """The timeline's callbacks as the raw topic holds them: about 1% retried by the platform
    1-30 s later, in receive order (a stable sort: callbacks sent in order stay in order),
    none received later than a second ago."""
    retries = [
        (at + rng.randint(1_000, 30_000), body) for at, body in timeline if rng.random() < 0.01
    ]
    ordered = timeline + retries
    ordered.sort(key=lambda pair: pair[0])
    return [raw(body, min(at, now_ms - 1_000)) for at, body in ordered]


def _raw(body: Body, received_at_ms: int) -> RawCallback:
    key = body.get("session_id") or body["room_id"]
    assert isinstance(key, str)
    return RawCallback(body=orjson.dumps(body), key=key.encode(), received_at_ms=received_at_ms)
