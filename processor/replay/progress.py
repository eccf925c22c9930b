"""How far a replay has come: records done against the raw topic's ends taken at its start."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Progress:
    """A replay's position over the partitions it must read."""

    starts: Mapping[int, int]
    """Per partition, where this replay began reading (its committed offset, else the log start)."""
    ends: Mapping[int, int]
    """Per partition, the raw topic's end when the replay started: where it stops."""
    done_to: Mapping[int, int]
    """Per partition, the committed offset now."""

    @property
    def total(self) -> int:
        return sum(max(self.ends[p] - self.starts[p], 0) for p in self.ends)

    @property
    def done(self) -> int:
        return sum(
            max(min(self.done_to.get(p, self.starts[p]), self.ends[p]) - self.starts[p], 0)
            for p in self.ends
        )

    @property
    def partitions_done(self) -> int:
        return sum(1 for p, end in self.ends.items() if self.done_to.get(p, self.starts[p]) >= end)

    @property
    def finished(self) -> bool:
        return self.partitions_done == len(self.ends)


def describe(progress: Progress, elapsed_s: float) -> str:
    """One line: records done of the total, the rate so far, the time left at that rate."""
    done, total = progress.done, progress.total
    share = 100.0 if total == 0 else 100 * done / total
    rate = done / elapsed_s if elapsed_s > 0 else 0.0
    left = total - done
    eta = "done" if left == 0 else ("unknown" if rate == 0 else _duration(left / rate))
    return (
        f"{done:,}/{total:,} records ({share:.1f}%), {rate:,.0f} records/s, ETA {eta}, "
        f"partitions done {progress.partitions_done}/{len(progress.ends)}"
    )


def _duration(seconds: float) -> str:
    whole = round(seconds)
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h{minutes:02d}m"
    if minutes:
        return f"{minutes}m{secs:02d}s"
    return f"{secs}s"
