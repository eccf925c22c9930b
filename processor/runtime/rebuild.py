"""Bringing a partition to its last commit: on assignment, after a failed commit, after a
record the engine failed on.

The order is what makes it exactly-once (contract §5.1, §5.11):

1. the partition is already paused (the caller pauses it before anything can await), so no
   record of it is applied while it is rebuilt; records fetched anyway are dropped;
2. the in-flight commit, if any, settles: the committed offset read below includes it or not;
3. a fresh producer starts: ``InitProducerId`` fences any other owner and aborts its open
   transaction, so the changelog and the committed offset below are final;
4. the sessions are read back from the changelog, to its last stable offset: whole (*full*), or,
   when this processor kept the partition's sessions since its own last commit (``kept``), only
   what others wrote after that commit, laid over them (*delta*);
5. the consumer seeks to the committed offset, and only then may the partition resume.

Applying records to the restored state before step 5 would let a later commit carry an offset
past records that were never applied to it; that is why nothing is applied in between.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from aiokafka.errors import KafkaError

from processor.engine import Session
from processor.runtime.changelog_read import (
    ChangelogRead,
    RestoreError,
    apply_delta,
    decode_sessions,
)
from processor.runtime.clients import ChangelogReader, Clock, Consumer
from processor.runtime.committer import Committer
from processor.runtime.kept import KeptPartition, KeptPartitions
from processor.runtime.partition import PartitionState
from processor.runtime.rebalance import Restored, RestoreKind
from processor.runtime.worker import PartitionWorker

logger = logging.getLogger(__name__)


class RecoveryError(Exception):
    """A partition could not be brought to its last commit; ``cause`` says which step failed."""

    def __init__(self, partition: int, cause: str, reason: str) -> None:
        super().__init__(f"partition {partition}: {reason}")
        self.partition = partition
        self.cause = cause
        """Metric label: ``producer``, ``restore`` or ``restore_timeout``."""
        self.reason = reason


@dataclass(frozen=True, slots=True)
class Recovery:
    consumer: Consumer
    changelog: ChangelogReader
    kept: KeptPartitions
    clock: Clock
    new_committer: Callable[[int], Committer]
    new_state: Callable[[int, dict[int, str]], PartitionState]
    time_limit_s: float

    async def run(self, worker: PartitionWorker) -> tuple[PartitionState, Restored]:
        """Steps 2 to 5 for ``worker``; returns the restored state (the consumer positioned)
        and how it was restored.

        Raises ``RecoveryError``; the committer it started is left on the worker either way,
        for the caller to stop.
        """
        await worker.settle()
        began = self.clock.monotonic()
        number = worker.number
        kept = self.kept.take(number, began)
        if kept is not None:
            worker.poison_offsets.update(kept.poison_offsets)
        async with worker.lock:
            old, worker.committer = worker.committer, None
            if old is not None:
                with contextlib.suppress(KafkaError, OSError):
                    await old.stop()
            step = "starting its producer"
            try:
                async with asyncio.timeout(self.time_limit_s):
                    committer = self.new_committer(number)
                    worker.committer = committer
                    await committer.start()
                    step = "reading its sessions back"
                    sessions, read, kind = await self._read(number, kept)
                    state = self.new_state(number, worker.poison_offsets)
                    state.restore(sessions)
                    worker.changelog_end = read.end
                    step = "reading its committed offset"
                    committed = await self.consumer.committed(worker.partition)
                    _forget_committed_poison(worker.poison_offsets, committed)
                    if committed is None:
                        await self.consumer.seek_to_beginning(worker.partition)
                    else:
                        self.consumer.seek(worker.partition, committed)
            except TimeoutError as exc:
                raise RecoveryError(
                    number,
                    "restore_timeout",
                    f"not restored within {self.time_limit_s:g} s (was {step})",
                ) from exc
            except RestoreError as exc:
                raise RecoveryError(number, "restore", exc.cause) from exc
            except Exception as exc:  # whatever it is, it must be loud (contract §5.10)
                cause = "producer" if step == "starting its producer" else "restore"
                raise RecoveryError(number, cause, f"{step}: {exc!r}") from exc
        restored = Restored(
            kind=kind,
            records=read.records,
            sessions=len(state.sessions),
            seconds=self.clock.monotonic() - began,
        )
        restored.record_metrics()
        # One line per partition is worth it when there was something to read.
        logger.log(
            logging.INFO if read.records else logging.DEBUG,
            "restored partition %d (%s): %d changelog records read, %d sessions, in %.3f s; "
            "resuming at offset %s",
            number,
            kind.value,
            read.records,
            restored.sessions,
            restored.seconds,
            "the beginning" if committed is None else committed,
        )
        return state, restored

    async def _read(
        self, number: int, kept: KeptPartition | None
    ) -> tuple[Iterable[Session], ChangelogRead, RestoreKind]:
        """Step 4: the delta over the kept sessions when there are some and it can be laid
        over them, else the whole changelog partition."""
        if kept is not None:
            read = (await self.changelog.read({number: kept.changelog_end}))[number]
            if read.end < kept.changelog_end:
                logger.warning(
                    "partition %d: its changelog ends at %d, before this processor's own last "
                    "write (%d): the topic was recreated? reading it whole",
                    number,
                    read.end,
                    kept.changelog_end,
                )
            else:
                try:
                    apply_delta(number, kept.sessions, read.latest)
                except RestoreError as exc:
                    logger.warning("partition %d: %s; reading its changelog whole", number, exc)
                else:
                    return kept.sessions.values(), read, RestoreKind.DELTA
        read = (await self.changelog.read({number: None}))[number]
        return decode_sessions(number, read.live()), read, RestoreKind.FULL


def _forget_committed_poison(poison_offsets: dict[int, str], committed: int | None) -> None:
    """Poison records behind the committed offset are dead-lettered for good."""
    if committed is None:
        return
    for offset in [o for o in poison_offsets if o < committed]:
        del poison_offsets[offset]
