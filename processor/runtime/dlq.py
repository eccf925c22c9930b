"""The dead-letter copy of a raw record: the record unchanged plus ``dlq-*`` headers, unless
that would be too large for Kafka.

A raw record the broker accepted can be just under the broker's size limit; its copy is the same
bytes plus headers, so it can be over it, and a batch that cannot be written aborts its
transaction and replays forever: the partition would be frozen by valid traffic. So the copy is
bounded: a value that does not fit is cut, and ``dlq-truncated`` says how long it was.
"""

from __future__ import annotations

from collections.abc import Sequence

from processor.metrics import DLQ_TRUNCATED
from schemas.topics import (
    HEADER_DLQ_ERROR,
    HEADER_DLQ_REASON,
    HEADER_SOURCE_OFFSET,
    HEADER_SOURCE_PARTITION,
    HEADER_SOURCE_TOPIC,
)

HEADER_DLQ_TRUNCATED = "dlq-truncated"
"""Set on a DLQ copy whose value was cut to fit: the original value's size in bytes."""

DLQ_MAX_RECORD_BYTES = 1_000_000
"""Bound on a DLQ copy's key + value + headers: under Kafka's default 1 MiB message and request
limits with room for the record and batch framing (contract §5.9: no record the processor
writes exceeds 1,000,000 bytes)."""

DLQ_MAX_ERROR_BYTES = 1000

Headers = tuple[tuple[str, bytes], ...]


def dead_letter_copy(
    *,
    topic: str,
    partition: int,
    offset: int,
    key: bytes | None,
    value: bytes | None,
    headers: Sequence[tuple[str, bytes]],
    reason: str,
    message: str,
) -> tuple[bytes | None, Headers]:
    """The value and headers of the DLQ copy of raw record ``topic[partition]@offset``."""
    copy_headers: Headers = (
        *headers,
        (HEADER_DLQ_REASON, reason.encode()),
        (HEADER_DLQ_ERROR, message.encode()[:DLQ_MAX_ERROR_BYTES]),
        (HEADER_SOURCE_TOPIC, topic.encode()),
        (HEADER_SOURCE_PARTITION, str(partition).encode()),
        (HEADER_SOURCE_OFFSET, str(offset).encode()),
    )
    if value is None:
        return None, copy_headers
    size = len(value)
    truncated = (HEADER_DLQ_TRUNCATED, str(size).encode())
    around = len(key or b"") + _headers_size((*copy_headers, truncated))
    if around + size <= DLQ_MAX_RECORD_BYTES:
        return value, copy_headers
    DLQ_TRUNCATED.inc()
    return value[: max(DLQ_MAX_RECORD_BYTES - around, 0)], (*copy_headers, truncated)


def _headers_size(headers: Headers) -> int:
    return sum(len(name.encode()) + len(data) for name, data in headers)
