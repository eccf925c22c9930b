"""What the HTTP edge needs of wherever callbacks are stored: the ``Publisher`` interface.

Production's is ``ingest.kafka.publisher.RawPublisher`` (the raw topic, ``acks=all``); the
tests' is an in-memory fake (``tests/ingest/fake_publisher.py``), so ingest's HTTP behaviour is
tested without a broker. ``init_app`` and the server take one as a parameter.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, Self

Headers = Sequence[tuple[str, bytes]]
"""A stored record's headers: names and raw values."""


class PublishError(Exception):
    """The callback was not durably stored in time; the client should retry later (503)."""

    def __init__(self, cause: str, detail: str | None = None) -> None:
        super().__init__(cause)
        self.cause = cause
        """A short label (``timeout``, ``not_connected``, ``topic_missing``...)."""
        self.detail = detail or f"Kafka did not store the callback ({cause})"
        """What the client is told."""


class Publisher(Protocol):
    """Stores raw callbacks durably; ``start()``/``stop()``, also as ``async with``."""

    @property
    def ready(self) -> bool:
        """True while a callback handed over now would be stored (readiness)."""
        ...

    @property
    def topic_missing(self) -> bool:
        """True while the store is reachable but the raw topic does not exist."""
        ...

    async def publish(
        self, body: bytes, key: bytes | None, headers: Headers, timestamp_ms: int
    ) -> None:
        """Return once the record (``body`` byte for byte, partitioned by ``key``) is
        acknowledged as stored; raise ``PublishError`` if it cannot be within the produce
        timeout."""
        ...

    async def start(self) -> None: ...

    async def stop(self) -> None:
        """Deliver what is pending (bounded), then close. Idempotent."""
        ...

    async def __aenter__(self) -> Self: ...

    async def __aexit__(self, *_: object) -> None: ...
