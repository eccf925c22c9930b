"""Processor throughput against its same-run ceiling, restore time and memory, in one run.

1. Throughput, for each source: a raw topic is pre-loaded with the callbacks of thousands of
   concurrent meetings (``bench.meetings``), or as many Vonage Video API sessions
   (``bench.video``, the processor with ``VIDEO_PARTICIPANT_KEY=data.userId``); then each
   contender consumes those records from the beginning, with a fresh consumer group and fresh
   output topics:
   a. the ceiling: the fastest consume-produce-commit loop aiokafka allows here, at-least-once
      (``Passthrough``: the processor's clients, its record batches per partition and its
      commits in the background, no engine; the same bytes out under the same key);
   b. ``ProcessorService`` exactly-once (per-partition transactions, 100 ms commit interval);
   c. ``ProcessorService`` at-least-once.
   Each starts on the empty raw topic; once its group has assigned it every partition, the
   records are written in one transaction, and it is timed from that commit (a
   ``read_committed`` consumer then sees them all at once) until its group's committed
   offsets cover them (``drained``), on uvloop as in production; three rounds, every
   contender of both sources in each, the median kept; the two sources' figures are printed
   side by side.
2. Restore: ``read_sessions`` plus ``PartitionState.restore`` of 100,000 sessions' changelogs,
   and of one webinar of 50,000 participant ids.
3. Memory per active session and per known participant of a webinar, and the engine's speed
   inside that webinar (``bench.processor_state``); memory per active session and the engine's
   speed for both sources side by side (``bench.processor_video``).
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import statistics
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import uvloop
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import GroupCoordinatorNotAvailableError
from aiokafka.structs import TopicPartition

from bench import processor_video
from bench.broker import kafka
from bench.goals import Goal, at_least, at_most, below
from bench.meetings import RawCallback, raw_callbacks
from bench.processor_state import (
    STATE_SESSIONS,
    measure_big_restore,
    measure_big_session,
    measure_memory,
    measure_restore,
)
from bench.report import emit
from bench.side_by_side import heading, median_spread, row
from bench.video import PARTICIPANT_KEY, raw_video_callbacks
from processor.provisioning import ensure_topics
from processor.runtime import ProcessorService
from processor.runtime.clients import MAX_BATCH_BYTES
from processor.runtime.partition import Output
from processor.runtime.produce import BatchSender
from processor.settings import Guarantee, ProcessorSettings
from servicekit.kafka import KafkaSettings
from servicekit.partitioner import key_partition
from servicekit.record_batches import RecordBatch, append_record

PARTITIONS = 8
SESSIONS = 4_000
COMMIT_INTERVAL_S = 0.1
MAX_POLL_RECORDS = ProcessorSettings().commit_max_records
RUN_TIMEOUT_S = 120.0
ROUNDS = 3

Ends = dict[TopicPartition, int]


def bench_settings(bootstrap: str, guarantee: Guarantee) -> ProcessorSettings:
    """Defaults, with topics under a prefix no earlier run used."""
    prefix = f"bench-{uuid.uuid4().hex[:10]}."
    return ProcessorSettings(
        kafka=KafkaSettings(bootstrap_servers=bootstrap, topic_prefix=prefix),
        group_id=f"{prefix}processor",
        guarantee=guarantee,
        topic_partitions=PARTITIONS,
        http_port=0,
        video_participant_key=PARTICIPANT_KEY,  # Meetings records never read it
    )


async def preload(settings: ProcessorSettings, callbacks: Sequence[RawCallback]) -> Ends:
    """Create the topics of ``settings`` and fill its raw topic; returns the end offsets.

    Every measured run gets a raw topic of its own with the same records, so no run restores
    state another one left behind. Records go to the partitions ingest would give their keys,
    handed over as whole record batches: one ``send`` per record took longer than the
    measured run itself."""
    await ensure_topics(settings)
    producer = AIOKafkaProducer(
        **settings.kafka.client_options(), enable_idempotence=True, max_batch_size=MAX_BATCH_BYTES
    )
    await producer.start()
    try:
        return await write_raw(producer, settings, callbacks)
    finally:
        await producer.stop()


async def preload_at_once(settings: ProcessorSettings, callbacks: Sequence[RawCallback]) -> Ends:
    """``preload``'s records in one transaction: ``read_committed`` consumers see none of them
    until its commit, then all (the topics must exist). The end offsets, once committed."""
    producer = AIOKafkaProducer(
        **settings.kafka.client_options(),
        transactional_id=f"{settings.kafka.topic_prefix}backlog",
        max_batch_size=MAX_BATCH_BYTES,
    )
    await producer.start()
    try:
        await producer.begin_transaction()
        ends = await write_raw(producer, settings, callbacks)
        await producer.commit_transaction()
    finally:
        await producer.stop()
    return ends


async def write_raw(
    producer: AIOKafkaProducer, settings: ProcessorSettings, callbacks: Sequence[RawCallback]
) -> Ends:
    """Hand ``callbacks`` to ``producer`` as record batches for the raw topic's partitions
    (the ones ingest gives their keys), and wait for their acknowledgement; the end offsets."""
    raw = settings.topics.raw
    handed: list[tuple[int, int, asyncio.Future[Any]]] = []
    batches: dict[int, RecordBatch] = {}
    for number, callback in enumerate(callbacks):
        partition = key_partition(callback.key, settings.topic_partitions)
        batch = batches.get(partition)
        if batch is None:
            batch = batches[partition] = producer.create_batch()
        if not _append(batch, callback, number):  # full: hand it over, start the next
            sent = await producer.send_batch(batch, raw, partition=partition)
            handed.append((partition, batch.record_count(), sent))
            batch = batches[partition] = producer.create_batch()
            _append(batch, callback, number)
    for partition, batch in batches.items():
        sent = await producer.send_batch(batch, raw, partition=partition)
        handed.append((partition, batch.record_count(), sent))
    acknowledged = await asyncio.gather(*(sent for _, _, sent in handed))
    ends: Ends = {}
    for (partition, count, _), metadata in zip(handed, acknowledged, strict=True):
        tp = TopicPartition(raw, partition)  # a batch's metadata carries its base offset
        ends[tp] = max(ends.get(tp, 0), metadata.offset + count)
    return ends


def _append(batch: RecordBatch, callback: RawCallback, number: int) -> bool:
    return append_record(
        batch,
        key=callback.key,
        value=callback.body,
        headers=callback.headers(number),
        timestamp_ms=callback.received_at_ms,
    )


async def drained(
    bootstrap: str,
    settings: ProcessorSettings,
    callbacks: Sequence[RawCallback],
    worker: asyncio.Task[Any],
    ready: Callable[[], bool],
) -> float:
    """Records/s of the consumer group ``worker`` runs: once ``ready`` says it owns the empty
    raw topic's partitions, the backlog is written in one transaction, so a ``read_committed``
    consumer sees all of it at once, as after an outage; the clock runs from that commit until
    the group's committed offsets cover it. Every contender is timed this way: none is charged
    for joining its group, and none applies records before the clock starts (a clock started
    at the first record seen, in the contender's own event loop, began after a whole fetch)."""
    await _poll(ready, worker, interval=0.01)
    ends = await preload_at_once(settings, callbacks)
    began = time.perf_counter()
    await until_covered(bootstrap, settings.group_id, ends, worker)
    return sum(ends.values()) / (time.perf_counter() - began)


async def until_covered(bootstrap: str, group: str, ends: Ends, worker: asyncio.Task[Any]) -> None:
    """Until ``group``'s committed offsets cover ``ends`` (raises what stopped ``worker``)."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:

        async def covered() -> bool:
            try:
                offsets = await admin.list_consumer_group_offsets(group)
            except GroupCoordinatorNotAvailableError:
                return False  # on a fresh broker: the offsets topic is being created
            return all(tp in offsets and offsets[tp].offset >= end for tp, end in ends.items())

        await _poll(covered, worker, interval=0.01)
    finally:
        await admin.close()


async def _poll(
    condition: Callable[[], bool | Awaitable[bool]], worker: asyncio.Task[Any], *, interval: float
) -> None:
    while True:
        outcome = condition()
        if not isinstance(outcome, bool):
            outcome = await outcome
        if outcome:
            return
        if worker.done():
            worker.result()  # raises what stopped it
            raise RuntimeError("the consumer stopped before committing everything")
        await asyncio.sleep(interval)


@dataclasses.dataclass(slots=True)
class _Partition:
    """What the passthrough holds for one input partition between its commits."""

    outputs: list[Output] = dataclasses.field(default_factory=list)
    next_offset: int = 0
    last_commit: float = 0.0
    committing: asyncio.Task[None] | None = None
    paused: bool = False
    sender: BatchSender = dataclasses.field(default_factory=BatchSender)


@dataclasses.dataclass(slots=True)
class Passthrough:
    """The fastest consume → produce → commit loop aiokafka allows here, at-least-once: the
    processor without its engine, so the processor's ceiling.

    Consumer and producer take the processor's settings (``processor.runtime.clients``:
    fetch sizes, idempotent producer, 1 MB batches), and records go out the processor's way:
    each input partition's records since its last commit are handed over as one record batch
    per output partition (``processor.runtime.produce.BatchSender``: the partitioner ingest
    and the processor share, ``send_batch``), and the commit (outputs acknowledged, then the
    input offset) runs in the background while the next records are read, one in flight per
    partition, every ``COMMIT_INTERVAL_S`` or ``MAX_POLL_RECORDS`` records, a partition paused
    while twice that waits, as the processor does. Each output is its input's value under its
    key; nothing is decoded."""

    settings: ProcessorSettings
    consumed: int = 0
    ready: bool = False
    """Whether the group assigned it every partition of the raw topic."""

    async def run(self, stop: asyncio.Event) -> None:
        settings = self.settings
        consumer = AIOKafkaConsumer(
            settings.topics.raw,
            **settings.kafka.client_options(),
            group_id=settings.group_id,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            isolation_level="read_committed",  # as the processor: see a backlog once committed
            max_poll_records=MAX_POLL_RECORDS,
        )
        producer = AIOKafkaProducer(
            **settings.kafka.producer_options(),
            enable_idempotence=True,
            max_batch_size=MAX_BATCH_BYTES,
        )
        await producer.start()
        await consumer.start()
        partitions: dict[TopicPartition, _Partition] = {}
        output = settings.topics.sessions  # keyed by session id, as the raw topic
        try:
            while not stop.is_set():
                batches = await consumer.getmany(
                    timeout_ms=int(COMMIT_INTERVAL_S * 500), max_records=MAX_POLL_RECORDS
                )
                self.ready = len(consumer.assignment()) == settings.topic_partitions
                for tp, records in batches.items():
                    held = partitions.get(tp) or partitions.setdefault(tp, _Partition())
                    held.outputs += [Output(output, r.key, r.value) for r in records]
                    held.next_offset = records[-1].offset + 1
                    self.consumed += len(records)
                now = time.monotonic()
                for tp, held in partitions.items():
                    self._pace(consumer, producer, tp, held, now)
        finally:
            commits = [held.committing for held in partitions.values() if held.committing]
            await asyncio.gather(*commits, return_exceptions=True)
            await consumer.stop()
            await producer.stop()

    def _pace(
        self,
        consumer: AIOKafkaConsumer,
        producer: AIOKafkaProducer,
        tp: TopicPartition,
        held: _Partition,
        now: float,
    ) -> None:
        """Start the partition's next commit when it is due and none is in flight."""
        if held.committing is not None:
            if not held.committing.done():
                if len(held.outputs) >= 2 * MAX_POLL_RECORDS and not held.paused:
                    held.paused = True  # Kafka is slower than this partition's input
                    consumer.pause(tp)
                return
            held.committing.result()  # a failed commit fails the run
            held.committing = None
            if held.paused:
                held.paused = False
                consumer.resume(tp)
        if held.outputs and (
            now - held.last_commit >= COMMIT_INTERVAL_S or len(held.outputs) >= MAX_POLL_RECORDS
        ):
            held.last_commit = now
            outputs, held.outputs = held.outputs, []
            held.committing = asyncio.create_task(
                _commit(consumer, producer, held.sender, outputs, {tp: held.next_offset})
            )


