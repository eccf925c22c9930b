"""In-memory stand-ins for the runtime's Kafka clients, for fast tests of its failure paths.

``FakeKafka`` is a tiny log store with one consumer group and transactions: a transactional
producer's records take their offsets when sent, as on a broker, and become visible together
with its offsets on commit, or not at all (readers stop at the first open transaction's record,
the last stable offset). Faults are
plain attributes a test sets (a commit that fails, a commit that hangs, a restore that fails or
hangs, a producer that cannot start). These fakes prove the runtime's own logic; what Kafka does
is proved by the real-broker tests beside them.
"""

from __future__ import annotations

import asyncio
import itertools
import zlib
from collections import defaultdict
from collections.abc import AsyncIterator, Callable, Iterable, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from aiokafka.errors import IllegalStateError, KafkaConnectionError, KafkaError, ProducerFenced
from aiokafka.errors import MessageSizeTooLargeError as MessageSizeTooLarge
from aiokafka.structs import TopicPartition

from processor.runtime import ProcessorService, RuntimeClients
from processor.runtime.changelog_read import ChangelogRead
from processor.runtime.clients import Clock, GroupSnapshot, Producer, RecordBatch, SystemClock
from processor.runtime.partition import RawRecord
from processor.settings import ProcessorSettings
from servicekit.kafka import KafkaSettings

MAX_REQUEST_SIZE = 1_048_576
"""aiokafka's default ``max_request_size``: a larger record fails at ``send``."""


@dataclass(frozen=True, slots=True)
class FakeRecord:
    topic: str
    partition: int
    offset: int
    timestamp: int
    key: bytes | None
    value: bytes | None
    headers: Sequence[tuple[str, bytes]] = ()
    transaction: int | None = None
    """The transaction that wrote it, if any: visible once that transaction commits."""


@dataclass(frozen=True, slots=True)
class FakeMetadata:
    """What a delivery resolves to (aiokafka's ``RecordMetadata``, in part)."""

    offset: int


@dataclass
class FakeKafka:
    partitions: int = 2
    logs: dict[TopicPartition, list[FakeRecord]] = field(default_factory=lambda: defaultdict(list))
    committed: dict[TopicPartition, int] = field(default_factory=dict)
    """The consumer group's committed offsets."""
    appended: asyncio.Event = field(default_factory=asyncio.Event)
    # Faults, set by tests.
    fail_commit: Callable[[str], Exception | None] = lambda transactional_id: None
    """Called at each commit_transaction; an exception returned is raised instead."""
    commit_gates: dict[str, asyncio.Event] = field(default_factory=dict)
    """A commit of this transactional id waits for its event."""
    fail_restore: dict[int, Exception] = field(default_factory=dict)
    restore_gates: dict[int, asyncio.Event] = field(default_factory=dict)
    committed_gate: asyncio.Event | None = None
    """``Consumer.committed`` waits for it (records can be appended meanwhile)."""
    fail_producer_start: Callable[[str | None], bool] = lambda transactional_id: False
    producers: list[FakeProducer] = field(default_factory=list)
    consumers: list[FakeConsumer] = field(default_factory=list)
    assign_at_start: bool = True
    """Whether a consumer's first ``getmany`` assigns it every partition (else the test calls
    ``rebalance``)."""
    commits: int = 0
    aborts: int = 0
    open_transactions: set[int] = field(default_factory=set)
    committed_transactions: set[int] = field(default_factory=set)
    group: GroupSnapshot | None = None
    """What describing the processor group answers (``None``: rebalancing)."""
    changelog_reads: list[tuple[int, int | None]] = field(default_factory=list)
    """Every changelog read: partition and start offset (``None``: from the beginning)."""

    def append(
        self,
        topic: str,
        key: bytes | None,
        value: bytes | None,
        *,
        partition: int | None = None,
        timestamp: int = 0,
        headers: Sequence[tuple[str, bytes]] = (),
        transaction: int | None = None,
    ) -> FakeRecord:
        if partition is None:
            partition = self.partition_for(key)
        log = self.logs[TopicPartition(topic, partition)]
        record = FakeRecord(
            topic, partition, len(log), timestamp, key, value, tuple(headers), transaction
        )
        log.append(record)
        if transaction is None:
            self.appended.set()
        return record

    def visible(self, record: FakeRecord) -> bool:
        return record.transaction is None or record.transaction in self.committed_transactions

    def stable_end(self, tp: TopicPartition) -> int:
        """The last stable offset: the first record of an open transaction, else the end."""
        for record in self.logs[tp]:
            if record.transaction in self.open_transactions:
                return record.offset
        return len(self.logs[tp])

    def partition_for(self, key: bytes | None) -> int:
        return zlib.crc32(key or b"") % self.partitions

    def records(self, topic: str) -> list[FakeRecord]:
        """The committed records of ``topic``, partition by partition."""
        return [
            r
            for tp, log in sorted(self.logs.items())
            if tp.topic == topic
            for r in log
            if self.visible(r)
        ]

    def end(self, tp: TopicPartition) -> int:
        return len(self.logs[tp])

    def clients(self, settings: ProcessorSettings, clock: Clock | None = None) -> RuntimeClients:
        return RuntimeClients(
            consumer=lambda: self.consumer(settings.topics.raw),
            producer=self.producer,
            changelog=FakeChangelogReader(self, settings.topics.changelog),
            group=FakeGroupView(self),
            clock=SystemClock() if clock is None else clock,
        )

    def consumer(self, topic: str) -> FakeConsumer:
        consumer = FakeConsumer(self, topic)
        self.consumers.append(consumer)
        return consumer

    def producer(self, transactional_id: str | None, client_id: str) -> Producer:
        producer = FakeProducer(self, transactional_id)
        self.producers.append(producer)
        return producer


