"""The Kafka a fault scenario runs on: the fake of fakes.py (milliseconds) or the suite's real
broker, behind one interface, so that each scenario is written once and runs on both.

A scenario configures the settings, feeds raw callbacks, runs the processor in this event loop,
reads what it committed, and injects faults through hooks both backends honour:

* ``fail_commits(hook)``: ``hook(transactional_id)`` runs at each commit of a transactional
  producer; an exception it returns is raised instead of committing (the runtime then aborts);
* ``commit_gate(transactional_id)``: that id's commits wait while the returned gate is clear;
* ``committed_offsets_gate()``: reading the group's committed offset of a raw partition (what a
  partition's rebuild does) waits while the returned gate is clear.

Gates start open (set); ``clear()`` holds, ``set()`` releases. On the fake the hooks are the
``FakeKafka``'s own fault attributes. On the broker they sit in thin wrappers around the real
aiokafka clients the runtime takes as parameters (``kafka_clients``): every record, transaction
and offset is the broker's; the wrappers only delay or refuse a call before passing it on.
"""

from __future__ import annotations

import asyncio
import contextlib
from abc import ABC, abstractmethod
from collections import Counter
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, replace
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.structs import TopicPartition

from processor.runtime import ProcessorService, kafka_clients
from processor.runtime.clients import Consumer, Producer
from processor.settings import ProcessorSettings
from schemas import SessionEndedEvent, decode_event
from schemas.topics import HEADER_RECEIVED_AT
from servicekit.partitioner import murmur2
from tests.kafka_helpers import wait_until
from tests.processor.runtime import on_fake_kafka
from tests.processor.runtime.conftest import RawCallback, settled_ends
from tests.processor.runtime.fakes import FakeKafka, Running, fake_settings, running_on
from tests.processor.runtime.faulty_clients import (
    CommitFault,
    Faults,
    FaultyProducer,
    GatedConsumer,
)


@dataclass(frozen=True, slots=True)
class Record:
    """A committed record of a topic, as either backend reads it."""

    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: tuple[tuple[str, bytes], ...]


class Backend(ABC):
    """Where a scenario's processor runs; see the module docstring."""

    name: str
    settings: ProcessorSettings
    slowness: float
    """How many times longer the same steps take here than on the fake: for a grace period
    that must outlast some steps of a scenario."""

    def configure(self, **overrides: Any) -> None:
        """Settings for the next ``running()`` (topics and group stay)."""
        self.settings = replace(self.settings, **overrides)

    @abstractmethod
    def partition_for(self, key: bytes) -> int:
        """The raw partition a record with ``key`` lands on."""

    def sessions_on(self, partition: int, count: int, prefix: str = "s") -> list[str]:
        """``count`` session ids whose records land on raw partition ``partition``."""
        return on_fake_kafka.sessions_on(self, partition, count, prefix)

    @abstractmethod
    async def feed(self, callbacks: Sequence[RawCallback]) -> None:
        """Append ``callbacks`` to the raw topic, as ingest would."""

    @abstractmethod
    async def append(self, topic: str, key: bytes, value: bytes, *, partition: int) -> None:
        """One plain (non-transactional) record on ``topic``'s ``partition``."""

    @abstractmethod
    def running(self) -> contextlib.AbstractAsyncContextManager[Running]:
        """The processor on this backend, in this event loop; on exit it is stopped, its
        error re-raised (unless ``failure_expected``), and its last transactions settled."""

    @abstractmethod
    async def records(self, topic: str) -> list[Record]:
        """The committed records of ``topic`` readable now, partition by partition."""

    @abstractmethod
    async def committed(self, partition: int) -> int | None:
        """The processor group's committed offset of raw ``partition``."""

    @abstractmethod
    async def end(self, partition: int) -> int:
        """The end offset of raw ``partition``."""

    @abstractmethod
    def fail_commits(self, hook: CommitFault) -> None: ...

    @abstractmethod
    def commit_gate(self, transactional_id: str) -> asyncio.Event: ...

    @abstractmethod
    def committed_offsets_gate(self) -> asyncio.Event: ...

    @property
    @abstractmethod
    def aborts(self) -> int:
        """Transactions the processor aborted so far."""

    @abstractmethod
    def producers_stopped(self, transactional_id: str) -> list[bool]:
        """Whether each producer made for ``transactional_id`` so far was stopped."""


def _open_gate() -> asyncio.Event:
    gate = asyncio.Event()
    gate.set()
    return gate