async def _commit(
    consumer: AIOKafkaConsumer,
    producer: AIOKafkaProducer,
    sender: BatchSender,
    outputs: list[Output],
    offsets: dict[TopicPartition, int],
) -> None:
    deliveries: list[asyncio.Future[object]] = []
    await sender.deliver_all(producer, outputs, deliveries)
    await consumer.commit(offsets)


async def measure_passthrough(bootstrap: str, callbacks: Sequence[RawCallback]) -> float:
    settings = bench_settings(bootstrap, Guarantee.AT_LEAST_ONCE)
    await ensure_topics(settings)
    passthrough = Passthrough(settings)
    stop = asyncio.Event()
    task = asyncio.create_task(passthrough.run(stop))
    try:
        return await asyncio.wait_for(
            drained(bootstrap, settings, callbacks, task, lambda: passthrough.ready),
            RUN_TIMEOUT_S,
        )
    finally:
        stop.set()
        await asyncio.wait_for(task, 60)


async def measure_processor(
    bootstrap: str, callbacks: Sequence[RawCallback], guarantee: Guarantee
) -> float:
    """Records/s of ``ProcessorService`` in this event loop (as ``tests/…/conftest.running``)."""
    settings = bench_settings(bootstrap, guarantee)
    await ensure_topics(settings)
    service = ProcessorService(settings)
    stop = asyncio.Event()
    task = asyncio.create_task(service.run(stop))
    try:
        return await asyncio.wait_for(
            drained(bootstrap, settings, callbacks, task, lambda: service.ready), RUN_TIMEOUT_S
        )
    finally:
        stop.set()
        await asyncio.wait_for(task, 60)


