"""Failures the processor cannot get past (contract §5.10): loud at once, fatal after a grace
period.

A partition that cannot be restored (its changelog undecodable, its restore over the time limit,
its producer impossible to create) is reported the moment it fails: ``/readyz`` turns 503 (the
service asks its workers), ``processor_partition_failed{partition,cause}`` is set, an error line
names the partition and the cause. ``PROCESSOR_FATAL_EXIT_DELAY_S`` later the service gives up
with ``PartitionFailedError`` and the process exits 1, for its supervisor to restart it.
"""

from __future__ import annotations

import logging

from processor.metrics import PARTITION_FAILED
from processor.runtime.clients import Clock

logger = logging.getLogger(__name__)


class PartitionFailedError(Exception):
    """A partition could not be restored and the grace period is over: exit for a restart."""


class FatalFailures:
    def __init__(self, clock: Clock, grace_s: float) -> None:
        self._clock = clock
        self._grace_s = grace_s
        self._since: float | None = None
        self._reasons: dict[int, str] = {}

    def report(self, partition: int, cause: str, reason: str) -> None:
        self._reasons[partition] = reason
        if self._since is None:
            self._since = self._clock.monotonic()
        PARTITION_FAILED.labels(partition=str(partition), cause=cause).set(1)
        logger.error(
            "partition %d cannot be processed (%s): %s; not ready, exiting in %g s unless stopped",
            partition,
            cause,
            reason,
            self._grace_s,
        )

    def check(self) -> None:
        """Raise ``PartitionFailedError`` once the first failure is older than the grace."""
        if self._since is None or self._clock.monotonic() - self._since < self._grace_s:
            return
        failed = "; ".join(f"partition {p}: {why}" for p, why in sorted(self._reasons.items()))
        raise PartitionFailedError(f"giving up after {self._grace_s:g} s: {failed}")
