"""Processor throughput against its same-run ceiling, restore time and memory, in one run.

1. Throughput. A raw topic is pre-loaded once with the callbacks of thousands of concurrent
   meetings (``bench.meetings``); then each contender consumes that same topic from the
   beginning, with a fresh consumer group and fresh output topics:
   a. a bare aiokafka passthrough (consume, produce the same bytes with the same key, commit
      every 100 ms): the ceiling of any consume-process-produce loop in Python here;
   b. ``ProcessorService`` exactly-once (per-partition transactions, 100 ms commit interval);
   c. ``ProcessorService`` at-least-once.
   Each is timed from its first record consumed until its group's committed offsets cover the
   whole raw topic, on uvloop as in production; three interleaved rounds, median kept.
2. Restore: ``read_sessions`` plus ``PartitionState.restore`` of 100,000 sessions' changelogs,
   and of one webinar of 50,000 participant ids.
3. Memory per active session and per known participant of a webinar, and the engine's speed
   inside that webinar (``bench.processor_state``).
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
from aiokafka.structs import TopicPartition

from bench.broker import kafka
from bench.meetings import RawCallback, raw_callbacks
from bench.processor_state import (
    STATE_SESSIONS,
    measure_big_restore,
    measure_big_session,
    measure_memory,
    measure_restore,
)
from bench.report import emit
from processor.provisioning import ensure_topics
from processor.runtime import ProcessorService
from processor.runtime.clients import MAX_BATCH_BYTES
from processor.settings import Guarantee, ProcessorSettings
from servicekit.kafka import KafkaSettings

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
    )


async def preload(settings: ProcessorSettings, callbacks: Sequence[RawCallback]) -> Ends:
    """Create the topics of ``settings`` and fill its raw topic; returns the end offsets.

    Every measured run gets a raw topic of its own with the same records, so no run restores
    state another one left behind."""
    await ensure_topics(settings)
    producer = AIOKafkaProducer(
        **settings.kafka.client_options(), enable_idempotence=True, linger_ms=5
    )
    await producer.start()
    try:
        deliveries = [
            await producer.send(
                settings.topics.raw,
                value=callback.body,
                key=callback.key,
                timestamp_ms=callback.received_at_ms,
                headers=callback.headers(number),
            )
            for number, callback in enumerate(callbacks)
        ]
        delivered = await asyncio.gather(*deliveries)
    finally:
        await producer.stop()
    ends: Ends = {}
    for metadata in delivered:
        tp = TopicPartition(metadata.topic, metadata.partition)
        ends[tp] = max(ends.get(tp, 0), metadata.offset + 1)
    return ends


async def until_committed(
    bootstrap: str, group: str, ends: Ends, consumed: Callable[[], int], worker: asyncio.Task[Any]
) -> float:
    """Seconds from the first record consumed until ``group`` has committed all of ``ends``."""
    total = sum(ends.values())
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await _poll(lambda: consumed() > 0, worker, interval=0.002)
        began = time.perf_counter()
        await _poll(lambda: consumed() >= total, worker, interval=0.005)

        async def covered() -> bool:
            offsets = await admin.list_consumer_group_offsets(group)
            return all(tp in offsets and offsets[tp].offset >= end for tp, end in ends.items())

        await _poll(covered, worker, interval=0.01)
        return time.perf_counter() - began
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
class Passthrough:
    """Bare consume → produce → commit: one output record per input, same bytes, same key."""

    bootstrap: str
    raw: str
    output: str
    group: str
    consumed: int = 0

    async def run(self, stop: asyncio.Event) -> None:
        consumer = AIOKafkaConsumer(
            self.raw,
            bootstrap_servers=self.bootstrap,
            group_id=self.group,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            max_poll_records=MAX_POLL_RECORDS,
        )
        # The client settings of the processor's producers (``processor.runtime.clients``),
        # transactions off.
        producer = AIOKafkaProducer(
            **KafkaSettings(bootstrap_servers=self.bootstrap).producer_options(),
            enable_idempotence=True,
            max_batch_size=MAX_BATCH_BYTES,
        )
        await producer.start()
        await consumer.start()
        try:
            deliveries: list[asyncio.Future[Any]] = []
            offsets: dict[TopicPartition, int] = {}
            last_commit = time.monotonic()
            while not stop.is_set():
                batches = await consumer.getmany(
                    timeout_ms=int(COMMIT_INTERVAL_S * 500), max_records=MAX_POLL_RECORDS
                )
                for tp, records in batches.items():
                    for record in records:
                        deliveries.append(
                            await producer.send(self.output, value=record.value, key=record.key)
                        )
                    offsets[tp] = records[-1].offset + 1
                    self.consumed += len(records)
                if offsets and time.monotonic() - last_commit >= COMMIT_INTERVAL_S:
                    await asyncio.gather(*deliveries)
                    await consumer.commit(offsets)
                    deliveries, offsets = [], {}
                    last_commit = time.monotonic()
        finally:
            await consumer.stop()
            await producer.stop()


async def measure_passthrough(bootstrap: str, callbacks: Sequence[RawCallback]) -> float:
    settings = bench_settings(bootstrap, Guarantee.AT_LEAST_ONCE)
    ends = await preload(settings, callbacks)
    passthrough = Passthrough(
        bootstrap, settings.topics.raw, settings.topics.sessions, settings.group_id
    )
    stop = asyncio.Event()
    task = asyncio.create_task(passthrough.run(stop))
    try:
        elapsed = await asyncio.wait_for(
            until_committed(bootstrap, settings.group_id, ends, lambda: passthrough.consumed, task),
            RUN_TIMEOUT_S,
        )
    finally:
        stop.set()
        await asyncio.wait_for(task, 60)
    return sum(ends.values()) / elapsed


async def measure_processor(
    bootstrap: str, callbacks: Sequence[RawCallback], guarantee: Guarantee
) -> float:
    """Records/s of ``ProcessorService`` in this event loop (as ``tests/…/conftest.running``)."""
    settings = bench_settings(bootstrap, guarantee)
    ends = await preload(settings, callbacks)
    service = ProcessorService(settings)
    stop = asyncio.Event()
    task = asyncio.create_task(service.run(stop))
    try:
        elapsed = await asyncio.wait_for(
            until_committed(
                bootstrap, settings.group_id, ends, lambda: service.processed_records, task
            ),
            RUN_TIMEOUT_S,
        )
    finally:
        stop.set()
        await asyncio.wait_for(task, 60)
    return sum(ends.values()) / elapsed


def _median_line(label: str, rates: list[float]) -> str:
    spread = f"({len(rates)} rounds: {min(rates):,.0f}-{max(rates):,.0f})"
    return f"  {label:<44} {statistics.median(rates):>14,.0f} records/s {spread}"


def run(rounds: int = ROUNDS) -> None:
    aiokafka_logger = logging.getLogger("aiokafka")
    level = aiokafka_logger.level
    # Freshly created topics have no leader for a moment; aiokafka logs its (successful) retries
    # as errors. A real failure still surfaces: as an exception, or the run's timeout.
    aiokafka_logger.setLevel(logging.CRITICAL)
    try:
        with kafka() as bootstrap:
            _throughput(bootstrap, rounds)
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


def _throughput(bootstrap: str, rounds: int) -> None:
    callbacks = raw_callbacks(SESSIONS, now_ms=time.time_ns() // 1_000_000)
    emit(
        f"processor: {len(callbacks):,} raw callbacks of {SESSIONS:,} concurrent meetings on "
        f"{PARTITIONS} partitions, commit every {COMMIT_INTERVAL_S * 1000:.0f} ms, uvloop, "
        f"median of {rounds} interleaved rounds"
    )
    baseline: list[float] = []
    exactly_once: list[float] = []
    at_least_once: list[float] = []
    for _ in range(rounds):  # interleave so drift on a shared machine hits all alike
        baseline.append(uvloop.run(measure_passthrough(bootstrap, callbacks)))
        exactly_once.append(
            uvloop.run(measure_processor(bootstrap, callbacks, Guarantee.EXACTLY_ONCE))
        )
        at_least_once.append(
            uvloop.run(measure_processor(bootstrap, callbacks, Guarantee.AT_LEAST_ONCE))
        )
    emit(_median_line("bare aiokafka passthrough (ceiling)", baseline))
    emit(_median_line("processor, exactly-once", exactly_once))
    emit(_median_line("processor, at-least-once", at_least_once))
    ceiling = statistics.median(baseline)
    eos_ratio = statistics.median(exactly_once) / ceiling
    alo_ratio = statistics.median(at_least_once) / ceiling
    emit(f"  exactly-once / passthrough ratio: {eos_ratio:.2f}x (goal >= 0.70)")
    emit(f"  at-least-once / passthrough ratio: {alo_ratio:.2f}x")


if __name__ == "__main__":
    run()