class FakeBackend(Backend):
    name = "fake"
    slowness = 1.0

    def __init__(self) -> None:
        self.kafka = FakeKafka()
        self.settings = fake_settings()

    def partition_for(self, key: bytes) -> int:
        return self.kafka.partition_for(key)

    async def feed(self, callbacks: Sequence[RawCallback]) -> None:
        for callback in callbacks:
            self.kafka.append(
                self.settings.topics.raw,
                callback.key,
                callback.body,
                timestamp=callback.received_at_ms,
                headers=[(HEADER_RECEIVED_AT, str(callback.received_at_ms).encode())],
            )

    async def append(self, topic: str, key: bytes, value: bytes, *, partition: int) -> None:
        self.kafka.append(topic, key, value, partition=partition)

    def running(self) -> contextlib.AbstractAsyncContextManager[Running]:
        return running_on(self.kafka, self.settings)

    async def records(self, topic: str) -> list[Record]:
        return [
            Record(r.partition, r.offset, r.key, r.value, tuple(r.headers))
            for r in self.kafka.records(topic)
        ]

    async def committed(self, partition: int) -> int | None:
        return self.kafka.committed.get(TopicPartition(self.settings.topics.raw, partition))

    async def end(self, partition: int) -> int:
        return self.kafka.end(TopicPartition(self.settings.topics.raw, partition))

    def fail_commits(self, hook: CommitFault) -> None:
        self.kafka.fail_commit = hook

    def commit_gate(self, transactional_id: str) -> asyncio.Event:
        gate = self.kafka.commit_gates[transactional_id] = _open_gate()
        return gate

    def committed_offsets_gate(self) -> asyncio.Event:
        gate = self.kafka.committed_gate = _open_gate()
        return gate

    @property
    def aborts(self) -> int:
        return self.kafka.aborts

    def producers_stopped(self, transactional_id: str) -> list[bool]:
        return [p.stopped for p in self.kafka.producers if p.transactional_id == transactional_id]


