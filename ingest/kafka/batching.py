"""Raw records gathered into one Kafka record batch per partition, one batch at a time.

``AIOKafkaProducer.send`` costs about as much CPU per record as the whole HTTP exchange: a future,
a metadata check, two partition lists and an accumulator lookup per record, and one future to
resolve per record on acknowledgement. Ingest sends many small records to few partitions, so it
builds the batches itself (``create_batch``/``send_batch``, aiokafka's own batch API): a record
costs one append to the open batch of its partition; a batch costs one submission, one deadline
and one acknowledgement.

Per partition, batches leave in the order they were opened, one at a time: aiokafka holds at
most one unsent batch per partition, and while it waits for the broker the next batch fills. So
batches grow with the load and need no linger to form, and records keep their arrival order.

Every record's caller gets a future of its own (cancelling one caller's wait touches no other
record) that resolves when its batch is acknowledged, or fails with the batch's error, or with
``DeliveryTimeout`` once the batch's deadline passes. A deadline is set when the batch opens, so
no caller waits longer than the timeout; a batch whose callers gave up is still delivered.
"""

from __future__ import annotations

import asyncio
import collections
import functools
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from servicekit.record_batches import BatchSink, RecordBatch, append_record

Headers = Sequence[tuple[str, bytes]]


class DeliveryTimeout(Exception):
    """The record's batch was not acknowledged before its deadline (it may still be)."""


class TopicGone(Exception):
    """The topic left the producer's metadata before the batch could be submitted."""


BatchProducer = BatchSink
"""The part of ``AIOKafkaProducer`` the batches use."""


@dataclass(slots=True)
class _Batch:
    builder: RecordBatch
    waiters: list[asyncio.Future[None]] = field(default_factory=list)
    deadline: asyncio.TimerHandle | None = None
    accepting: bool = True
    """False once the deadline passed: a record added later would get no deadline."""

    def settle(self, error: BaseException | None) -> None:
        self.accepting = False
        if self.deadline is not None:
            self.deadline.cancel()
        for waiter in self.waiters:
            if not waiter.done():
                if error is None:
                    waiter.set_result(None)
                else:
                    waiter.set_exception(error)


class PartitionBatches:
    """The batches of one producer to one topic; ``add`` a record, await what it returns."""

    def __init__(
        self,
        producer: BatchProducer,
        topic: str,
        *,
        timeout_s: float,
        topic_exists: Callable[[], bool],
    ) -> None:
        self._producer = producer
        self._topic = topic
        self._timeout_s = timeout_s
        self._topic_exists = topic_exists
        self._queues: dict[int, collections.deque[_Batch]] = {}
        self._senders: dict[int, asyncio.Task[None]] = {}
        self._loop = asyncio.get_running_loop()

    def add(
        self, partition: int, key: bytes | None, value: bytes, headers: Headers, timestamp_ms: int
    ) -> asyncio.Future[None]:
        """Queue one record; the future resolves when Kafka acknowledged it."""
        queue = self._queues.get(partition)
        if queue is None:
            queue = self._queues[partition] = collections.deque()
        batch = queue[-1] if queue else None
        if (
            batch is None
            or not batch.accepting
            or not self._append(batch, key, value, headers, timestamp_ms)
        ):
            batch = self._open(queue)
            if not self._append(batch, key, value, headers, timestamp_ms):
                # aiokafka's builder takes any record into an empty batch; should that change,
                # the caller must hear of it rather than be told its record is stored.
                raise RuntimeError("an empty Kafka record batch refused a record")
            if partition not in self._senders:
                self._senders[partition] = self._loop.create_task(self._send(partition, queue))
        waiter: asyncio.Future[None] = self._loop.create_future()
        batch.waiters.append(waiter)
        return waiter

    @staticmethod
    def _append(
        batch: _Batch, key: bytes | None, value: bytes, headers: Headers, timestamp_ms: int
    ) -> bool:
        return append_record(
            batch.builder, key=key, value=value, headers=headers, timestamp_ms=timestamp_ms
        )

    def _open(self, queue: collections.deque[_Batch]) -> _Batch:
        batch = _Batch(self._producer.create_batch())
        batch.deadline = self._loop.call_later(self._timeout_s, self._expire, batch)
        queue.append(batch)
        return batch

    @staticmethod
    def _expire(batch: _Batch) -> None:
        batch.deadline = None
        batch.settle(DeliveryTimeout())

    async def _send(self, partition: int, queue: collections.deque[_Batch]) -> None:
        """Submit the partition's batches in order until none is left.

        It first runs after the requests of the current event-loop turn have added theirs."""
        try:
            while queue:
                batch = queue[0]
                try:
                    if not self._topic_exists():
                        raise TopicGone(self._topic)
                    delivery = await self._producer.send_batch(
                        batch.builder, self._topic, partition=partition
                    )
                except Exception as exc:  # noqa: BLE001 - every failure goes to the callers
                    queue.popleft()
                    batch.settle(exc)
                    continue
                queue.popleft()  # submitted: appends go to a batch of their own from now on
                delivery.add_done_callback(functools.partial(_delivered, batch))
        finally:
            del self._senders[partition]

    async def close(self) -> None:
        """Wait until every batch has been submitted (their deliveries may still be pending)."""
        senders = list(self._senders.values())
        if senders:
            await asyncio.gather(*senders, return_exceptions=True)


def _delivered(batch: _Batch, delivery: asyncio.Future[Any]) -> None:
    if delivery.cancelled():
        batch.settle(asyncio.CancelledError())
        return
    batch.settle(delivery.exception())