class FakeConsumer:
    """A group member that owns every raw partition, assigned at its first ``getmany``."""

    def __init__(self, kafka: FakeKafka, topic: str) -> None:
        self._kafka = kafka
        self._topic = topic
        self._listener: Any = None
        self._assignment: set[TopicPartition] = set()
        self._pending: set[TopicPartition] | None = None
        self._leaving_rebalance: set[TopicPartition] | None = None
        if kafka.assign_at_start:
            self.rebalance(range(kafka.partitions))
        self._positions: dict[TopicPartition, int] = {}
        self._paused: set[TopicPartition] = set()
        self.stopped = False

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        if self._leaving_rebalance is not None:
            # aiokafka lets its coordination task finish a rebalance under way before leaving
            # the group: the listener can be called from inside stop().
            await self._rebalance(self._leaving_rebalance)
        self.stopped = True

    def subscribe(self, topics: list[str], *, listener: Any) -> None:
        self._listener = listener

    def rebalance_while_leaving(self, partitions: Iterable[int]) -> None:
        """``stop()`` first completes a rebalance that assigns ``partitions``."""
        self._leaving_rebalance = {TopicPartition(self._topic, p) for p in partitions}

    def rebalance(self, partitions: Iterable[int]) -> None:
        """The next ``getmany`` revokes everything and assigns ``partitions`` (eager)."""
        self._pending = {TopicPartition(self._topic, p) for p in partitions}

    async def getmany(
        self, *partitions: TopicPartition, timeout_ms: int = 0, max_records: int | None = None
    ) -> dict[TopicPartition, list[RawRecord]]:
        if self._pending is not None:
            await self._rebalance(self._pending)
        batches = self._drain(max_records)
        if not batches:
            self._kafka.appended.clear()
            try:
                await asyncio.wait_for(self._kafka.appended.wait(), timeout_ms / 1000)
            except TimeoutError:
                return {}
            batches = self._drain(max_records)
        return batches

    async def _rebalance(self, assigned: set[TopicPartition]) -> None:
        self._pending = None
        if self._listener is not None and self._assignment:
            await self._listener.on_partitions_revoked(sorted(self._assignment))
        self._assignment = set(assigned)
        self._paused.clear()
        self._positions = {tp: self._kafka.committed.get(tp, 0) for tp in assigned}
        if self._listener is not None:
            await self._listener.on_partitions_assigned(sorted(assigned))

    def _drain(self, max_records: int | None) -> dict[TopicPartition, list[RawRecord]]:
        budget = max_records if max_records is not None else 1 << 30
        batches: dict[TopicPartition, list[RawRecord]] = {}
        for tp in sorted(self._assignment - self._paused):
            log = self._kafka.logs[tp]
            position = self._positions[tp]
            end = min(self._kafka.stable_end(tp), position + budget)
            taken: list[RawRecord] = [r for r in log[position:end] if self._kafka.visible(r)]
            self._positions[tp] = max(position, end)
            if taken:
                batches[tp] = taken
                budget -= len(taken)
            if budget <= 0:
                break
        return batches

    def assignment(self) -> set[TopicPartition]:
        return set(self._assignment)

    def _check(self, tp: TopicPartition) -> None:
        if tp not in self._assignment:
            raise IllegalStateError(f"{tp} is not assigned")

    def pause(self, *partitions: TopicPartition) -> None:
        self._paused.update(partitions)

    def resume(self, *partitions: TopicPartition) -> None:
        self._paused.difference_update(partitions)
        self._kafka.appended.set()  # wake a waiting getmany, as a fetch would

    def paused(self) -> set[TopicPartition]:
        return set(self._paused)

    def seek(self, partition: TopicPartition, offset: int) -> None:
        self._check(partition)
        self._positions[partition] = offset

    async def seek_to_beginning(self, *partitions: TopicPartition) -> bool:
        for tp in partitions:
            self.seek(tp, 0)
        return True

    async def committed(self, partition: TopicPartition) -> int | None:
        if self._kafka.committed_gate is not None:
            await self._kafka.committed_gate.wait()
        return self._kafka.committed.get(partition)

    async def commit(self, offsets: dict[TopicPartition, int]) -> None:
        for tp in offsets:
            self._check(tp)
        self._kafka.committed.update(offsets)

    async def position(self, partition: TopicPartition) -> int:
        self._check(partition)
        return self._positions[partition]

    def highwater(self, partition: TopicPartition) -> int | None:
        self._check(partition)
        return self._kafka.end(partition)

    def last_stable_offset(self, partition: TopicPartition) -> int | None:
        return self.highwater(partition)