def run(rounds: int = ROUNDS) -> list[Goal]:
    aiokafka_logger = logging.getLogger("aiokafka")
    level = aiokafka_logger.level
    # Freshly created topics have no leader for a moment; aiokafka logs its (successful) retries
    # as errors. A real failure still surfaces: as an exception, or the run's timeout.
    aiokafka_logger.setLevel(logging.CRITICAL)
    try:
        with kafka() as bootstrap:
            goals = _throughput(bootstrap, rounds)
            restore = uvloop.run(measure_restore(bench_settings(bootstrap, Guarantee.EXACTLY_ONCE)))
            big_restore = uvloop.run(
                measure_big_restore(bench_settings(bootstrap, Guarantee.EXACTLY_ONCE))
            )
    finally:
        aiokafka_logger.setLevel(level)
    emit(
        f"processor restore: {STATE_SESSIONS:,} sessions' changelog records "
        f"(avg {restore.record_bytes:,.0f} bytes per session) on {PARTITIONS} partitions"
    )
    for line in restore.lines():
        emit(line)
    emit("processor restore: one webinar of 50,000 participant ids, 10,000 present")
    for line in big_restore.lines():
        emit(line)
    memory = measure_memory()
    emit(f"processor memory: {memory.sessions:,} active sessions; one 50,000-id webinar")
    for line in memory.lines():
        emit(line)
    big = measure_big_session()
    emit("processor engine at scale: the webinar, 10,000 present")
    for line in big.lines():
        emit(line)
    per_session = memory.traced_bytes / memory.sessions
    processor_video.report(meetings_bytes=per_session)
    return [
        *goals,
        below("restore 100,000 sessions, one version each", restore.total_s, 2.0, unit="s"),
        at_most("memory per active session", per_session, 1_536, unit="B"),
    ]


