"""The processor's Kafka runtime: a consumer group on the raw topic, one worker per owned
partition, commits every interval, restores on assignment, drains on revocation and shutdown.

Order of things for a partition (contract §5.1, §5.10, §5.11):

0. before joining the group, the partitions it is expected to get are read (``warmup``);
1. assigned: it is paused at once, and restored in the background (``rebuild``): its committer
   starts (fencing any previous owner), its sessions are read back from the processor's internal
   changelog topic (only what others wrote since, when this processor kept them: ``kept``), the
   consumer seeks to its committed offset, and only then does it resume. The other partitions
   go on meanwhile; ``/readyz`` says ready once every assigned partition is restored;
2. records are applied as they arrive; every ``COMMIT_INTERVAL_MS`` (or ``COMMIT_MAX_RECORDS``)
   its batch commits: derived events, each touched session's state snapshot and changelog
   records, the input offset. A partition whose commits fall behind is paused on its own until
   its commit lands;
3. a failed commit, or a record the engine fails on, pauses the partition and restores it again
   from its last commit (the poison record is then dead-lettered unapplied);
4. a partition that cannot be restored turns ``/readyz`` 503, is logged and counted with its
   cause, its producer is closed, and the process exits non-zero after a bounded delay;
5. revoked or shutting down: the pending batch commits, the committer stops, and the sessions
   are kept (``kept``) in case the partition comes back, as most do after a rebalance.

Each rebalance is reported once its partitions are restored (``rebalance``): one log line and
the metrics of what was kept, gained, lost and read.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterable

from aiokafka import ConsumerRebalanceListener
from aiokafka.errors import IllegalStateError, KafkaError
from aiokafka.structs import TopicPartition

from processor.metrics import (
    ACTIVE_SESSIONS,
    ASSIGNED_PARTITIONS,
    CONSUMER_LAG,
    PARTITION_REBUILDS,
    PARTITION_THROTTLES,
    READY,
    SESSIONS_IN_MEMORY,
)
from processor.runtime.clients import Consumer, Producer, RuntimeClients, kafka_clients
from processor.runtime.committer import AtLeastOnceCommitter, Committer, TransactionalCommitter
from processor.runtime.failures import FatalFailures
from processor.runtime.housekeeping import caught_up, housekeep
from processor.runtime.kept import KeptPartition, KeptPartitions
from processor.runtime.partition import ExpiryRules, PartitionState, RawRecord
from processor.runtime.rebalance import RebalanceReport
from processor.runtime.rebuild import Recovery, RecoveryError
from processor.runtime.warmup import unless_stopped, warm_up
from processor.runtime.worker import PartitionWorker, Status
from processor.settings import Guarantee, ProcessorSettings
from processor.sources import CallbackReader, ParticipantKey

logger = logging.getLogger(__name__)


class ProcessorService:
    """``await service.run(stop)`` until ``stop`` is set; then drains, commits and leaves.

    Raises ``PartitionFailedError`` (after draining the healthy partitions) when a partition
    could not be restored for ``PROCESSOR_FATAL_EXIT_DELAY_S``.
    """

    def __init__(self, settings: ProcessorSettings, clients: RuntimeClients | None = None) -> None:
        self._settings = settings
        self._clients = kafka_clients(settings) if clients is None else clients
        self._clock = self._clients.clock
        self._restore_timeout_s = settings.restore_timeout_s
        self._failures = FatalFailures(self._clock, settings.fatal_exit_delay_s)
        self._workers: dict[int, PartitionWorker] = {}
        self._assigned = False
        self._running = False
        self._leaving = False
        """Shutting down: partitions assigned from now on are not taken."""
        self._consumer: Consumer | None = None
        self._shared_producer: Producer | None = None
        self._kept = KeptPartitions(
            max_sessions=settings.kept_state_max_sessions, max_age_s=settings.kept_state_max_age_s
        )
        self._released: set[int] = set()
        """Partitions released by the rebalance under way (the eager protocol revokes all)."""
        self._rebalance: RebalanceReport | None = None
        self.processed_records = 0

    # -- health ----------------------------------------------------------------------------

    @property
    def ready(self) -> bool:
        """Consuming, the group has assigned this member its partitions, and every one of
        them is restored (none restoring, none failed)."""
        return (
            self._running
            and self._assigned
            and all(w.status is Status.ACTIVE for w in self._workers.values())
        )

    @property
    def assigned_partitions(self) -> list[int]:
        return sorted(self._workers)

    @property
    def restoring_partitions(self) -> list[int]:
        return sorted(p for p, w in self._workers.items() if w.status is Status.RESTORING)

    @property
    def failed_partitions(self) -> dict[int, str]:
        return {
            p: w.failure or "unknown"
            for p, w in sorted(self._workers.items())
            if w.status is Status.FAILED
        }

    @property
    def last_rebalance(self) -> RebalanceReport | None:
        """What the latest assignment kept, gained, lost and read (closed once restored)."""
        return self._rebalance

    def sessions_of(self, partition: int) -> PartitionState | None:
        worker = self._workers.get(partition)
        return worker.state if worker else None

    # -- lifecycle -------------------------------------------------------------------------

    async def run(self, stop: asyncio.Event) -> None:
        settings = self._settings
        consumer = self._clients.consumer()
        self._consumer = consumer
        # Everything from the first start on is stopped in the finally: a start that fails, a
        # warm-up that times out or a stop mid-start would otherwise leave the clients'
        # connections and background tasks open.
        try:
            if settings.guarantee is Guarantee.AT_LEAST_ONCE:
                self._shared_producer = self._clients.producer(None, "meetings-processor")
                await self._shared_producer.start()
            await consumer.start()
            await unless_stopped(
                stop,
                warm_up(
                    topic=settings.topics.raw,
                    group=self._clients.group,
                    changelog=self._clients.changelog,
                    kept=self._kept,
                    clock=self._clock,
                    time_limit_s=self._restore_timeout_s,
                ),
            )
            consumer.subscribe([settings.topics.raw], listener=_Rebalance(self))
            self._running = True
            logger.info(
                "processor consuming %s as group %s (%s)",
                settings.topics.raw,
                settings.group_id,
                settings.guarantee.value,
            )
            await self._loop(consumer, stop)
        finally:
            self._running = False
            await self._shutdown(consumer)

    async def _loop(self, consumer: Consumer, stop: asyncio.Event) -> None:
        settings = self._settings
        interval_s = settings.commit_interval_ms / 1000
        next_tick = self._clock.monotonic()
        while not stop.is_set():
            batches = await consumer.getmany(
                timeout_ms=max(int(interval_s * 500), 1), max_records=settings.commit_max_records
            )
            for tp, records in batches.items():
                self._process(tp, records)
            now = self._clock.monotonic()
            if now >= next_tick:
                next_tick = now + settings.expiry_check_interval_s
                await self._tick(consumer)
            self._failures.check()
            for worker in list(self._workers.values()):
                if worker.status is not Status.ACTIVE:
                    continue
                pending = worker.state.pending_records
                if worker.commit_in_flight:
                    if pending >= 2 * settings.commit_max_records and not worker.throttled:
                        # Kafka is slower than this partition's input: hold it, not the others.
                        worker.throttled = True
                        consumer.pause(worker.partition)
                        PARTITION_THROTTLES.inc()
                    continue
                if worker.state.has_pending and (
                    now - worker.last_commit >= interval_s or pending >= settings.commit_max_records
                ):
                    worker.last_commit = now
                    worker.committing = asyncio.create_task(
                        self._commit(worker), name=f"commit-{worker.number}"
                    )

    def _process(self, tp: TopicPartition, records: list[RawRecord]) -> None:
        worker = self._workers.get(tp.partition)
        if worker is None or worker.status is not Status.ACTIVE:
            # Fetched before the partition was paused for a restore, which rewinds it to its
            # committed offset before it resumes: these records will be read again.
            return
        state = worker.state
        for record in records:
            state.process(record)
            self.processed_records += 1
            if state.poisoned is not None:
                worker.poison_offsets[state.poisoned.offset] = state.poisoned.error
                self._rebuild(worker, "processing_error")
                return

    async def _tick(self, consumer: Consumer) -> None:
        """Each partition's housekeeping on its own clock, and the gauges."""
        wall_ms = self._clock.wall_ms()
        for worker in list(self._workers.values()):
            if worker.status is not Status.ACTIVE:
                continue
            live = await caught_up(consumer, worker)
            if not worker.active:
                continue  # revoked or rebuilding meanwhile
            on_wall_clock = live and not self._settings.stream_time_only
            housekeep(
                worker,
                now_ms=wall_ms if on_wall_clock else worker.state.stream_time_ms,
                monotonic=self._clock.monotonic(),
            )
        self._kept.trim(self._workers, self._clock.monotonic())
        READY.set(1 if self.ready else 0)
        states = [worker.state for worker in self._workers.values()]
        SESSIONS_IN_MEMORY.set(sum(len(state.sessions) for state in states))
        ACTIVE_SESSIONS.set(sum(state.active_sessions for state in states))

    # -- commits and rebuilds --------------------------------------------------------------

    async def _commit(self, worker: PartitionWorker, *, rebuild_on_failure: bool = True) -> None:
        try:
            async with worker.lock:
                if worker.broken or worker.status not in (Status.ACTIVE, Status.RELEASING):
                    return
                batch = worker.state.drain()
                if batch.empty:
                    return
                assert worker.committer is not None
                try:
                    ends = await worker.committer.commit(batch)
                except Exception:
                    # Whatever went wrong, nothing of this batch is visible (the committer aborts).
                    worker.broken = True
                    logger.exception(
                        "commit of partition %d failed; rebuilding it from its last commit",
                        worker.number,
                    )
                    if not rebuild_on_failure:
                        raise
                    self._rebuild(worker, "commit_failed")
                    return
                end = ends.get(TopicPartition(self._settings.topics.changelog, worker.number))
                if end is not None:
                    worker.changelog_end = end
                if batch.writes_sessions:
                    worker.changelog_roll_due = (
                        self._clock.monotonic() + self._settings.changelog_segment_ms / 1000
                    )
        finally:
            if worker.throttled and worker.status is Status.ACTIVE:
                worker.throttled = False
                self._resume(worker)

    def _rebuild(self, worker: PartitionWorker, reason: str) -> None:
        """Pause the partition now (before anything awaits) and restore it in the background."""
        if worker.status is not Status.ACTIVE:
            return
        assert self._consumer is not None
        self._consumer.pause(worker.partition)
        worker.status = Status.RESTORING
        PARTITION_REBUILDS.labels(reason=reason).inc()
        self._start_restoring(worker)

    def _start_restoring(self, worker: PartitionWorker) -> None:
        worker.restoring = asyncio.create_task(
            self._restore(worker), name=f"restore-{worker.number}"
        )

    async def _restore(self, worker: PartitionWorker) -> None:
        released_at = self._kept.released_at(worker.number)
        try:
            state, restored = await self._recovery().run(worker)
        except RecoveryError as exc:
            await self._fail(worker, exc.cause, exc.reason)
            return
        except Exception as exc:
            logger.exception("restoring partition %d failed", worker.number)
            await self._fail(worker, "restore", repr(exc))
            return
        if self._workers.get(worker.number) is not worker or worker.status is not Status.RESTORING:
            return
        worker.state = state
        worker.status = Status.ACTIVE
        worker.broken = worker.throttled = False
        worker.last_commit = now = self._clock.monotonic()
        self._resume(worker)
        report = self._rebalance
        if report is not None and worker.number in report.kept | report.gained:
            report.partition_restored(worker.number, restored, now, released_at)

    def _recovery(self) -> Recovery:
        assert self._consumer is not None
        return Recovery(
            consumer=self._consumer,
            changelog=self._clients.changelog,
            kept=self._kept,
            clock=self._clock,
            new_committer=self._committer,
            new_state=self._new_state,
            time_limit_s=self._restore_timeout_s,
        )

    async def _fail(self, worker: PartitionWorker, cause: str, reason: str) -> None:
        if self._workers.get(worker.number) is not worker or worker.status is not Status.RESTORING:
            return
        worker.status = Status.FAILED
        worker.failure = reason
        self._failures.report(worker.number, cause, reason)
        if self._rebalance is not None:
            self._rebalance.partition_failed(worker.number, self._clock.monotonic())
        committer, worker.committer = worker.committer, None
        if committer is not None:
            with contextlib.suppress(KafkaError, OSError):
                await committer.stop()

    def _resume(self, worker: PartitionWorker) -> None:
        assert self._consumer is not None
        with contextlib.suppress(IllegalStateError):
            if worker.partition in self._consumer.assignment():
                self._consumer.resume(worker.partition)

    # -- assignment ------------------------------------------------------------------------

    def assign(self, partitions: Iterable[TopicPartition]) -> None:
        """Take new partitions: paused at once, restored in the background."""
        if self._leaving:
            logger.debug("leaving the group: not taking partitions %s", partitions)
            return
        self._assigned = True
        assert self._consumer is not None
        partitions = list(partitions)
        owned = {tp.partition for tp in partitions}
        now = self._clock.monotonic()
        self._rebalance = RebalanceReport.open(self._released | set(self._workers), owned, now)
        self._released = set()
        self._kept.trim(owned, now)
        new = [tp for tp in partitions if tp.partition not in self._workers]
        if not new:
            return
        self._consumer.pause(*new)
        for tp in new:
            worker = PartitionWorker(
                partition=tp, state=self._new_state(tp.partition, {}), committer=None
            )
            self._workers[tp.partition] = worker
            self._start_restoring(worker)
        ASSIGNED_PARTITIONS.set(len(self._workers))
        logger.debug("assigned partitions %s", sorted(tp.partition for tp in new))

    async def revoke(self, partitions: Iterable[TopicPartition]) -> None:
        self._assigned = False  # a rebalance is under way: ready again once assigned
        revoked = [
            self._workers[tp.partition] for tp in partitions if tp.partition in self._workers
        ]
        await asyncio.gather(*(self._release(worker) for worker in revoked))
        self._released.update(worker.number for worker in revoked)
        if revoked:
            logger.debug("released partitions %s", sorted(w.number for w in revoked))

    async def _release(self, worker: PartitionWorker) -> None:
        was_active = worker.status is Status.ACTIVE
        released_at = self._clock.monotonic()
        worker.status = Status.RELEASING
        if worker.restoring is not None and not worker.restoring.done():
            worker.restoring.cancel()
            await asyncio.wait({worker.restoring})
        await worker.settle()
        if was_active and not worker.broken:
            try:
                await self._commit(worker, rebuild_on_failure=False)
            except Exception:
                logger.exception("partition %d: its last batch did not commit", worker.number)
        if was_active and not worker.broken and worker.changelog_end is not None:
            # Its sessions are exactly what its changelog held after this processor's last
            # commit: kept, the partition is restored from them and a delta if it comes back.
            self._kept.keep(
                worker.number,
                KeptPartition(
                    sessions=worker.state.sessions,
                    changelog_end=worker.changelog_end,
                    released_at=released_at,
                    poison_offsets=dict(worker.poison_offsets),
                ),
            )
        async with worker.lock:
            self._workers.pop(worker.number, None)
            ASSIGNED_PARTITIONS.set(len(self._workers))
            with contextlib.suppress(KeyError):
                CONSUMER_LAG.remove(str(worker.number))
            if worker.committer is not None:
                with contextlib.suppress(KafkaError, OSError):
                    await worker.committer.stop()

    def _committer(self, partition: int) -> Committer:
        if self._settings.guarantee is Guarantee.EXACTLY_ONCE:
            return TransactionalCommitter(self._settings, partition, self._clients.producer)
        assert self._shared_producer is not None
        assert self._consumer is not None
        return AtLeastOnceCommitter(
            self._shared_producer, self._consumer, partition, self._settings.topics.raw
        )

    def _new_state(self, partition: int, poison_offsets: dict[int, str]) -> PartitionState:
        return PartitionState(
            partition,
            self._settings.topics,
            room_dedup_capacity=self._settings.room_dedup_capacity,
            poison_offsets=poison_offsets,
            max_listed_participants=self._settings.state_max_listed_participants,
            reader=CallbackReader(ParticipantKey(self._settings.video_participant_key)),
            expiry=ExpiryRules(
                idle_timeout_ms=int(self._settings.session_idle_timeout_s * 1000),
                retention_ms=int(self._settings.session_retention_s * 1000),
                empty_end_ms=int(self._settings.video_empty_session_end_s * 1000),
            ),
        )

    async def _shutdown(self, consumer: Consumer) -> None:
        """aiokafka does not call the rebalance listener on stop(): release partitions here.
        But stop() lets a rebalance under way finish first, which can assign partitions while
        the processor leaves: those are not taken (``assign``)."""
        self._leaving = True
        READY.set(0)
        await self.revoke([worker.partition for worker in list(self._workers.values())])
        with contextlib.suppress(KafkaError):
            await consumer.stop()  # leaves the group
        await self.revoke([worker.partition for worker in list(self._workers.values())])
        if self._shared_producer is not None:
            with contextlib.suppress(KafkaError, OSError):
                await self._shared_producer.stop()
        logger.info("processor stopped after %d records", self.processed_records)


class _Rebalance(ConsumerRebalanceListener):  # type: ignore[misc]  # aiokafka is untyped
    def __init__(self, service: ProcessorService) -> None:
        self._service = service

    async def on_partitions_revoked(self, revoked: list[TopicPartition]) -> None:
        await self._service.revoke(revoked)

    async def on_partitions_assigned(self, assigned: list[TopicPartition]) -> None:
        self._service.assign(assigned)
