"""The processor's Kafka runtime: a consumer group on the raw topic, one worker per owned
partition, commits every interval, restores on assignment, drains on revocation and shutdown.

Order of things for a partition:
1. assigned: its committer starts (fencing any previous owner), its sessions are read back from
   the state topic, only then are its records processed (aiokafka awaits the rebalance listener
   before fetching for the new assignment);
2. records are applied as they arrive; every ``COMMIT_INTERVAL_MS`` (or ``COMMIT_MAX_RECORDS``)
   its batch commits: derived events, one snapshot per touched session, the input offset;
3. a failed commit leaves nothing visible: the partition's memory is rebuilt from the state
   topic and the consumer rewinds to the committed offset;
4. revoked or shutting down: the pending batch commits, the committer stops.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Iterable
from dataclasses import dataclass, field

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRebalanceListener
from aiokafka.errors import IllegalStateError, KafkaError
from aiokafka.structs import TopicPartition

from processor.metrics import (
    ACTIVE_SESSIONS,
    ASSIGNED_PARTITIONS,
    CONSUMER_LAG,
    RESTORE_SECONDS,
    RESTORED_SESSIONS,
    SESSIONS_IN_MEMORY,
)
from processor.runtime.committer import AtLeastOnceCommitter, Committer, TransactionalCommitter
from processor.runtime.partition import PartitionState, RawRecord
from processor.runtime.restore import read_sessions
from processor.settings import Guarantee, ProcessorSettings

logger = logging.getLogger(__name__)


@dataclass(slots=True)
class PartitionWorker:
    partition: TopicPartition
    state: PartitionState
    committer: Committer
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    last_commit: float = field(default_factory=time.monotonic)
    failed: BaseException | None = None
    """Set when a failed commit could not be recovered from: the partition must not commit
    again (it would skip the lost batch); the process stops and a restart restores it."""
    committing: asyncio.Task[None] | None = None
    """The commit in flight, if any: records keep being applied meanwhile (into the next
    batch), so fetching and processing never wait for Kafka's transaction round trips."""

    @property
    def commit_in_flight(self) -> bool:
        return self.committing is not None and not self.committing.done()

    async def settle(self) -> None:
        """Wait for the commit in flight, if any."""
        if self.committing is not None:
            await asyncio.wait({self.committing})


