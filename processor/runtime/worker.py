"""One owned raw partition: its working state, its committer, and where it is in its life."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from enum import StrEnum

from aiokafka.structs import TopicPartition

from processor.runtime.committer import Committer
from processor.runtime.partition import PartitionState


class Status(StrEnum):
    RESTORING = "restoring"
    """Assigned, or rebuilding after a failed commit or a poison record: the partition is
    paused, records fetched for it anyway are dropped (it is rewound before it resumes)."""
    ACTIVE = "active"
    """Restored and positioned at its committed offset: records are applied and committed."""
    FAILED = "failed"
    """It could not be restored: paused, its producer closed, the process exits soon."""
    RELEASING = "releasing"
    """Revoked or shutting down: its last batch commits, nothing new is applied."""


@dataclass(slots=True)
class PartitionWorker:
    partition: TopicPartition
    state: PartitionState
    committer: Committer | None
    """``None`` until restoring has started one (and after a failure closed it)."""
    status: Status = Status.RESTORING
    last_commit: float = 0.0
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    """Held by a commit and by a restore: never both at once on one partition."""
    committing: asyncio.Task[None] | None = None
    """The commit in flight, if any: records keep being applied meanwhile (into the next
    batch), so fetching and processing never wait for Kafka's transaction round trips."""
    restoring: asyncio.Task[None] | None = None
    throttled: bool = False
    """Paused because its commits fall behind its input; resumed when its commit lands."""
    broken: bool = False
    """A commit failed: nothing more may commit (it would skip the lost batch) until the
    partition is restored from its last commit."""
    failure: str | None = None
    """Why it could not be restored, for ``/readyz``, the log and the exit message."""
    poison_offsets: dict[int, str] = field(default_factory=dict)
    """Records the engine failed on, kept across rebuilds so the replay dead-letters them."""
    changelog_roll_due: float | None = None
    """Monotonic time at which its changelog's active segment is made to roll, if no session
    is written before (``PartitionState.roll_changelog_segment``)."""
    changelog_end: int | None = None
    """The offset right after this processor's last committed changelog record of the
    partition (or the end of the restore that read it): a delta read starts here."""

    @property
    def number(self) -> int:
        return int(self.partition.partition)

    @property
    def active(self) -> bool:
        return self.status is Status.ACTIVE

    @property
    def commit_in_flight(self) -> bool:
        return self.committing is not None and not self.committing.done()

    async def settle(self) -> None:
        """Wait for the commit in flight, if any (unless it is the caller)."""
        task = self.committing
        if task is not None and task is not asyncio.current_task():
            await asyncio.wait({task})
