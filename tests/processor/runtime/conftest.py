"""Fixtures for the processor runtime against a real broker: unique topics, feeding raw
records, reading derived topics with read_committed, and a processor running in-process; and
``backend``, the fake or the real Kafka for the scenarios written once for both."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.structs import TopicPartition

from processor.runtime import ProcessorService, RuntimeClients
from processor.settings import ProcessorSettings
from schemas.topics import TopicNames
from servicekit.kafka import KafkaSettings
from tests.kafka_helpers import ConsumerRecord, create_topic, unique_name, wait_until

if TYPE_CHECKING:
    from tests.processor.runtime.backends import Backend

PARTITIONS = 4


@dataclass(frozen=True, slots=True)
class RawCallback:
    """A raw-topic record as ingest would write it."""

    body: bytes
    key: bytes | None
    received_at_ms: int
    route: bytes | None = None
    """The ``source-route`` header (``/video/...`` for Video callbacks), if any."""


@pytest.fixture
async def settings(kafka_bootstrap: str) -> ProcessorSettings:
    topics = TopicNames.with_prefix(unique_name("m") + ".")
    for name in (
        topics.raw,
        topics.dlq,
        topics.sessions,
        topics.participants,
        topics.recordings,
        topics.rooms,
    ):
        await create_topic(kafka_bootstrap, name, partitions=PARTITIONS)
    for name in (topics.session_state, topics.changelog):
        await create_topic(
            kafka_bootstrap, name, partitions=PARTITIONS, config={"cleanup.policy": "compact"}
        )
    return ProcessorSettings(
        kafka=KafkaSettings(bootstrap_servers=kafka_bootstrap, topic_prefix=topics.prefix),
        group_id=unique_name("processor"),
        commit_interval_ms=50,
        expiry_check_interval_s=0.1,
        create_topics=False,
        topic_partitions=PARTITIONS,
        http_port=0,
    )


async def feed(settings: ProcessorSettings, callbacks: Sequence[RawCallback]) -> None:
    producer = AIOKafkaProducer(
        bootstrap_servers=settings.kafka.bootstrap_servers, enable_idempotence=True
    )
    await producer.start()
    try:
        for callback in callbacks:
            await producer.send(
                settings.topics.raw,
                value=callback.body,
                key=callback.key,
                timestamp_ms=callback.received_at_ms,
                headers=[
                    ("received-at", str(callback.received_at_ms).encode()),
                    *([("source-route", callback.route)] if callback.route is not None else []),
                ],
            )
        await producer.flush()
    finally:
        await producer.stop()


async def read_all(
    bootstrap: str, topic: str, partitions: int = PARTITIONS
) -> list[ConsumerRecord]:
    """Every committed record of ``topic`` right now, partition by partition, once the
    transactions already committed on it are visible (see ``settled_ends``)."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap,
        enable_auto_commit=False,
        isolation_level="read_committed",
        auto_offset_reset="earliest",  # seek_to_beginning alone can lose a race in aiokafka
    )
    await consumer.start()
    try:
        assigned = [TopicPartition(topic, p) for p in range(partitions)]
        consumer.assign(assigned)
        ends = await settled_ends(bootstrap, consumer, assigned)
        await consumer.seek_to_beginning(*assigned)
        records: list[ConsumerRecord] = []
        remaining = {tp for tp in assigned if ends[tp] > 0}
        while remaining:
            batches = await consumer.getmany(*remaining, timeout_ms=500)
            for batch in batches.values():
                records.extend(batch)
            for tp in list(remaining):
                if await consumer.position(tp) >= ends[tp]:
                    remaining.discard(tp)
        return records
    finally:
        await consumer.stop()


async def settled_ends(
    bootstrap: str, committed: AIOKafkaConsumer, partitions: list[TopicPartition]
) -> dict[TopicPartition, int]:
    """The read_committed ends of ``partitions`` once no transaction is open on them.

    A transaction's commit returns before the broker has written its markers into the
    partitions, so right after a processor commits (or stops), its records are not yet
    readable with read_committed: the last stable offset is still behind the high watermark.
    """
    uncommitted = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await uncommitted.start()
    ends: dict[TopicPartition, int] = {}
    try:

        async def stable() -> bool:
            ends.update(await committed.end_offsets(partitions))
            high_watermarks: dict[TopicPartition, int] = await uncommitted.end_offsets(partitions)
            return ends == high_watermarks

        await wait_until(stable, what=f"no open transaction on {partitions}", within=30)
    finally:
        await uncommitted.stop()
    return ends


@contextlib.asynccontextmanager
async def running(
    settings: ProcessorSettings, clients: RuntimeClients | None = None
) -> AsyncIterator[ProcessorService]:
    """A processor in this event loop; stopped (drain, commit, leave) on exit."""
    service = ProcessorService(settings, clients)
    stop = asyncio.Event()
    task = asyncio.create_task(service.run(stop))
    try:
        yield service
    finally:
        stop.set()
        await asyncio.wait_for(task, 60)


def with_overrides(settings: ProcessorSettings, **overrides: object) -> ProcessorSettings:
    return replace(settings, **overrides)  # type: ignore[arg-type]


@pytest.fixture(
    params=[pytest.param("fake"), pytest.param("real", marks=pytest.mark.kafka)],
)
def backend(request: pytest.FixtureRequest) -> Backend:
    """The fake Kafka, or the suite's broker with unique topics (marked ``kafka``, so that
    ``-m "not kafka"`` runs the fake variant alone)."""
    # Imported here: backends builds on the helpers above.
    from tests.processor.runtime.backends import FakeBackend, RealBackend

    if request.param == "fake":
        return FakeBackend()
    return RealBackend(request.getfixturevalue("settings"))
