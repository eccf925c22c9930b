"""Steady callback traffic from a sender that behaves like Vonage's: whole meetings, each callback
re-sent (same ``X-Request-Id``) until it gets a 2xx, every attempt remembered."""

from __future__ import annotations

import asyncio
import itertools
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import aiohttp


def timestamp(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


@dataclass
class Meeting:
    session_id: str
    room_id: str
    participants: list[str]
    started_at: str = ""
    ended_at: str = ""

    @property
    def duration_s(self) -> float:
        started = datetime.fromisoformat(self.started_at.replace("Z", "+00:00"))
        ended = datetime.fromisoformat(self.ended_at.replace("Z", "+00:00"))
        return (ended - started).total_seconds()


@dataclass
class Attempt:
    request_id: str
    done: float
    """``time.monotonic()`` when the answer (or the failure) came."""
    status: int | None
    """``None``: no answer within the sender's timeout, or no connection."""


@dataclass
class MeetingLoad:
    """``workers`` concurrent senders, each playing one meeting after another until ``stop()``;
    a meeting in progress is always finished, so every meeting in ``completed`` is whole."""

    http: aiohttp.ClientSession
    url: str
    workers: int = 4
    participants: int = 3
    pause_s: float = 0.02
    """Between two callbacks of one sender: keeps the rate steady (about 150/s with 4)."""
    attempts: list[Attempt] = field(default_factory=list)
    acknowledged: set[str] = field(default_factory=set)
    completed: list[Meeting] = field(default_factory=list)
    _stopping: bool = False
    _tasks: list[asyncio.Task[None]] = field(default_factory=list)

    def start(self) -> None:
        self._tasks = [asyncio.create_task(self._sender()) for _ in range(self.workers)]

    async def stop(self) -> None:
        self._stopping = True
        await asyncio.gather(*self._tasks)

    def successes_since(self, moment: float) -> int:
        return sum(1 for a in self.attempts if a.done >= moment and a.status and a.status < 300)

    def longest_gap_without_2xx(self, since: float, until: float) -> float:
        """The longest time within [since, until] during which no callback got a 2xx."""
        moments = sorted(
            a.done
            for a in self.attempts
            if a.status and a.status < 300 and since <= a.done <= until
        )
        edges = [since, *moments, until]
        return max(later - earlier for earlier, later in itertools.pairwise(edges))

    def refused(self) -> int:
        return sum(1 for a in self.attempts if not a.status or a.status >= 300)

    async def _sender(self) -> None:
        while not self._stopping:
            meeting = Meeting(
                session_id=f"fault-{uuid.uuid4().hex}",
                room_id=f"room-{uuid.uuid4().hex[:8]}",
                participants=[f"p-{uuid.uuid4().hex[:12]}" for _ in range(self.participants)],
            )
            meeting.started_at = timestamp(datetime.now(UTC))
            common = {"session_id": meeting.session_id, "room_id": meeting.room_id}
            await self._deliver({"event": "session:started", **common,
                                 "started_at": meeting.started_at})  # fmt: skip
            for kind in ("joined", "left"):
                for participant in meeting.participants:
                    await self._deliver({"event": f"session:participant:{kind}", **common,
                                         "participant_id": participant, "name": participant,
                                         "type": "Guest", "is_host": False})  # fmt: skip
            meeting.ended_at = timestamp(datetime.now(UTC))
            await self._deliver({"event": "session:ended", **common,
                                 "started_at": meeting.started_at,
                                 "ended_at": meeting.ended_at})  # fmt: skip
            self.completed.append(meeting)

    async def _deliver(self, body: dict[str, Any]) -> None:
        request_id = uuid.uuid4().hex
        while True:
            status: int | None = None
            try:
                async with self.http.post(
                    f"{self.url}/callbacks", json=body, headers={"X-Request-Id": request_id}
                ) as response:
                    status = response.status
            except (aiohttp.ClientError, TimeoutError):
                status = None
            self.attempts.append(Attempt(request_id, time.monotonic(), status))
            if status is not None and status < 300:
                self.acknowledged.add(request_id)
                await asyncio.sleep(self.pause_s)  # pacing of the steady load
                return
            await asyncio.sleep(0.2)  # the sender's retry back-off
