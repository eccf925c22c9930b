"""An in-memory ``Publisher`` (``ingest.publication``) for ingest's broker-free HTTP tests.

Its behaviour is a plain attribute a test sets: acknowledge (the default), fail with a
``PublishError``, hang until released, the raw topic missing, or not ready. What Kafka itself
does (durability, outages, topic creation) is proved by the real-broker tests beside these.
"""

from __future__ import annotations

import asyncio
import enum
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Self

from ingest.publication import Headers, PublishError


class Mode(enum.Enum):
    ACKNOWLEDGE = "acknowledge"
    FAIL = "fail"
    """``publish`` raises ``PublishError(fail_cause)``."""
    HANG = "hang"
    """``publish`` waits until ``release()`` (then acknowledges) or its task is cancelled."""
    TOPIC_MISSING = "topic_missing"
    """``publish`` raises ``PublishError("topic_missing")``; ``topic_missing`` is True."""


@dataclass(frozen=True, slots=True)
class Published:
    body: bytes
    key: bytes | None
    headers: Sequence[tuple[str, bytes]]
    timestamp_ms: int

    def header(self, name: str) -> bytes:
        return dict(self.headers)[name]


@dataclass
class FakePublisher:
    mode: Mode = Mode.ACKNOWLEDGE
    fail_cause: str = "timeout"
    connected: bool = True
    """False: not ready (``kafka_unavailable``) whatever the mode."""
    records: list[Published] = field(default_factory=list)
    """Every acknowledged record, in acknowledgement order."""
    started: bool = False
    stopped: bool = False
    waiting: int = 0
    """``publish`` calls hanging right now."""
    events: list[str] = field(default_factory=list)
    """``"started"``, ``"stored"`` (one per acknowledged record), ``"stopped"``, in order."""
    _released: asyncio.Event = field(default_factory=asyncio.Event)
    _changed: asyncio.Condition = field(default_factory=asyncio.Condition)

    @property
    def ready(self) -> bool:
        return self.connected and self.started and not self.stopped and not self.topic_missing

    @property
    def topic_missing(self) -> bool:
        return self.connected and self.mode is Mode.TOPIC_MISSING

    async def publish(
        self, body: bytes, key: bytes | None, headers: Headers, timestamp_ms: int
    ) -> None:
        if not self.connected or not self.started:
            raise PublishError("not_connected")
        if self.mode is Mode.FAIL:
            raise PublishError(self.fail_cause)
        if self.mode is Mode.TOPIC_MISSING:
            raise PublishError("topic_missing", "the raw topic does not exist")
        if self.mode is Mode.HANG:
            self.waiting += 1
            await self._notify()
            try:
                await self._released.wait()
            finally:
                self.waiting -= 1
        self.records.append(Published(body, key, list(headers), timestamp_ms))
        self.events.append("stored")
        await self._notify()

    def release(self) -> None:
        """Acknowledge every hanging ``publish`` (and later ones: back to acknowledging)."""
        self.mode = Mode.ACKNOWLEDGE
        self._released.set()

    async def wait_for(self, condition: str, *, within: float = 5.0) -> None:
        """Wait until ``condition`` holds: ``"waiting"`` (a publish hangs) or ``"stored"``
        (a record was acknowledged)."""
        checks = {"waiting": lambda: self.waiting > 0, "stored": lambda: bool(self.records)}
        async with asyncio.timeout(within), self._changed:
            await self._changed.wait_for(checks[condition])

    async def _notify(self) -> None:
        async with self._changed:
            self._changed.notify_all()

    async def start(self) -> None:
        self.started = True
        self.events.append("started")

    async def stop(self) -> None:
        if not self.stopped:
            self.stopped = True
            self.events.append("stopped")

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.stop()