class RealBackend(Backend):
    """The suite's broker, with the topics and group of the ``settings`` fixture."""

    name = "real"
    slowness = 10.0

    def __init__(self, settings: ProcessorSettings) -> None:
        self.settings = settings
        self._faults = Faults()

    @property
    def _bootstrap(self) -> str:
        return self.settings.kafka.bootstrap_servers

    def partition_for(self, key: bytes) -> int:
        return (murmur2(key) & 0x7FFFFFFF) % self.settings.topic_partitions

    async def feed(self, callbacks: Sequence[RawCallback]) -> None:
        # Room for a raw record of almost 1 MB, as ingest's own producer allows.
        producer = AIOKafkaProducer(
            bootstrap_servers=self._bootstrap, enable_idempotence=True, max_request_size=2_000_000
        )
        await producer.start()
        try:
            for callback in callbacks:
                await producer.send(
                    self.settings.topics.raw,
                    value=callback.body,
                    key=callback.key,
                    timestamp_ms=callback.received_at_ms,
                    headers=[(HEADER_RECEIVED_AT, str(callback.received_at_ms).encode())],
                )
            await producer.flush()
        finally:
            await producer.stop()

    async def append(self, topic: str, key: bytes, value: bytes, *, partition: int) -> None:
        producer = AIOKafkaProducer(bootstrap_servers=self._bootstrap)
        await producer.start()
        try:
            await producer.send_and_wait(topic, value=value, key=key, partition=partition)
        finally:
            await producer.stop()

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[Running]:
        real = kafka_clients(self.settings)
        faults = self._faults

        def consumer() -> Consumer:
            return GatedConsumer(real.consumer(), faults)

        def producer(transactional_id: str | None, client_id: str) -> Producer:
            made = FaultyProducer(
                real.producer(transactional_id, client_id), transactional_id, faults
            )
            faults.producers.append(made)
            return made

        service = ProcessorService(
            self.settings, replace(real, consumer=consumer, producer=producer)
        )
        stop = asyncio.Event()
        run = Running(service, asyncio.create_task(service.run(stop)), stop)
        try:
            yield run
        finally:
            stop.set()
            await asyncio.wait({run.task}, timeout=60)
            assert run.task.done(), "the processor did not stop"
            if not run.failure_expected:
                run.task.result()
        await self._settle()

    async def _settle(self) -> None:
        """Wait until the markers of the processor's last transactions are written: until then
        a read_committed reader does not see their records."""
        topics = self.settings.topics
        names = (topics.dlq, topics.sessions, topics.participants, topics.recordings,
                 topics.rooms, topics.session_state, topics.changelog)  # fmt: skip
        partitions = [
            TopicPartition(n, p) for n in names for p in range(self.settings.topic_partitions)
        ]
        reader = AIOKafkaConsumer(
            bootstrap_servers=self._bootstrap, isolation_level="read_committed"
        )
        await reader.start()
        try:
            await settled_ends(self._bootstrap, reader, partitions)
        finally:
            await reader.stop()

    async def records(self, topic: str) -> list[Record]:
        # Up to the last stable offset: an open transaction (a commit held by a test) hides
        # what follows it on its partition, not the other partitions.
        reader = AIOKafkaConsumer(
            bootstrap_servers=self._bootstrap,
            enable_auto_commit=False,
            isolation_level="read_committed",
            auto_offset_reset="earliest",
        )
        await reader.start()
        try:
            assigned = [TopicPartition(topic, p) for p in range(self.settings.topic_partitions)]
            reader.assign(assigned)
            ends: dict[TopicPartition, int] = await reader.end_offsets(assigned)
            await reader.seek_to_beginning(*assigned)
            read: list[Any] = []
            remaining = {tp for tp in assigned if ends[tp] > 0}
            while remaining:
                batches = await reader.getmany(*remaining, timeout_ms=500)
                for batch in batches.values():
                    read.extend(batch)
                for tp in list(remaining):
                    if await reader.position(tp) >= ends[tp]:
                        remaining.discard(tp)
        finally:
            await reader.stop()
        read.sort(key=lambda r: (r.partition, r.offset))
        return [
            Record(r.partition, r.offset, r.key, r.value, tuple(r.headers))
            for r in read
            if r.offset < ends[TopicPartition(topic, r.partition)]
        ]

    async def committed(self, partition: int) -> int | None:
        admin = AIOKafkaAdminClient(bootstrap_servers=self._bootstrap)
        await admin.start()
        try:
            offsets = await admin.list_consumer_group_offsets(self.settings.group_id)
        finally:
            await admin.close()
        found = offsets.get(TopicPartition(self.settings.topics.raw, partition))
        return None if found is None or found.offset < 0 else int(found.offset)

    async def end(self, partition: int) -> int:
        reader = AIOKafkaConsumer(bootstrap_servers=self._bootstrap)
        await reader.start()
        try:
            tp = TopicPartition(self.settings.topics.raw, partition)
            ends: dict[TopicPartition, int] = await reader.end_offsets([tp])
            return ends[tp]
        finally:
            await reader.stop()

    def fail_commits(self, hook: CommitFault) -> None:
        self._faults.fail_commit = hook

    def commit_gate(self, transactional_id: str) -> asyncio.Event:
        gate = self._faults.commit_gates[transactional_id] = _open_gate()
        return gate

    def committed_offsets_gate(self) -> asyncio.Event:
        gate = self._faults.committed_gate = _open_gate()
        return gate

    @property
    def aborts(self) -> int:
        return self._faults.aborts

    def producers_stopped(self, transactional_id: str) -> list[bool]:
        return [p.stopped for p in self._faults.producers if p.transactional_id == transactional_id]


async def events(backend: Backend, topic: str) -> list[Any]:
    return [decode_event(r.value) for r in await backend.records(topic) if r.value is not None]


async def summaries(backend: Backend) -> dict[str, SessionEndedEvent]:
    """The latest summary of each ended session."""
    latest: dict[str, SessionEndedEvent] = {}
    for event in await events(backend, backend.settings.topics.sessions):
        if isinstance(event, SessionEndedEvent) and event.session_id is not None:
            latest[event.session_id] = event
    return latest


async def all_ended(backend: Backend, sessions: Sequence[str], what: str = "") -> None:
    async def ended() -> bool:
        return set(sessions) <= set(await summaries(backend))

    await wait_until(ended, what=what or f"{len(sessions)} sessions to end", within=60)


async def duplicates(backend: Backend) -> list[str]:
    """Event ids published more than once on the derived topics."""
    topics = backend.settings.topics
    ids = Counter[str]()
    for topic in (topics.sessions, topics.participants, topics.recordings):
        ids.update(e.event_id for e in await events(backend, topic))
    return [event_id for event_id, n in ids.items() if n > 1]


async def dlq_sources(backend: Backend) -> list[tuple[int, int]]:
    """``(source partition, source offset)`` of every DLQ record, in order."""
    found = []
    for record in await backend.records(backend.settings.topics.dlq):
        headers = dict(record.headers)
        found.append((int(headers["source-partition"]), int(headers["source-offset"])))
    return found