CONTENDERS = (
    "passthrough: batched, commits overlapped (ceiling)",
    "processor, exactly-once",
    "processor, at-least-once",
)


def _round(bootstrap: str, callbacks: Sequence[RawCallback]) -> tuple[float, float, float]:
    """Each contender once, on its own copy of the raw topic: records/s in ``CONTENDERS``'
    order."""
    return (
        uvloop.run(measure_passthrough(bootstrap, callbacks)),
        uvloop.run(measure_processor(bootstrap, callbacks, Guarantee.EXACTLY_ONCE)),
        uvloop.run(measure_processor(bootstrap, callbacks, Guarantee.AT_LEAST_ONCE)),
    )


def _throughput(bootstrap: str, rounds: int) -> list[Goal]:
    now_ms = time.time_ns() // 1_000_000
    meetings = raw_callbacks(SESSIONS, now_ms=now_ms)
    video = raw_video_callbacks(SESSIONS, now_ms=now_ms)
    emit(
        f"processor: {len(meetings):,} raw callbacks of {SESSIONS:,} concurrent meetings and "
        f"{len(video):,} of {SESSIONS:,} Video sessions (VIDEO_PARTICIPANT_KEY={PARTICIPANT_KEY}),"
        f" each on {PARTITIONS} partitions, commit every {COMMIT_INTERVAL_S * 1000:.0f} ms, "
        f"uvloop; callbacks/s, median (range) of {rounds} interleaved rounds, ratio to the "
        "source's ceiling"
    )
    workloads = {"Meetings": meetings, "Video": video}
    runs: dict[str, list[list[float]]] = {source: [[] for _ in CONTENDERS] for source in workloads}
    for _ in range(rounds):  # interleave so drift on a shared machine hits all alike
        for source, callbacks in workloads.items():
            for of_contender, rate in zip(runs[source], _round(bootstrap, callbacks), strict=True):
                of_contender.append(rate)
    ratios = {
        source: [statistics.median(of) / statistics.median(of_source[0]) for of in of_source]
        for source, of_source in runs.items()
    }

    def cell(source: str, contender: int) -> str:
        return f"{median_spread(runs[source][contender])} {ratios[source][contender]:.2f}x"

    emit(heading("contender"))
    for number, label in enumerate(CONTENDERS):
        emit(row(label, cell("Meetings", number), cell("Video", number)))
    return [
        at_least(f"processor exactly-once / ceiling ({source})", ratios[source][1], 0.80)
        for source in workloads
    ]


if __name__ == "__main__":
    run()