class ProcessorService:
    """``await service.run(stop)`` until ``stop`` is set; then drains, commits and leaves."""

    def __init__(self, settings: ProcessorSettings) -> None:
        self._settings = settings
        self._workers: dict[int, PartitionWorker] = {}
        self._restoring = 0
        self._running = False
        self._consumer: AIOKafkaConsumer | None = None
        self._shared_producer: AIOKafkaProducer | None = None
        self.processed_records = 0

    # -- health ----------------------------------------------------------------------------

    @property
    def ready(self) -> bool:
        """Consuming, and no assigned partition is still being restored."""
        return self._running and self._restoring == 0

    @property
    def assigned_partitions(self) -> list[int]:
        return sorted(self._workers)

    def sessions_of(self, partition: int) -> PartitionState | None:
        worker = self._workers.get(partition)
        return worker.state if worker else None

    # -- lifecycle -------------------------------------------------------------------------

    async def run(self, stop: asyncio.Event) -> None:
        settings = self._settings
        consumer = AIOKafkaConsumer(
            **settings.kafka.client_options(),
            group_id=settings.group_id,
            client_id="meetings-processor",
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            isolation_level="read_committed",
            max_poll_records=settings.commit_max_records,
            session_timeout_ms=settings.consumer_session_timeout_ms,
            heartbeat_interval_ms=max(settings.consumer_session_timeout_ms // 5, 100),
        )
        self._consumer = consumer
        if settings.guarantee is Guarantee.AT_LEAST_ONCE:
            self._shared_producer = AIOKafkaProducer(
                **settings.kafka.client_options(),
                enable_idempotence=True,
                client_id="meetings-processor",
            )
            await self._shared_producer.start()
        await consumer.start()
        consumer.subscribe([settings.topics.raw], listener=_Rebalance(self))
        self._running = True
        logger.info(
            "processor consuming %s as group %s (%s)",
            settings.topics.raw,
            settings.group_id,
            settings.guarantee.value,
        )
        try:
            await self._loop(consumer, stop)
        finally:
            self._running = False
            await self._shutdown(consumer)

    async def _loop(self, consumer: AIOKafkaConsumer, stop: asyncio.Event) -> None:
        settings = self._settings
        interval_s = settings.commit_interval_ms / 1000
        next_tick = time.monotonic()
        while not stop.is_set():
            batches = await consumer.getmany(
                timeout_ms=max(int(interval_s * 500), 1), max_records=settings.commit_max_records
            )
            for tp, records in batches.items():
                self._process(consumer, tp, records)
            now = time.monotonic()
            if now >= next_tick:
                next_tick = now + settings.expiry_check_interval_s
                self._expire_sessions()
                await self._report(consumer)
            for worker in list(self._workers.values()):
                if worker.failed is not None:
                    raise RuntimeError(f"{worker.partition} cannot commit") from worker.failed
                pending = worker.state.pending_records
                if worker.commit_in_flight:
                    if pending >= 2 * settings.commit_max_records:
                        await worker.settle()  # backpressure: Kafka is slower than input
                    continue
                if worker.state.has_pending and (
                    now - worker.last_commit >= interval_s or pending >= settings.commit_max_records
                ):
                    worker.last_commit = now
                    worker.committing = asyncio.create_task(
                        self._commit(worker), name=f"commit-{worker.partition.partition}"
                    )

    def _process(
        self, consumer: AIOKafkaConsumer, tp: TopicPartition, records: list[RawRecord]
    ) -> None:
        worker = self._workers.get(tp.partition)
        if worker is None:
            # Not restored yet (a fetch can complete while the assignment is being restored),
            # or revoked meanwhile. Rewind, so these records are fetched again once the
            # partition is ready; if it is no longer ours, its next owner reads them.
            with contextlib.suppress(IllegalStateError, AssertionError):
                consumer.seek(tp, records[0].offset)
            return
        for record in records:
            worker.state.process(record)
            self.processed_records += 1

    def _expire_sessions(self) -> None:
        now_ms = time.time_ns() // 1_000_000
        idle_ms = int(self._settings.session_idle_timeout_s * 1000)
        retention_ms = int(self._settings.session_retention_s * 1000)
        for worker in self._workers.values():
            worker.state.expire(now_ms, idle_timeout_ms=idle_ms, retention_ms=retention_ms)

    async def _report(self, consumer: AIOKafkaConsumer) -> None:
        sessions = [s for w in self._workers.values() for s in w.state.sessions.values()]
        SESSIONS_IN_MEMORY.set(len(sessions))
        ACTIVE_SESSIONS.set(sum(1 for s in sessions if s.status == "active"))
        for worker in list(self._workers.values()):
            highwater = consumer.highwater(worker.partition)
            if highwater is None:
                continue
            with contextlib.suppress(KafkaError, AssertionError, IllegalStateError):
                position = await consumer.position(worker.partition)
                CONSUMER_LAG.labels(partition=str(worker.partition.partition)).set(
                    max(highwater - position, 0)
                )

    async def _commit(self, worker: PartitionWorker) -> None:
        async with worker.lock:
            if worker.partition.partition not in self._workers:
                return
            batch = worker.state.drain()
            if batch.empty:
                return
            try:
                await worker.committer.commit(batch)
            except Exception:
                # Whatever went wrong, nothing of this batch is visible (the committer aborts).
                logger.exception(
                    "commit of %s failed; rebuilding it from the last commit", worker.partition
                )
                try:
                    await self._rebuild(worker)
                except Exception as fatal:
                    logger.exception("could not rebuild %s", worker.partition)
                    worker.failed = fatal

    async def _rebuild(self, worker: PartitionWorker) -> None:
        """Forget uncommitted work: sessions from the state topic, input from the commit.

        The committer is replaced too: a producer that was fenced (another process started one
        with the same transactional id) or otherwise broken never recovers, and starting a new
        one fences any zombie and aborts its open transaction before the state is read.
        """
        consumer = self._consumer
        assert consumer is not None
        with contextlib.suppress(KafkaError):
            await worker.committer.stop()
        committer = self._committer(worker.partition.partition)
        await committer.start()
        worker.committer = committer
        state = await self._restored_state(worker.partition.partition)
        worker.state = state
        committed = await consumer.committed(worker.partition)
        if committed is None:
            await consumer.seek_to_beginning(worker.partition)
        else:
            consumer.seek(worker.partition, committed)

    # -- assignment ------------------------------------------------------------------------

    async def assign(self, partitions: Iterable[TopicPartition]) -> None:
        partitions = [tp for tp in partitions if tp.partition not in self._workers]
        if not partitions:
            return
        consumer = self._consumer
        assert consumer is not None
        # Before anything else (no await yet): no records of these partitions until restored.
        consumer.pause(*partitions)
        self._restoring += 1
        try:
            committers = {tp.partition: self._committer(tp.partition) for tp in partitions}
            await asyncio.gather(*(c.start() for c in committers.values()))
            states = await self._restored_states([tp.partition for tp in partitions])
            for tp in partitions:
                self._workers[tp.partition] = PartitionWorker(
                    partition=tp, state=states[tp.partition], committer=committers[tp.partition]
                )
        finally:
            self._restoring -= 1
        ASSIGNED_PARTITIONS.set(len(self._workers))
        consumer.resume(*[tp for tp in partitions if tp in consumer.assignment()])
        logger.info("assigned partitions %s", sorted(tp.partition for tp in partitions))

    async def revoke(self, partitions: Iterable[TopicPartition]) -> None:
        revoked = [
            self._workers[tp.partition] for tp in partitions if tp.partition in self._workers
        ]
        await asyncio.gather(*(self._release(worker) for worker in revoked))
        if revoked:
            logger.info("released partitions %s", sorted(w.partition.partition for w in revoked))

    async def _release(self, worker: PartitionWorker) -> None:
        await worker.settle()
        if worker.failed is None:
            await self._commit(worker)
        async with worker.lock:
            self._workers.pop(worker.partition.partition, None)
            ASSIGNED_PARTITIONS.set(len(self._workers))
            with contextlib.suppress(KeyError):
                CONSUMER_LAG.remove(str(worker.partition.partition))
            await worker.committer.stop()

    def _committer(self, partition: int) -> Committer:
        if self._settings.guarantee is Guarantee.EXACTLY_ONCE:
            return TransactionalCommitter(self._settings, partition)
        assert self._shared_producer is not None
        assert self._consumer is not None
        return AtLeastOnceCommitter(
            self._shared_producer, self._consumer, partition, self._settings.topics.raw
        )

    async def _restored_states(self, partitions: list[int]) -> dict[int, PartitionState]:
        began = time.perf_counter()
        snapshots = await read_sessions(
            self._settings.kafka, self._settings.topics.changelog, partitions
        )
        states: dict[int, PartitionState] = {}
        for partition in partitions:
            state = PartitionState(
                partition,
                self._settings.topics,
                room_dedup_capacity=self._settings.room_dedup_capacity,
                max_listed_participants=self._settings.state_max_listed_participants,
            )
            restored = state.restore(snapshots.get(partition, []))
            RESTORED_SESSIONS.inc(restored)
            states[partition] = state
        elapsed = time.perf_counter() - began
        RESTORE_SECONDS.observe(elapsed)
        logger.info(
            "restored %d sessions of partitions %s in %.3f s",
            sum(len(s.sessions) for s in states.values()),
            partitions,
            elapsed,
        )
        return states

    async def _restored_state(self, partition: int) -> PartitionState:
        return (await self._restored_states([partition]))[partition]

    async def _shutdown(self, consumer: AIOKafkaConsumer) -> None:
        """aiokafka does not call the rebalance listener on stop(): release partitions here."""
        await self.revoke([worker.partition for worker in list(self._workers.values())])
        with contextlib.suppress(KafkaError):
            await consumer.stop()  # leaves the group
        if self._shared_producer is not None:
            await self._shared_producer.stop()
        logger.info("processor stopped after %d records", self.processed_records)


class _Rebalance(ConsumerRebalanceListener):  # type: ignore[misc]  # aiokafka is untyped
    def __init__(self, service: ProcessorService) -> None:
        self._service = service

    async def on_partitions_revoked(self, revoked: list[TopicPartition]) -> None:
        await self._service.revoke(revoked)

    async def on_partitions_assigned(self, assigned: list[TopicPartition]) -> None:
        await self._service.assign(assigned)
