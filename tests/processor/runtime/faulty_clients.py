"""The real aiokafka clients behind thin wrappers that can delay or refuse a call before passing
it on, for fault scenarios on the real broker (``backends.RealBackend``). Nothing is mocked: every
call that goes through is the real client's, against the broker."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aiokafka.structs import TopicPartition

from processor.runtime.clients import Consumer, Producer, RecordBatch
from processor.runtime.partition import RawRecord

CommitFault = Callable[[str], Exception | None]
"""Called with the transactional id at each commit; an exception returned is raised instead."""


@dataclass
class Faults:
    """What the wrappers consult; the attributes mean what ``FakeKafka``'s of the same names
    mean."""

    fail_commit: CommitFault = lambda transactional_id: None
    commit_gates: dict[str, asyncio.Event] = field(default_factory=dict)
    """A commit of this transactional id waits for its event."""
    committed_gate: asyncio.Event | None = None
    """``Consumer.committed`` waits for it."""
    aborts: int = 0
    producers: list[FaultyProducer] = field(default_factory=list)


class FaultyProducer:
    """A real producer whose commits can be held or refused (refused before they reach the
    broker: the runtime then aborts the real transaction)."""

    def __init__(self, producer: Producer, transactional_id: str | None, faults: Faults) -> None:
        self._producer = producer
        self._faults = faults
        self.transactional_id = transactional_id
        self.stopped = False

    async def start(self) -> None:
        await self._producer.start()

    async def stop(self) -> None:
        self.stopped = True
        await self._producer.stop()

    def create_batch(self) -> RecordBatch:
        return self._producer.create_batch()

    async def send_batch(
        self, batch: RecordBatch, topic: str, *, partition: int
    ) -> asyncio.Future[Any]:
        return await self._producer.send_batch(batch, topic, partition=partition)

    async def partitions_for(self, topic: str) -> set[int]:
        return await self._producer.partitions_for(topic)

    async def begin_transaction(self) -> None:
        await self._producer.begin_transaction()

    async def commit_transaction(self) -> None:
        assert self.transactional_id is not None
        gate = self._faults.commit_gates.get(self.transactional_id)
        if gate is not None:
            await gate.wait()
        fault = self._faults.fail_commit(self.transactional_id)
        if fault is not None:
            raise fault
        await self._producer.commit_transaction()

    async def abort_transaction(self) -> None:
        await self._producer.abort_transaction()
        self._faults.aborts += 1

    async def send_offsets_to_transaction(
        self, offsets: dict[TopicPartition, int], group_id: str
    ) -> None:
        await self._producer.send_offsets_to_transaction(offsets, group_id)


class GatedConsumer:
    """A real group consumer whose ``committed`` can be held."""

    def __init__(self, consumer: Consumer, faults: Faults) -> None:
        self._consumer = consumer
        self._faults = faults

    async def start(self) -> None:
        await self._consumer.start()

    async def stop(self) -> None:
        await self._consumer.stop()

    def subscribe(self, topics: list[str], *, listener: Any) -> None:
        self._consumer.subscribe(topics, listener=listener)

    async def getmany(
        self, *partitions: TopicPartition, timeout_ms: int = 0, max_records: int | None = None
    ) -> dict[TopicPartition, list[RawRecord]]:
        return await self._consumer.getmany(
            *partitions, timeout_ms=timeout_ms, max_records=max_records
        )

    def assignment(self) -> set[TopicPartition]:
        return self._consumer.assignment()

    def pause(self, *partitions: TopicPartition) -> None:
        self._consumer.pause(*partitions)

    def resume(self, *partitions: TopicPartition) -> None:
        self._consumer.resume(*partitions)

    def seek(self, partition: TopicPartition, offset: int) -> None:
        self._consumer.seek(partition, offset)

    async def seek_to_beginning(self, *partitions: TopicPartition) -> bool:
        return await self._consumer.seek_to_beginning(*partitions)

    async def committed(self, partition: TopicPartition) -> int | None:
        gate = self._faults.committed_gate
        if gate is not None:
            await gate.wait()
        return await self._consumer.committed(partition)

    async def commit(self, offsets: dict[TopicPartition, int]) -> None:
        await self._consumer.commit(offsets)

    async def position(self, partition: TopicPartition) -> int:
        return await self._consumer.position(partition)

    def highwater(self, partition: TopicPartition) -> int | None:
        return self._consumer.highwater(partition)

    def last_stable_offset(self, partition: TopicPartition) -> int | None:
        return self._consumer.last_stable_offset(partition)
