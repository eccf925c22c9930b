"""Reading whole topics for a comparison: every committed record from each partition's start
to its end as of the scan's start, with one consumer that joins no group and commits nothing."""

from __future__ import annotations

import time
from collections.abc import Callable
from types import TracebackType
from typing import Any, Protocol, Self

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from processor.runtime.starting import start_or_close
from servicekit.kafka import KafkaSettings

_FETCH_WAIT_MS = 200
"""Longest wait per fetch: a range holding only transaction markers returns no records."""


class Record(Protocol):
    """The fields of aiokafka's ``ConsumerRecord`` a comparison reads."""

    @property
    def key(self) -> bytes | None: ...
    @property
    def value(self) -> bytes | None: ...
    @property
    def headers(self) -> tuple[tuple[str, bytes], ...] | list[tuple[str, bytes]]: ...


class TopicReader:
    """``async with TopicReader(kafka) as reader``: topic names, sizes and full scans (of the
    topics ``topics()`` listed)."""

    def __init__(self, kafka: KafkaSettings) -> None:
        self._admin: Any = AIOKafkaAdminClient(**kafka.client_options(), client_id="meetings-diff")
        self._partition_counts: dict[str, int] = {}
        self._consumer: Any = AIOKafkaConsumer(
            **kafka.client_options(),
            group_id=None,
            enable_auto_commit=False,
            isolation_level="read_committed",  # as every downstream consumer reads
            # Also the reset policy: seek_to_beginning right after assign() can lose a race
            # against the default ("latest") reset.
            auto_offset_reset="earliest",
            client_id="meetings-diff",
        )

    async def __aenter__(self) -> Self:
        try:
            await start_or_close(self._admin.start, self._admin.close)
            await start_or_close(self._consumer.start, self._consumer.stop)
        except BaseException:
            await self._close()  # a client created is stopped, started or not
            raise
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self._close()

    async def _close(self) -> None:
        try:
            await self._consumer.stop()
        finally:
            await self._admin.close()

    async def topics(self) -> set[str]:
        """The topics that exist (and their partition counts, for the scans)."""
        # Asks for every topic: a metadata request naming a missing one can create it.
        described = await self._admin.describe_topics()
        self._partition_counts = {
            topic["topic"]: len(topic["partitions"]) for topic in described if topic["partitions"]
        }
        return set(self._partition_counts)

    async def size(self, topic: str) -> int:
        """Offsets between each partition's start and end: the records a scan reads, plus
        transaction markers and aborted records (an upper bound)."""
        partitions = self._partitions(topic)
        starts = await self._consumer.beginning_offsets(partitions)
        ends = await self._consumer.end_offsets(partitions)
        return sum(ends[tp] - starts[tp] for tp in partitions)

    async def scan(
        self,
        topic: str,
        visit: Callable[[Record], None],
        progress: Callable[[int], None] | None = None,
    ) -> int:
        """Call ``visit`` with every committed record, partition order kept; how many."""
        consumer = self._consumer
        partitions = self._partitions(topic)
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

    def _partitions(self, topic: str) -> list[TopicPartition]:
        count = self._partition_counts.get(topic, 0)
        return [TopicPartition(topic, number) for number in range(count)]
