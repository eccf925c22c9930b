"""What one rebalance cost this processor: one log line and the rebalance metrics.

A rebalance's report opens when the group hands this processor its partitions and closes when
every one of them is restored (or has failed): which partitions it kept, gained and lost, how
each was restored (``delta`` or ``full``), the changelog records read, and the longest pause of
a kept partition (from its release to its resumption). That line is what an operator reads to
see whether a scale-out or a deploy moved only what it had to.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import StrEnum

from processor.metrics import (
    REBALANCE_PARTITIONS,
    REBALANCE_PAUSE_SECONDS,
    REBALANCES,
    RESTORE_RECORDS,
    RESTORE_SECONDS,
    RESTORED_SESSIONS,
    RESTORES,
)

logger = logging.getLogger(__name__)


class RestoreKind(StrEnum):
    DELTA = "delta"
    """Kept sessions plus what others wrote to the changelog since this processor's release."""
    FULL = "full"
    """The changelog partition read from its beginning."""
    WARM_UP = "warm_up"
    """Read whole before joining the group, ahead of the assignment (``warmup``); the
    partition's restore on assignment is then a delta."""


@dataclass(frozen=True, slots=True)
class Restored:
    """How one partition was restored."""

    kind: RestoreKind
    records: int
    """Changelog records read."""
    sessions: int
    """Sessions in memory afterwards."""
    seconds: float

    def record_metrics(self) -> None:
        RESTORES.labels(kind=self.kind.value).inc()
        RESTORE_RECORDS.labels(kind=self.kind.value).inc(self.records)
        RESTORE_SECONDS.labels(kind=self.kind.value).observe(self.seconds)
        if self.kind is RestoreKind.FULL:
            RESTORED_SESSIONS.inc(self.sessions)


@dataclass(slots=True)
class RebalanceReport:
    kept: frozenset[int]
    gained: frozenset[int]
    lost: frozenset[int]
    began: float
    """Monotonic seconds of the assignment."""
    restored: dict[int, Restored] = field(default_factory=dict)
    failed: set[int] = field(default_factory=set)
    longest_pause_s: float = 0.0
    closed: bool = False

    @classmethod
    def open(cls, before: Iterable[int], after: Iterable[int], now: float) -> RebalanceReport:
        before, after = frozenset(before), frozenset(after)
        report = cls(kept=before & after, gained=after - before, lost=before - after, began=now)
        REBALANCES.inc()
        for outcome, partitions in (
            ("kept", report.kept),
            ("gained", report.gained),
            ("lost", report.lost),
        ):
            REBALANCE_PARTITIONS.labels(outcome=outcome).inc(len(partitions))
        report._close_if_done(now)
        return report

    def partition_restored(
        self, partition: int, restored: Restored, now: float, released_at: float | None
    ) -> None:
        if partition in self.kept and released_at is not None:
            pause = now - released_at
            REBALANCE_PAUSE_SECONDS.observe(pause)
            self.longest_pause_s = max(self.longest_pause_s, pause)
        self.restored[partition] = restored
        self._close_if_done(now)

    def partition_failed(self, partition: int, now: float) -> None:
        self.failed.add(partition)
        self._close_if_done(now)

    def _close_if_done(self, now: float) -> None:
        if self.closed or len(self.restored) + len(self.failed) < len(self.kept | self.gained):
            return
        self.closed = True
        logger.info("%s", self.describe(now))

    def describe(self, now: float) -> str:
        by_kind = {
            kind: [p for p, r in sorted(self.restored.items()) if r.kind is kind]
            for kind in RestoreKind
        }
        records = {
            kind: sum(self.restored[p].records for p in partitions)
            for kind, partitions in by_kind.items()
        }
        text = (
            f"rebalance done in {now - self.began:.3f} s: kept {_list(self.kept)}, "
            f"gained {_list(self.gained)}, lost {_list(self.lost)}; "
            f"delta-restored {_list(by_kind[RestoreKind.DELTA])} "
            f"({records[RestoreKind.DELTA]} changelog records), "
            f"fully restored {_list(by_kind[RestoreKind.FULL])} "
            f"({records[RestoreKind.FULL]} records); "
            f"longest pause of a kept partition {self.longest_pause_s:.3f} s"
        )
        if self.failed:
            text += f"; FAILED {_list(self.failed)}"
        return text


def _list(partitions: Iterable[int]) -> str:
    return "[" + ",".join(str(p) for p in sorted(partitions)) + "]"