@dataclass
class _Pending:
    topic: str
    key: bytes | None
    value: bytes | None
    partition: int | None
    timestamp_ms: int
    headers: Sequence[tuple[str, bytes]]
    delivery: asyncio.Future[Any]


class FakeBatch:
    """A ``BatchBuilder`` that takes every record (the committer checks sizes itself)."""

    def __init__(self) -> None:
        self.records: list[tuple[bytes | None, bytes | None, tuple[tuple[str, bytes], ...]]] = []

    def append(
        self,
        *,
        timestamp: int | None,
        key: bytes | None,
        value: bytes | None,
        headers: list[tuple[str, bytes]],
    ) -> object | None:
        self.records.append((key, value, tuple(headers)))
        return len(self.records)

    def record_count(self) -> int:
        return len(self.records)


class FakeProducer:
    def __init__(self, kafka: FakeKafka, transactional_id: str | None) -> None:
        self._kafka = kafka
        self.transactional_id = transactional_id
        self.started = False
        self.stopped = False
        self.fenced = False
        self._transaction: list[_Pending] | None = None
        self._transaction_id: int | None = None
        self._offsets: dict[TopicPartition, int] = {}
        self.offsets_before_acknowledgements = 0
        """Offsets added to a transaction while some of its records were unacknowledged."""

    async def start(self) -> None:
        if self._kafka.fail_producer_start(self.transactional_id):
            raise KafkaConnectionError("Unable to bootstrap from fake brokers")
        if self.transactional_id is not None:
            # InitProducerId: earlier producers of this id are fenced, their open
            # transaction aborted.
            for other in self._kafka.producers:
                if other is not self and other.transactional_id == self.transactional_id:
                    other.fence()
        self.started = True

    @property
    def in_transaction(self) -> bool:
        return self._transaction is not None

    def fence(self) -> None:
        self.fenced = True
        if self._transaction is not None:
            self._end_transaction(committed=False)

    async def stop(self) -> None:
        self.stopped = True

    async def send(
        self,
        topic: str,
        value: bytes | None = None,
        key: bytes | None = None,
        partition: int | None = None,
        timestamp_ms: int | None = None,
        headers: Sequence[tuple[str, bytes]] | None = None,
    ) -> asyncio.Future[Any]:
        assert self.started, "send on a producer not started"
        assert not self.stopped, "send on a stopped producer"
        headers = tuple(headers or ())
        size = len(key or b"") + len(value or b"") + sum(len(k) + len(v) for k, v in headers)
        if size > MAX_REQUEST_SIZE:
            raise MessageSizeTooLarge(f"The message is {size} bytes")
        delivery: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        pending = _Pending(topic, key, value, partition, timestamp_ms or 0, headers, delivery)
        if self._transaction is None:
            delivery.set_result(FakeMetadata(self._write(pending).offset))
        else:
            # The broker appends a transactional record and acknowledges it on its own round
            # trip; it becomes visible only when the transaction commits.
            self._transaction.append(pending)
            written = self._write(pending, self._transaction_id)
            asyncio.get_running_loop().call_soon(
                _acknowledge, delivery, FakeMetadata(written.offset)
            )
        return delivery

    def create_batch(self) -> FakeBatch:
        return FakeBatch()

    async def send_batch(
        self, batch: RecordBatch, topic: str, *, partition: int
    ) -> asyncio.Future[Any]:
        assert isinstance(batch, FakeBatch)
        deliveries = [
            await self.send(topic, value=value, key=key, partition=partition, headers=headers)
            for key, value, headers in batch.records
        ]
        batch_delivery: asyncio.Future[Any] = asyncio.get_running_loop().create_future()

        def settle(records: asyncio.Future[list[FakeMetadata]]) -> None:
            # Like aiokafka's: the batch's delivery carries its base offset.
            if records.cancelled():
                batch_delivery.cancel()
            elif (error := records.exception()) is not None:
                batch_delivery.set_exception(error)
            else:
                batch_delivery.set_result(records.result()[0])

        asyncio.gather(*deliveries).add_done_callback(settle)
        return batch_delivery

    async def partitions_for(self, topic: str) -> set[int]:
        return set(range(self._kafka.partitions))

    def _write(self, pending: _Pending, transaction: int | None = None) -> FakeRecord:
        return self._kafka.append(
            pending.topic,
            pending.key,
            pending.value,
            partition=pending.partition,
            timestamp=pending.timestamp_ms,
            headers=pending.headers,
            transaction=transaction,
        )

    async def begin_transaction(self) -> None:
        assert self._transaction is None, "a transaction is open already"
        self._transaction = []
        self._offsets = {}
        self._transaction_id = next(_TRANSACTIONS)
        self._kafka.open_transactions.add(self._transaction_id)

    async def send_offsets_to_transaction(
        self, offsets: dict[TopicPartition, int], group_id: str
    ) -> None:
        assert self._transaction is not None
        if any(not pending.delivery.done() for pending in self._transaction):
            self.offsets_before_acknowledgements += 1
        self._offsets.update(offsets)

    async def commit_transaction(self) -> None:
        assert self._transaction is not None
        assert self.transactional_id is not None
        gate = self._kafka.commit_gates.get(self.transactional_id)
        if gate is not None:
            await gate.wait()
        if self.fenced:
            raise ProducerFenced()
        fault = self._kafka.fail_commit(self.transactional_id)
        if fault is not None:
            raise fault
        self._end_transaction(committed=True)
        self._kafka.committed.update(self._offsets)
        self._kafka.commits += 1
        self._kafka.appended.set()

    def _end_transaction(self, *, committed: bool) -> None:
        assert self._transaction_id is not None
        self._kafka.open_transactions.discard(self._transaction_id)
        if committed:
            self._kafka.committed_transactions.add(self._transaction_id)
        self._transaction = None
        self._transaction_id = None

    async def abort_transaction(self) -> None:
        if self._transaction is None or self.fenced:
            raise KafkaError("no transaction to abort")
        for pending in self._transaction:
            if not pending.delivery.done():
                pending.delivery.set_exception(KafkaError("transaction aborted"))
        self._end_transaction(committed=False)
        self._kafka.aborts += 1


