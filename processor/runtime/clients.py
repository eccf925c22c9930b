"""What the runtime needs from Kafka and from time, as narrow interfaces passed in.

The service never builds a client itself: it gets a ``RuntimeClients`` (``kafka_clients`` for the
real thing), so every failure path (a send that fails, a commit that fails, a restore that fails
or hangs, records arriving during recovery) can be exercised with fakes as well as with a broker.
The protocols list only the parts of aiokafka's API the runtime calls, with aiokafka's meaning.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.structs import TopicPartition

from processor.runtime.assignor import StickyAssignor
from processor.runtime.changelog_read import ChangelogRead, read_changelog
from processor.runtime.partition import RawRecord
from processor.runtime.starting import start_or_close
from processor.settings import ProcessorSettings
from servicekit.aiokafka_internals import (
    RoundRobinPartitionAssignor,
    decode_member_assignment,
    join_with_all_protocols,
)
from servicekit.record_batches import DEFAULT_MAX_REQUEST_BYTES, BatchProducer
from servicekit.record_batches import RecordBatch as RecordBatch  # the tests' fakes name it here


class Consumer(Protocol):
    """The group consumer of the raw topic (``AIOKafkaConsumer``)."""

    async def start(self) -> None: ...
    async def stop(self) -> None: ...
    def subscribe(self, topics: list[str], *, listener: Any) -> None: ...
    async def getmany(
        self, *partitions: TopicPartition, timeout_ms: int = 0, max_records: int | None = None
    ) -> dict[TopicPartition, list[RawRecord]]: ...
    def assignment(self) -> set[TopicPartition]: ...
    def pause(self, *partitions: TopicPartition) -> None: ...
    def resume(self, *partitions: TopicPartition) -> None: ...
    def seek(self, partition: TopicPartition, offset: int) -> None: ...
    async def seek_to_beginning(self, *partitions: TopicPartition) -> bool: ...
    async def committed(self, partition: TopicPartition) -> int | None: ...
    async def commit(self, offsets: dict[TopicPartition, int]) -> None: ...
    async def position(self, partition: TopicPartition) -> int: ...
    def highwater(self, partition: TopicPartition) -> int | None: ...
    def last_stable_offset(self, partition: TopicPartition) -> int | None: ...


MAX_BATCH_BYTES = 1_000_000
"""``max_batch_size`` of the processor's producers: what one partition's batch may hold. aiokafka
keeps one produce request in flight per broker, so at its default (16 KiB) a commit writing a
partition's snapshots waited a round trip per dozen records. Under the broker's default
``message.max.bytes`` (1,048,588 bytes per batch), like every record the processor writes."""

MAX_REQUEST_BYTES = DEFAULT_MAX_REQUEST_BYTES
"""The producers' ``max_request_size`` (aiokafka's default): the largest record they accept."""


class Producer(BatchProducer, Protocol):
    """A producer of derived records (``AIOKafkaProducer``), transactional or not; its record
    batches are ``servicekit.record_batches``'."""

    async def start(self) -> None: ...
    async def stop(self) -> None: ...
    async def begin_transaction(self) -> None: ...
    async def commit_transaction(self) -> None: ...
    async def abort_transaction(self) -> None: ...
    async def send_offsets_to_transaction(
        self, offsets: dict[TopicPartition, int], group_id: str
    ) -> None: ...


ProducerFactory = Callable[[str | None, str], Producer]
"""``(transactional_id or None, client_id)`` to a producer, not started yet."""


class ChangelogReader(Protocol):
    async def read(self, starts: Mapping[int, int | None]) -> dict[int, ChangelogRead]:
        """Each partition of ``starts`` of the changelog, from its start offset (``None``: its
        beginning) to its last stable offset: what the last committed transaction left."""
        ...


@dataclass(frozen=True, slots=True)
class GroupSnapshot:
    """The processor group as its coordinator describes it, settled (not rebalancing)."""

    partitions: int
    """Partitions of the raw topic."""
    owners: dict[str, frozenset[int]]
    """The raw-topic partitions each member owns now, by member id."""


class GroupView(Protocol):
    async def describe(self, topic: str) -> GroupSnapshot | None:
        """The group now; ``None`` while it rebalances (what members own is then unknown)."""
        ...


