"""Scripted meetings on the fake Kafka, and what the processor derived from them."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from typing import Any, Protocol

from processor.settings import ProcessorSettings
from schemas import SessionEndedEvent, decode_event
from schemas.topics import HEADER_RECEIVED_AT
from tests.processor.runtime.conftest import RawCallback
from tests.processor.runtime.fakes import FakeKafka, FakeRecord
from tests.processor.runtime.scripted_meeting import (  # re-exported
    PARTICIPANT_SECONDS as PARTICIPANT_SECONDS,
)
from tests.processor.runtime.scripted_meeting import meetings as meetings


class Partitioned(Protocol):
    def partition_for(self, key: bytes) -> int:
        """The raw partition a record with ``key`` lands on."""
        ...


def sessions_on(kafka: Partitioned, partition: int, count: int, prefix: str = "s") -> list[str]:
    """``count`` session ids whose records land on raw partition ``partition``."""
    found: list[str] = []
    n = 0
    while len(found) < count:
        session_id = f"2_MX40-{prefix}-{n}"
        if kafka.partition_for(session_id.encode()) == partition:
            found.append(session_id)
        n += 1
    return found


def feed(kafka: FakeKafka, settings: ProcessorSettings, callbacks: Iterable[RawCallback]) -> None:
    for callback in callbacks:
        kafka.append(
            settings.topics.raw,
            callback.key,
            callback.body,
            timestamp=callback.received_at_ms,
            headers=[(HEADER_RECEIVED_AT, str(callback.received_at_ms).encode())],
        )


def events(kafka: FakeKafka, topic: str) -> list[Any]:
    return [decode_event(r.value) for r in kafka.records(topic) if r.value is not None]


def summaries(kafka: FakeKafka, settings: ProcessorSettings) -> dict[str, SessionEndedEvent]:
    latest: dict[str, SessionEndedEvent] = {}
    for event in events(kafka, settings.topics.sessions):
        if isinstance(event, SessionEndedEvent) and event.session_id is not None:
            latest[event.session_id] = event
    return latest


def duplicates(kafka: FakeKafka, settings: ProcessorSettings) -> list[str]:
    """Event ids published more than once on the derived topics."""
    topics = settings.topics
    ids = Counter(
        e.event_id
        for topic in (topics.sessions, topics.participants, topics.recordings)
        for e in events(kafka, topic)
    )
    return [event_id for event_id, n in ids.items() if n > 1]


def dlq_offsets(kafka: FakeKafka, settings: ProcessorSettings) -> list[tuple[int, int]]:
    """``(source partition, source offset)`` of every DLQ record, in order."""
    return [_source(r) for r in kafka.records(settings.topics.dlq)]


def _source(record: FakeRecord) -> tuple[int, int]:
    headers = dict(record.headers)
    return int(headers["source-partition"]), int(headers["source-offset"])
