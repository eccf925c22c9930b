"""Reading whole topics for a comparison: every committed record from each partition's start
to its end as of the scan's start, with a consumer that joins no group and commits nothing
(``processor.runtime.offsets.OffsetView``)."""

from __future__ import annotations

import time
from collections.abc import Callable
from types import TracebackType
from typing import Self

from aiokafka import TopicPartition

from processor.runtime.offsets import OffsetView
from servicekit.kafka import KafkaSettings
from tools.tail.lines import Record

_FETCH_WAIT_MS = 200
"""Longest wait per fetch: a range holding only transaction markers returns no records."""


class TopicReader:
    """``async with TopicReader(kafka) as reader``: topic names, sizes and full scans (of the
    topics ``topics()`` listed)."""

    def __init__(self, kafka: KafkaSettings) -> None:
        self._view = OffsetView(kafka, client_id="meetings-diff")
        self._partition_counts: dict[str, int] = {}

    async def __aenter__(self) -> Self:
        await self._view.__aenter__()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self._view.__aexit__(exc_type, exc, traceback)

    async def topics(self) -> set[str]:
        """The topics that exist (and their partition counts, for the scans)."""
        self._partition_counts = await self._view.partition_counts()
        return set(self._partition_counts)

    async def size(self, topic: str) -> int:
        """The records a scan reads, plus transaction markers and aborted records (an upper
        bound)."""
        return await self._view.records_in(topic, self._partition_counts.get(topic, 0))

    async def scan(
        self,
        topic: str,
        visit: Callable[[Record], None],
        progress: Callable[[int], None] | None = None,
    ) -> int:
        """Call ``visit`` with every committed record, partition order kept; how many."""
        consumer = self._view.consumer
        partitions = [
            TopicPartition(topic, number) for number in range(self._partition_counts.get(topic, 0))
        ]
        consumer.assign(partitions)
        ends: dict[TopicPartition, int] = await consumer.end_offsets(partitions)
        remaining = {tp for tp in partitions if ends[tp] > 0}
        if remaining:
            await consumer.seek_to_beginning(*remaining)
        read = 0
        reported = time.monotonic()
        while remaining:
            batches = await consumer.getmany(*remaining, timeout_ms=_FETCH_WAIT_MS)
            for tp, records in batches.items():
                for record in records:
                    if record.offset < ends[tp]:  # written after the scan began: not compared
                        visit(record)
                        read += 1
            for tp in list(remaining):
                if await consumer.position(tp) >= ends[tp]:
                    remaining.discard(tp)
            if progress is not None and time.monotonic() - reported >= 1:
                reported = time.monotonic()
                progress(read)
        return read