class Clock(Protocol):
    def wall_ms(self) -> int:
        """Epoch milliseconds: what idle expiry compares receive times with once caught up."""
        ...

    def monotonic(self) -> float:
        """Seconds, for intervals (commit pacing, deadlines)."""
        ...


class SystemClock:
    def wall_ms(self) -> int:
        return time.time_ns() // 1_000_000

    def monotonic(self) -> float:
        return time.monotonic()


@dataclass(frozen=True, slots=True)
class RuntimeClients:
    consumer: Callable[[], Consumer]
    producer: ProducerFactory
    changelog: ChangelogReader
    group: GroupView
    clock: Clock


class KafkaChangelogReader:
    """Reads partitions of the processor's changelog topic."""

    def __init__(self, settings: ProcessorSettings) -> None:
        self._settings = settings

    async def read(self, starts: Mapping[int, int | None]) -> dict[int, ChangelogRead]:
        return await read_changelog(self._settings.kafka, self._settings.topics.changelog, starts)


class KafkaGroupView:
    """Describes the processor's consumer group with the admin client."""

    def __init__(self, settings: ProcessorSettings) -> None:
        self._settings = settings

    async def describe(self, topic: str) -> GroupSnapshot | None:
        admin = AIOKafkaAdminClient(
            **self._settings.kafka.client_options(), client_id="meetings-processor-group"
        )
        await start_or_close(admin.start, admin.close)
        try:
            [response] = await admin.describe_consumer_groups([self._settings.group_id])
            # Every topic: a metadata request naming a topic can create it on a cluster that
            # auto-creates topics.
            metadata = await admin.describe_topics()
        finally:
            await admin.close()
        [group] = response.to_object()["groups"]
        partitions = sum(len(t["partitions"]) for t in metadata if t["topic"] == topic)
        return group_snapshot(group, topic, partitions)


def group_snapshot(group: dict[str, Any], topic: str, partitions: int) -> GroupSnapshot | None:
    """A DescribeGroups answer as a ``GroupSnapshot``; ``None`` while the group rebalances.

    A group that is empty or does not exist yet has no owners: a newcomer gets everything."""
    if group["error_code"] != 0 or group["state"] not in _SETTLED:
        return None
    owners: dict[str, frozenset[int]] = {}
    for member in group["members"]:
        if not member["member_assignment"]:
            return None
        owners[member["member_id"]] = frozenset(
            tp.partition
            for tp in decode_member_assignment(member["member_assignment"])
            if tp.topic == topic
        )
    return GroupSnapshot(partitions=partitions, owners=owners)


_SETTLED = {"Stable", "Empty", "Dead"}
"""Group states in which what each member owns is known (``Dead``: no such group yet)."""


def assignment_strategy() -> tuple[object, ...]:
    """Sticky first; round-robin while members of an older version are in the group."""
    return (StickyAssignor(), RoundRobinPartitionAssignor)


def kafka_clients(settings: ProcessorSettings) -> RuntimeClients:
    """The real clients, configured from ``settings``."""
    # Two assignors: without the repair each join would cost two rebalances.
    join_with_all_protocols()

    def consumer() -> Consumer:
        consumer: Consumer = AIOKafkaConsumer(
            **settings.kafka.client_options(),
            group_id=settings.group_id,
            client_id="meetings-processor",
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            isolation_level="read_committed",
            max_poll_records=settings.commit_max_records,
            session_timeout_ms=settings.consumer_session_timeout_ms,
            heartbeat_interval_ms=settings.consumer_heartbeat_interval_ms,
            partition_assignment_strategy=assignment_strategy(),
        )
        return consumer

    def producer(transactional_id: str | None, client_id: str) -> Producer:
        if transactional_id is None:
            shared: Producer = AIOKafkaProducer(
                **settings.kafka.producer_options(),
                enable_idempotence=True,
                client_id=client_id,
                max_batch_size=MAX_BATCH_BYTES,
            )
            return shared
        transactional: Producer = AIOKafkaProducer(
            **settings.kafka.producer_options(),
            transactional_id=transactional_id,
            transaction_timeout_ms=settings.transaction_timeout_ms,
            enable_idempotence=True,
            client_id=client_id,
            linger_ms=0,
            max_batch_size=MAX_BATCH_BYTES,
        )
        return transactional

    return RuntimeClients(
        consumer=consumer,
        producer=producer,
        changelog=KafkaChangelogReader(settings),
        group=KafkaGroupView(settings),
        clock=SystemClock(),
    )
