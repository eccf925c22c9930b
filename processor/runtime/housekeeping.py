"""What an owned partition needs now and then, whatever arrives: its lag, idle expiry and
retention on its own clock, and the roll of its changelog segment once it has gone quiet."""

from __future__ import annotations

from aiokafka.errors import IllegalStateError, KafkaError

from processor.metrics import CONSUMER_LAG
from processor.runtime.clients import Consumer
from processor.runtime.worker import PartitionWorker


async def caught_up(consumer: Consumer, worker: PartitionWorker) -> bool:
    """Whether the partition has read everything committed so far (and sets its lag)."""
    if worker.partition not in consumer.assignment():
        # Revoked meanwhile: the consumer would refuse to say (an assert in aiokafka, so
        # checked here rather than caught).
        return False
    try:
        end = consumer.last_stable_offset(worker.partition)
        if end is None or end < 0:  # -1: not read_committed
            end = consumer.highwater(worker.partition)
        if end is None:
            return False  # nothing fetched yet: the backlog is unknown
        position = await consumer.position(worker.partition)
    except (KafkaError, IllegalStateError):
        return False
    CONSUMER_LAG.labels(partition=str(worker.number)).set(max(end - position, 0))
    return bool(position >= end)


def housekeep(worker: PartitionWorker, *, now_ms: int | None, monotonic: float) -> None:
    """Expiry and retention at ``now_ms``, the partition's clock (``None``: no record read
    yet); a changelog roll marker once ``changelog_roll_due`` has passed."""
    if now_ms is not None:
        worker.state.expire(now_ms)
    roll_due = worker.changelog_roll_due
    if roll_due is not None and monotonic >= roll_due:
        worker.changelog_roll_due = None
        worker.state.roll_changelog_segment()
