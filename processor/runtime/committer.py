"""Making a partition's batch durable: its outputs (derived events, dead letters, state
snapshots, changelog records) and its input offset (contract §5.1).

* Exactly-once: one transactional producer per input partition, ``transactional_id`` derived
  from group, topic and partition. aiokafka only supports group-based offset commits inside a
  transaction, so fencing a previous owner of the partition needs the per-partition id (as Kafka
  Streams did before KIP-447): starting the producer fences any zombie and aborts its open
  transaction. A batch commits all-or-nothing.
* At-least-once: one shared idempotent producer; outputs are acknowledged first, then the
  consumer commits the offset. A crash in between repeats outputs (same event ids).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import Protocol

from aiokafka.errors import IllegalOperation, KafkaError
from aiokafka.structs import TopicPartition

from processor.metrics import COMMIT_SECONDS, COMMITS
from processor.runtime.clients import Consumer, Producer, ProducerFactory
from processor.runtime.partition import Batch
from processor.runtime.produce import BatchSender
from processor.runtime.starting import start_or_close
from processor.settings import ProcessorSettings

logger = logging.getLogger(__name__)


class Committer(Protocol):
    async def start(self) -> None: ...
    async def commit(self, batch: Batch) -> dict[TopicPartition, int]:
        """Durable when it returns; raises (and leaves nothing half-visible) when it cannot.

        Returns, per topic partition written, the offset right after its last record: where
        the partition's changelog stood after this commit's own writes (``kept``)."""
        ...

    async def stop(self) -> None: ...


_COMMITTED = COMMITS.labels(outcome="committed")
_ABORTED = COMMITS.labels(outcome="aborted")


def settle_failed(deliveries: list[asyncio.Future[object]]) -> None:
    """After a failed commit: consume the deliveries' errors, which the abort explains."""
    for delivery in deliveries:
        delivery.add_done_callback(_consume_error)


def _consume_error(delivery: asyncio.Future[object]) -> None:
    if not delivery.cancelled():
        delivery.exception()


def transactional_id(settings: ProcessorSettings, partition: int) -> str:
    return f"{settings.group_id}-{settings.topics.raw}-{partition}"


class TransactionalCommitter:
    def __init__(
        self, settings: ProcessorSettings, partition: int, producers: ProducerFactory
    ) -> None:
        self._settings = settings
        self._input = TopicPartition(settings.topics.raw, partition)
        self._producer = producers(
            transactional_id(settings, partition), f"meetings-processor-{partition}"
        )
        self._started = False
        self._sender = BatchSender()

    async def start(self) -> None:
        # InitProducerId fences the partition's previous owner. A half-started producer still
        # holds connections and a background task: closed if the start fails or is cancelled.
        await start_or_close(self._producer.start, self._stop_quietly)
        self._started = True

    async def _stop_quietly(self) -> None:
        with contextlib.suppress(KafkaError, OSError):
            await self._producer.stop()

    async def commit(self, batch: Batch) -> dict[TopicPartition, int]:
        began = time.perf_counter()
        producer = self._producer
        await producer.begin_transaction()
        deliveries: list[asyncio.Future[object]] = []
        try:
            # The outputs are acknowledged before the offsets join the transaction. A broker
            # verifies each transactional produce with the transaction coordinator (KIP-890);
            # one that arrives while the coordinator records AddOffsetsToTxn is refused as a
            # concurrent transaction (NOT_ENOUGH_REPLICAS to this client), and aiokafka resends
            # it only after retry_backoff_ms (100 ms). Sent in parallel, some commits would
            # take that stall and set the tail of the end-to-end latency; in sequence, none does.
            ends = await self._sender.deliver_all(producer, batch.outputs, deliveries)
            if batch.next_offset is not None:
                await producer.send_offsets_to_transaction(
                    {self._input: batch.next_offset}, self._settings.group_id
                )
            await producer.commit_transaction()
        except BaseException:
            _ABORTED.inc()
            settle_failed(deliveries)
            await self._abort()
            raise
        _COMMITTED.inc()
        COMMIT_SECONDS.observe(time.perf_counter() - began)
        return ends

    async def _abort(self) -> None:
        try:
            await self._producer.abort_transaction()
        except (IllegalOperation, KafkaError) as exc:  # not in a transaction, or fenced
            logger.warning("could not abort the transaction of %s: %r", self._input, exc)

    async def stop(self) -> None:
        if self._started:
            self._started = False
            await self._producer.stop()


class AtLeastOnceCommitter:
    """Shares one producer and the group consumer with every other partition."""

    def __init__(self, producer: Producer, consumer: Consumer, partition: int, topic: str) -> None:
        self._producer = producer
        self._consumer = consumer
        self._input = TopicPartition(topic, partition)
        self._sender = BatchSender()

    async def start(self) -> None:
        return None

    async def commit(self, batch: Batch) -> dict[TopicPartition, int]:
        began = time.perf_counter()
        deliveries: list[asyncio.Future[object]] = []
        try:
            ends = await self._sender.deliver_all(self._producer, batch.outputs, deliveries)
            if batch.next_offset is not None:
                await self._consumer.commit({self._input: batch.next_offset})
        except BaseException:
            _ABORTED.inc()
            settle_failed(deliveries)
            raise
        _COMMITTED.inc()
        COMMIT_SECONDS.observe(time.perf_counter() - began)
        return ends

    async def stop(self) -> None:
        return None
