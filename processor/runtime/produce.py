"""Handing a batch's outputs to a producer as record batches built here, one per partition.

``producer.send`` per record costs more than the engine that made the record: each call looks up
the topic's metadata, rebuilds the list of available partitions, hashes the key, creates a
delivery future and, when the partition's 16 KiB batch is full, waits a whole produce round trip
(one request in flight per broker) before accepting the next record. Under a backlog that is a
large share of the processor's CPU, and those waits most of its wall time. So the records of
each topic partition go into one record batch (``servicekit.record_batches``, as large as
``MAX_BATCH_BYTES``) handed over with ``send_batch``: one delivery future per partition, the
partitions of a topic looked up once per commit, each key hashed once in a while rather than
once per record.

What reaches Kafka is what ``producer.send`` per record would give: the same records, in the
same order within each partition, on the partition it would choose (Kafka's murmur2 of the key,
as Java clients), in the same transaction; a record too large fails the commit with aiokafka's own
``MessageSizeTooLargeError`` before it is appended (the transaction is aborted, or in
at-least-once mode the offset is not committed).
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Sequence
from typing import Protocol, cast

from aiokafka.structs import TopicPartition

from processor.runtime.clients import MAX_REQUEST_BYTES, Producer, RecordBatch
from processor.runtime.partition import Output
from servicekit.partitioner import KeyPartitioner
from servicekit.record_batches import append_record, check_record_size


def check_size(output: Output) -> None:
    """Refuse a record the producer's ``send`` would refuse (``max_request_size``)."""
    check_record_size(output.key, output.value, output.headers, MAX_REQUEST_BYTES)


class BatchSender:
    """Hands outputs to a producer as one record batch per topic partition (``send_all``),
    remembering the partitions of recent keys per topic across commits."""

    def __init__(self) -> None:
        self._partitioners: dict[str, KeyPartitioner] = {}
        self._handed: list[tuple[TopicPartition, int]] = []
        """For each delivery of the current ``send_all``: its topic partition and record
        count, so the acknowledged base offsets tell where each partition's writes end."""

    async def send_all(
        self,
        producer: Producer,
        outputs: Sequence[Output],
        deliveries: list[asyncio.Future[object]],
    ) -> None:
        """Hand every output to ``producer``, collecting into ``deliveries`` the futures that
        resolve on acknowledgement (collected as they come, so a failure half-way still leaves
        every one of them to settle)."""
        counted: dict[str, KeyPartitioner] = {}
        open_batches: dict[tuple[str, int], RecordBatch] = {}
        handed = self._handed
        handed.clear()
        for output in outputs:
            topic = output.topic
            partition = output.partition
            if partition is None:
                partitioner = counted.get(topic)
                if partitioner is None:
                    partitioner = counted[topic] = await self._partitioner(producer, topic)
                partition = (
                    partitioner(output.key)
                    if output.key is not None
                    else random.randrange(partitioner.partitions)
                )
            if output.headers or len(output.value or b"") + len(output.key or b"") > _SMALL_RECORD:
                check_size(output)
            builder = open_batches.get((topic, partition))
            if builder is None:
                builder = open_batches[topic, partition] = producer.create_batch()
            if not _append(builder, output):
                # Full: hand it over (records of a partition keep their order), start another.
                deliveries.append(await producer.send_batch(builder, topic, partition=partition))
                handed.append((TopicPartition(topic, partition), builder.record_count()))
                builder = open_batches[topic, partition] = producer.create_batch()
                _append(builder, output)  # the first record of a batch always fits
        for (topic, partition), builder in open_batches.items():
            deliveries.append(await producer.send_batch(builder, topic, partition=partition))
            handed.append((TopicPartition(topic, partition), builder.record_count()))

    async def deliver_all(
        self,
        producer: Producer,
        outputs: Sequence[Output],
        deliveries: list[asyncio.Future[object]],
    ) -> dict[TopicPartition, int]:
        """``send_all``, then wait until the broker acknowledged every output; returns, per
        topic partition written, the offset right after its last record."""
        await self.send_all(producer, outputs, deliveries)
        acknowledged = await asyncio.gather(*deliveries)
        ends: dict[TopicPartition, int] = {}
        for (tp, count), metadata in zip(self._handed, acknowledged, strict=True):
            # A batch's acknowledgement carries its base offset (aiokafka's RecordMetadata).
            end = cast(_Acknowledged, metadata).offset + count
            if end > ends.get(tp, -1):
                ends[tp] = end
        return ends

    async def _partitioner(self, producer: Producer, topic: str) -> KeyPartitioner:
        """The topic's partitioner for its partition count now (Kafka numbers a topic's
        partitions 0 to n-1, so the count decides as aiokafka's sorted list does)."""
        count = len(await producer.partitions_for(topic))
        partitioner = self._partitioners.get(topic)
        if partitioner is None or partitioner.partitions != count:
            partitioner = self._partitioners[topic] = KeyPartitioner(count)
        return partitioner


class _Acknowledged(Protocol):
    """What a ``send_batch`` delivery resolves to (aiokafka's ``RecordMetadata``)."""

    @property
    def offset(self) -> int:
        """The batch's base offset."""
        ...


_SMALL_RECORD = MAX_REQUEST_BYTES // 2
"""A record without headers whose key and value are this small fits whatever its framing: only
the others are measured."""


def _append(builder: RecordBatch, output: Output) -> bool:
    return append_record(
        builder, key=output.key, value=output.value, headers=output.headers, timestamp_ms=None
    )
