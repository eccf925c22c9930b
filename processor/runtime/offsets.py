"""Offsets of topics and of consumer groups, read without joining a group: an admin client for
topic metadata and group offsets, and a consumer with no group for topic offsets (and for
reading a topic whole, which ``consumer`` lends). Used by ``python -m processor replay`` and
``meetings-diff``."""

from __future__ import annotations

import asyncio
import time
from types import TracebackType
from typing import Any, Self

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import (
    CoordinatorLoadInProgressError,
    GroupCoordinatorNotAvailableError,
    NotCoordinatorForGroupError,
)

from processor.runtime.starting import start_or_close
from servicekit.kafka import KafkaSettings


class OffsetView:
    """``async with OffsetView(kafka, client_id=...) as view``."""

    def __init__(self, kafka: KafkaSettings, *, client_id: str) -> None:
        options = self._options = kafka.client_options()
        self._client_id = client_id
        self._admin: Any = AIOKafkaAdminClient(**options, client_id=client_id)
        self.consumer: Any = AIOKafkaConsumer(
            **options,
            group_id=None,
            enable_auto_commit=False,
            isolation_level="read_committed",  # as every downstream consumer reads
            # Also the reset policy: seek_to_beginning right after assign() can lose a race
            # against the default ("latest") reset.
            auto_offset_reset="earliest",
            client_id=client_id,
        )
        """Joins no group; free for ``assign`` and reads between the view's own calls."""

    async def __aenter__(self) -> Self:
        try:
            await start_or_close(self._admin.start, self._admin.close)
            await start_or_close(self.consumer.start, self.consumer.stop)
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
            await self.consumer.stop()
        finally:
            await self._admin.close()

    async def partition_counts(self) -> dict[str, int]:
        """Every existing topic's partition count."""
        # Every topic: a metadata request naming a missing one can create it.
        described = await self._admin.describe_topics()
        return {t["topic"]: len(t["partitions"]) for t in described if t["partitions"]}

    async def ends(self, topic: str, partitions: int) -> dict[int, int]:
        """Each partition's last stable offset (``read_committed``)."""
        found = await self.consumer.end_offsets(_partitions(topic, partitions))
        return {tp.partition: offset for tp, offset in found.items()}

    async def beginnings(self, topic: str, partitions: int) -> dict[int, int]:
        found = await self.consumer.beginning_offsets(_partitions(topic, partitions))
        return {tp.partition: offset for tp, offset in found.items()}

    async def records_in(self, topic: str, partitions: int) -> int:
        """Offsets between each partition's start and end: its records, plus transaction
        markers and aborted records (an upper bound)."""
        if partitions == 0:
            return 0
        ends, starts = await self.ends(topic, partitions), await self.beginnings(topic, partitions)
        return sum(ends[p] - starts[p] for p in ends)

    async def committed(self, group: str, topic: str) -> dict[int, int]:
        """``group``'s committed offsets on ``topic``'s partitions that have one.

        A cluster's offsets topic gets its leaders only when a group first needs them: until
        then the coordinator lookup fails, and it is asked again (for ``_COORDINATOR_WAIT_S``)."""
        deadline = time.monotonic() + _COORDINATOR_WAIT_S
        while True:
            try:
                found = await self._admin.list_consumer_group_offsets(group)
                break
            except NO_COORDINATOR_YET:
                if time.monotonic() > deadline:
                    raise
                await asyncio.sleep(0.2)  # the coordinator's election, polled
        return {
            tp.partition: meta.offset
            for tp, meta in found.items()
            if tp.topic == topic and meta.offset >= 0
        }

    async def start_at(self, group: str, topic: str, partitions: int, at_ms: int) -> dict[int, int]:
        """Commit, for ``group``, each partition's first offset whose record timestamp is at
        or after ``at_ms`` (its end when there is none): where its first member starts."""
        positioned: Any = AIOKafkaConsumer(
            **self._options, group_id=group, enable_auto_commit=False, client_id=self._client_id
        )
        try:
            await start_or_close(positioned.start, positioned.stop)
            tps = _partitions(topic, partitions)
            positioned.assign(tps)
            found = await positioned.offsets_for_times(dict.fromkeys(tps, at_ms))
            ends = await positioned.end_offsets(tps)
            offsets = {tp: ends[tp] if found[tp] is None else found[tp].offset for tp in tps}
            await positioned.commit(offsets)
        finally:
            await positioned.stop()  # created, it is stopped, started or not
        return {tp.partition: offset for tp, offset in offsets.items()}


_COORDINATOR_WAIT_S = 30.0
NO_COORDINATOR_YET = (
    GroupCoordinatorNotAvailableError,
    CoordinatorLoadInProgressError,
    NotCoordinatorForGroupError,
)
"""What a group's coordinator lookup raises until the coordinator is elected (a new cluster's
first group, a coordinator moving): worth asking again, not a failure."""


def _partitions(topic: str, count: int) -> list[TopicPartition]:
    return [TopicPartition(topic, number) for number in range(count)]
