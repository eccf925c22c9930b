"""Read a partition's sessions back from the processor's internal changelog topic.

Partition *p* of the compacted changelog holds the latest records (header and participant
chunks, see ``processor.engine.changelog``) of every session of raw partition *p*. Reading it
from the beginning to its last stable offset (``read_committed``) gives exactly the sessions the
last committed transaction left behind.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable

from aiokafka import AIOKafkaConsumer
from aiokafka.structs import TopicPartition

from processor.engine import ChangelogError, Session, restore_sessions
from servicekit.kafka import KafkaSettings

logger = logging.getLogger(__name__)


async def read_sessions(
    kafka: KafkaSettings, topic: str, partitions: Iterable[int]
) -> dict[int, list[Session]]:
    """Every live session, per partition (tombstoned sessions left out); raises
    ``RestoreError`` naming the partition for records this processor cannot have written."""
    wanted = [TopicPartition(topic, partition) for partition in partitions]
    if not wanted:
        return {}
    consumer = AIOKafkaConsumer(
        **kafka.client_options(),
        enable_auto_commit=False,
        isolation_level="read_committed",
        # Also the reset policy: seek_to_beginning right after assign() can lose a race
        # against the default ("latest") reset in aiokafka.
        auto_offset_reset="earliest",
        client_id="meetings-processor-restore",
    )
    await consumer.start()
    try:
        consumer.assign(wanted)
        # With read_committed this is the last stable offset: everything committed so far.
        ends: dict[TopicPartition, int] = await consumer.end_offsets(wanted)
        await consumer.seek_to_beginning(*wanted)
        latest: dict[TopicPartition, dict[bytes, bytes]] = {tp: {} for tp in wanted}
        remaining = {tp for tp in wanted if ends[tp] > 0}
        began = time.monotonic()
        while remaining:
            batches = await consumer.getmany(*remaining, timeout_ms=500)
            for tp, records in batches.items():
                for record in records:
                    if record.value is None:
                        latest[tp].pop(record.key, None)
                    else:
                        latest[tp][record.key] = record.value
            for tp in list(remaining):
                if await consumer.position(tp) >= ends[tp]:
                    remaining.discard(tp)
        logger.debug("read %s in %.3f s", [tp.partition for tp in wanted], time.monotonic() - began)
    finally:
        await consumer.stop()
    return {tp.partition: decode_sessions(tp.partition, values) for tp, values in latest.items()}


class RestoreError(Exception):
    """A partition's state cannot be read back; the message names the partition and why."""

    def __init__(self, partition: int, cause: str) -> None:
        super().__init__(f"partition {partition}: {cause}")
        self.partition = partition
        self.cause = cause


def decode_sessions(partition: int, values: dict[bytes, bytes]) -> list[Session]:
    """The sessions in the latest changelog records of ``partition`` (by key);
    ``RestoreError`` names the partition and the first record that cannot be decoded."""
    try:
        return restore_sessions(values.items())
    except ChangelogError as exc:
        raise RestoreError(partition, str(exc)) from exc
