"""Read a partition's sessions back from the processor's internal changelog topic: all of them,
or only what others wrote since this processor last owned the partition.

Partition *p* of the compacted changelog holds the latest records (header and participant
chunks, see ``processor.engine.changelog``) of every session of raw partition *p*. Reading it
from the beginning to its last stable offset (``read_committed``) gives exactly the sessions the
last committed transaction left behind (a *full* read). A processor that kept a partition's
sessions in memory since its own last commit reads from the offset right after that commit's
changelog records instead (a *delta* read): whatever is there was written by another owner, and
is laid over the kept sessions (``apply_delta``).
"""

from __future__ import annotations

import gc
import logging
import time
from collections.abc import Iterable, Iterator, Mapping, MutableMapping
from contextlib import contextmanager
from dataclasses import dataclass

from aiokafka import AIOKafkaConsumer
from aiokafka.structs import TopicPartition

from processor.engine import ChangelogError, Session, overlaid, restore_sessions, session_of_key
from processor.runtime.starting import start_or_close
from servicekit.kafka import KafkaSettings

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class ChangelogRead:
    """What one read of a changelog partition found."""

    latest: dict[bytes, bytes | None]
    """The last value read for each key; ``None`` is a tombstone."""
    records: int
    """Records read (every revision, not only the latest per key)."""
    end: int
    """The offset the read went up to: the partition's last stable offset when it began."""

    def live(self) -> dict[bytes, bytes]:
        """The keys still holding a value (a full read's sessions)."""
        return {key: value for key, value in self.latest.items() if value is not None}


async def read_changelog(
    kafka: KafkaSettings, topic: str, starts: Mapping[int, int | None]
) -> dict[int, ChangelogRead]:
    """Read each partition of ``starts`` from its start offset (``None``: the beginning) to its
    last stable offset (``read_committed``: everything committed so far)."""
    wanted = {TopicPartition(topic, partition): start for partition, start in starts.items()}
    if not wanted:
        return {}
    consumer = AIOKafkaConsumer(
        **kafka.client_options(),
        enable_auto_commit=False,
        isolation_level="read_committed",
        # Also the reset policy: seek_to_beginning right after assign() can lose a race
        # against the default ("latest") reset in aiokafka; and a start offset that compaction
        # or retention has passed reads from the log's start, all of which is newer.
        auto_offset_reset="earliest",
        client_id="meetings-processor-restore",
    )
    await start_or_close(consumer.start, consumer.stop)
    try:
        consumer.assign(list(wanted))
        ends: dict[TopicPartition, int] = await consumer.end_offsets(list(wanted))
        latest: dict[TopicPartition, dict[bytes, bytes | None]] = {tp: {} for tp in wanted}
        counts = dict.fromkeys(wanted, 0)
        remaining: set[TopicPartition] = set()
        for tp, start in wanted.items():
            if start is None:
                if ends[tp] > 0:
                    await consumer.seek_to_beginning(tp)
                    remaining.add(tp)
            elif start < ends[tp]:
                consumer.seek(tp, start)
                remaining.add(tp)
        began = time.monotonic()
        while remaining:
            # Short: a range holding only transaction markers returns no records at all.
            batches = await consumer.getmany(*remaining, timeout_ms=20)
            for tp, records in batches.items():
                values = latest[tp]
                counts[tp] += len(records)
                for record in records:
                    values[record.key] = record.value
            for tp in list(remaining):
                if await consumer.position(tp) >= ends[tp]:
                    remaining.discard(tp)
        logger.debug("read %s in %.3f s", sorted(starts), time.monotonic() - began)
    finally:
        await consumer.stop()
    return {tp.partition: ChangelogRead(latest[tp], counts[tp], ends[tp]) for tp in wanted}


async def read_sessions(
    kafka: KafkaSettings, topic: str, partitions: Iterable[int]
) -> dict[int, list[Session]]:
    """Every live session, per partition (a full read; tombstoned sessions left out); raises
    ``RestoreError`` naming the partition for records this processor cannot have written."""
    reads = await read_changelog(kafka, topic, dict.fromkeys(partitions))
    return {partition: decode_sessions(partition, read.live()) for partition, read in reads.items()}


class RestoreError(Exception):
    """A partition's sessions cannot be read back from its changelog; the message names the
    partition and why."""

    def __init__(self, partition: int, cause: str) -> None:
        super().__init__(f"partition {partition}: {cause}")
        self.partition = partition
        self.cause = cause


def decode_sessions(partition: int, values: Mapping[bytes, bytes]) -> list[Session]:
    """The sessions in the latest changelog records of ``partition`` (by key);
    ``RestoreError`` names the partition and the first record that cannot be decoded."""
    with _collection_paused():
        try:
            return restore_sessions(values.items())
        except ChangelogError as exc:
            raise RestoreError(partition, str(exc)) from exc


@contextmanager
def _collection_paused() -> Iterator[None]:
    """The garbage collector held off: decoding a partition makes a few objects per session
    that all outlive it, which only lets the collector walk the growing heap again and again.
    Collection resumes after (or as it was: a caller may have disabled it)."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def apply_delta(
    partition: int,
    sessions: MutableMapping[str, Session],
    delta: Mapping[bytes, bytes | None],
) -> int:
    """Lay ``delta`` (a delta read of ``partition``) over its kept ``sessions``, in place;
    returns how many sessions it changed. ``RestoreError`` for records this processor cannot
    have written (the caller then reads the partition whole)."""
    by_session: dict[str, dict[bytes, bytes | None]] = {}
    try:
        for key, value in delta.items():
            by_session.setdefault(session_of_key(key), {})[key] = value
        for session_id, records in by_session.items():
            session = overlaid(sessions.get(session_id), records)
            if session is None:
                sessions.pop(session_id, None)
            else:
                sessions[session_id] = session
    except ChangelogError as exc:
        raise RestoreError(partition, str(exc)) from exc
    return len(by_session)
