"""Sessions of released partitions, kept in memory in case the partitions come back.

Kafka's eager rebalance revokes every partition of every member, and most of them come straight
back to the member that had them. A partition released cleanly (its last batch committed) leaves
its sessions here with the changelog offset right after that commit's own records; when it is
assigned again, only what another owner wrote to its changelog since is read and laid over them
(a delta restore, ``rebuild``): zero records when nobody else owned it in between.

Bounds:

* memory: the sessions of partitions this processor does *not* own now (moved away, kept in case
  they come back) count against ``KEPT_STATE_MAX_SESSIONS``; the oldest released go first. The
  partitions it owns again take their entries back at once;
* age: a delta read must see every tombstone written since the release, and compaction drops
  tombstones after ``CHANGELOG_DELETE_RETENTION_MS``: an entry older than half of that is
  dropped, and the partition is read whole if it comes back.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from processor.engine import Session
from processor.metrics import KEPT_SESSIONS


@dataclass(slots=True)
class KeptPartition:
    """A released partition's committed sessions and where its changelog stood."""

    sessions: dict[str, Session]
    changelog_end: int
    """The offset right after this processor's last committed changelog record of the
    partition: anything from here on was written by another owner."""
    released_at: float
    """Monotonic seconds when it stopped being processed (for the pause it costs)."""
    poison_offsets: dict[int, str] = field(default_factory=dict)


class KeptPartitions:
    def __init__(self, *, max_sessions: int, max_age_s: float) -> None:
        self._max_sessions = max_sessions
        self._max_age_s = max_age_s
        self._kept: dict[int, KeptPartition] = {}  # in order of release

    def __len__(self) -> int:
        return len(self._kept)

    @property
    def sessions(self) -> int:
        return sum(len(kept.sessions) for kept in self._kept.values())

    def keep(self, partition: int, kept: KeptPartition) -> None:
        self._kept.pop(partition, None)
        self._kept[partition] = kept
        self._publish()

    def take(self, partition: int, now: float) -> KeptPartition | None:
        """The partition's kept state (it leaves this store), unless it is too old to trust."""
        kept = self._kept.pop(partition, None)
        self._publish()
        if kept is None or now - kept.released_at > self._max_age_s:
            return None
        return kept

    def released_at(self, partition: int) -> float | None:
        kept = self._kept.get(partition)
        return None if kept is None else kept.released_at

    def trim(self, owned: Iterable[int], now: float) -> None:
        """Drop what is too old, then the oldest of the partitions not in ``owned`` until
        their sessions fit ``KEPT_STATE_MAX_SESSIONS``."""
        for partition in [
            p for p, kept in self._kept.items() if now - kept.released_at > self._max_age_s
        ]:
            del self._kept[partition]
        owned = set(owned)
        away = [p for p in self._kept if p not in owned]
        held = sum(len(self._kept[p].sessions) for p in away)
        for partition in away:  # oldest first
            if held <= self._max_sessions:
                break
            held -= len(self._kept.pop(partition).sessions)
        self._publish()

    def _publish(self) -> None:
        KEPT_SESSIONS.set(self.sessions)