_TRANSACTIONS = itertools.count(1)


def _acknowledge(delivery: asyncio.Future[Any], metadata: FakeMetadata) -> None:
    if not delivery.done():  # not aborted meanwhile
        delivery.set_result(metadata)


class FakeChangelogReader:
    def __init__(self, kafka: FakeKafka, topic: str) -> None:
        self._kafka = kafka
        self._topic = topic

    async def read(self, starts: Mapping[int, int | None]) -> dict[int, ChangelogRead]:
        return {
            partition: await self._read(partition, start) for partition, start in starts.items()
        }

    async def _read(self, partition: int, start: int | None) -> ChangelogRead:
        self._kafka.changelog_reads.append((partition, start))
        gate = self._kafka.restore_gates.get(partition)
        if gate is not None:
            await gate.wait()
        fault = self._kafka.fail_restore.get(partition)
        if fault is not None:
            raise fault
        tp = TopicPartition(self._topic, partition)
        end = self._kafka.stable_end(tp)
        latest: dict[bytes, bytes | None] = {}
        records = 0
        for record in self._kafka.logs[tp][start or 0 : end]:
            if self._kafka.visible(record):
                assert record.key is not None
                latest[record.key] = record.value
                records += 1
        return ChangelogRead(latest, records, end)


class FakeGroupView:
    def __init__(self, kafka: FakeKafka) -> None:
        self._kafka = kafka

    async def describe(self, topic: str) -> GroupSnapshot | None:
        return self._kafka.group


def fake_settings(**overrides: Any) -> ProcessorSettings:
    defaults: dict[str, Any] = {
        "kafka": KafkaSettings(topic_prefix="fake."),
        "commit_interval_ms": 5,
        "expiry_check_interval_s": 0.01,
        "topic_partitions": 2,
        "create_topics": False,
    }
    return ProcessorSettings(**{**defaults, **overrides})


@dataclass
class Running:
    service: ProcessorService
    task: asyncio.Task[None]
    stop: asyncio.Event
    failure_expected: bool = False


@asynccontextmanager
async def running_on(
    kafka: FakeKafka, settings: ProcessorSettings, *, clock: Clock | None = None
) -> AsyncIterator[Running]:
    """A processor on ``kafka`` in this event loop; stopped on exit, its error re-raised."""
    service = ProcessorService(settings, kafka.clients(settings, clock))
    stop = asyncio.Event()
    running = Running(service, asyncio.create_task(service.run(stop)), stop)
    try:
        yield running
    finally:
        stop.set()
        await asyncio.wait({running.task}, timeout=10)
        assert running.task.done(), "the processor did not stop"
        if not running.failure_expected:
            running.task.result()
