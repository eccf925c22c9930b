"""Record batches built by the services themselves, handed to aiokafka's producer whole.

Both services skip ``AIOKafkaProducer.send`` on their hot paths and use aiokafka's documented
"direct batch control" instead: ``create_batch()`` gives an empty batch, ``append()`` adds a
record to it (``None`` once it is full; the first record of a batch always fits),
``record_count()``/``size()`` tell what it holds, ``send_batch(batch, topic, partition=...)``
hands it over and returns a future of its ``RecordMetadata``, ``partitions_for(topic)`` lists the
topic's partitions. The protocols here name only those calls, so neither service imports the
class aiokafka builds its batches with (that class is not part of its public API).

``send`` refuses a record larger than the producer's ``max_request_size`` before it is queued;
a batch builder does not (it takes any record into an empty batch). ``check_record_size`` makes
the same refusal, with the size Kafka's record-batch format (v2, the only one a Kafka 4 broker
takes) gives the record, counted here from the protocol's definition of a record rather than by
asking aiokafka (``tests/contracts/test_aiokafka_internals.py`` checks the two agree).
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any, Protocol

from aiokafka.errors import MessageSizeTooLargeError

Headers = Sequence[tuple[str, bytes]]

DEFAULT_MAX_REQUEST_BYTES = 1_048_576
"""aiokafka's default ``max_request_size``: the largest record its producer's ``send`` takes."""


class RecordBatch(Protocol):
    """Records for one topic partition, built before they are handed over
    (what ``AIOKafkaProducer.create_batch()`` returns)."""

    def append(
        self,
        *,
        timestamp: int | None,
        key: bytes | None,
        value: bytes | None,
        headers: list[tuple[str, bytes]],
    ) -> object | None:
        """Metadata of the appended record, or ``None`` when the batch is full (the first
        record always fits). ``timestamp`` in epoch milliseconds, ``None``: now. aiokafka's
        compiled builder takes ``headers`` only as a ``list``: use ``append_record``."""
        ...

    def record_count(self) -> int:
        """Records appended so far."""
        ...


class BatchSink(Protocol):
    """What hands record batches to Kafka: ``AIOKafkaProducer``'s batch calls."""

    def create_batch(self) -> RecordBatch: ...

    async def send_batch(
        self, batch: RecordBatch, topic: str, *, partition: int
    ) -> asyncio.Future[Any]:
        """Queue ``batch`` for ``topic``'s ``partition``; the future resolves to the batch's
        ``RecordMetadata`` (its ``offset`` is the batch's base offset) once acknowledged. Waits
        while the partition already has a batch waiting to be sent."""
        ...


class BatchProducer(BatchSink, Protocol):
    """A ``BatchSink`` that also knows the topics' partitions."""

    async def partitions_for(self, topic: str) -> set[int]:
        """Every partition of ``topic`` (waiting for its metadata if need be)."""
        ...


class TopicPartitionsView(Protocol):
    """What the producer's cluster metadata (``producer.client.cluster``) says of a topic."""

    def partitions_for_topic(self, topic: str) -> set[int] | None:
        """The topic's partitions; ``None`` when the metadata does not have the topic."""
        ...


_NO_HEADERS: list[tuple[str, bytes]] = []
"""Shared by the records without headers (the builder reads its ``headers`` list, never
changes it)."""


def append_record(
    batch: RecordBatch,
    *,
    key: bytes | None,
    value: bytes | None,
    headers: Headers,
    timestamp_ms: int | None,
) -> bool:
    """Append one record to ``batch``; False when the batch is full."""
    if not headers:
        listed = _NO_HEADERS
    elif type(headers) is list:
        listed = headers
    else:
        listed = list(headers)
    return batch.append(timestamp=timestamp_ms, key=key, value=value, headers=listed) is not None


# Kafka's record (format v2, KIP-98): length varint, attributes int8, timestampDelta varlong,
# offsetDelta varint, key (varint length, -1 for null, then the bytes), value (likewise),
# headers count varint, then per header: key (varint length, UTF-8 bytes), value (varint
# length, -1 for null, then the bytes). Varints are zig-zag encoded.
RECORD_BATCH_HEADER_BYTES = 61
"""A record batch's header (v2): baseOffset int64, batchLength int32, partitionLeaderEpoch
int32, magic int8, crc uint32, attributes int16, lastOffsetDelta int32, baseTimestamp int64,
maxTimestamp int64, producerId int64, producerEpoch int16, baseSequence int32, records count
int32."""
MAX_RECORD_OVERHEAD_BYTES = 21
"""The most a record's length (varint, 5), attributes (1), timestamp delta (varlong, 10) and
offset delta (varint, 5) can take."""


def _varint_size(value: int) -> int:
    """Bytes of ``value`` as a zig-zag varint."""
    encoded = (value << 1) ^ (value >> 63)
    size = 1
    while encoded >= 0x80:
        encoded >>= 7
        size += 1
    return size


def _bytes_field_size(data: bytes | None) -> int:
    if data is None:
        return 1  # length -1
    return _varint_size(len(data)) + len(data)


def record_size_bound(key: bytes | None, value: bytes | None, headers: Headers) -> int:
    """An upper bound on the bytes one record takes in a batch of its own: the batch header,
    the largest per-record overhead and the record's key, value and headers."""
    size = RECORD_BATCH_HEADER_BYTES + MAX_RECORD_OVERHEAD_BYTES
    size += _bytes_field_size(key) + _bytes_field_size(value) + _varint_size(len(headers))
    for header_key, header_value in headers:
        encoded = header_key.encode()
        size += _varint_size(len(encoded)) + len(encoded) + _bytes_field_size(header_value)
    return size


def check_record_size(
    key: bytes | None,
    value: bytes | None,
    headers: Headers,
    max_request_bytes: int = DEFAULT_MAX_REQUEST_BYTES,
) -> None:
    """Refuse a record ``AIOKafkaProducer.send`` would refuse (``max_request_size``), with the
    error it would raise."""
    size = record_size_bound(key, value, headers)
    if size > max_request_bytes:
        raise MessageSizeTooLargeError(
            f"The message is {size} bytes when serialized which is larger than the maximum "
            "request size you have configured with the max_request_size configuration"
        )
