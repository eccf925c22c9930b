"""Re-deriving history: ``python -m processor replay`` against the live processor, on the
same backlog of the same broker.

A raw topic is pre-loaded with the callbacks of thousands of concurrent meetings; then, in
each round, the live processor (``ProcessorService``, exactly-once) consumes it from the start
as a fresh consumer group into its own topics, and a replay re-derives it into topics under
another prefix. Both are timed from their start (topic creation and group join included, as
an operator waits for them) until their group's committed offsets cover the backlog; three
rounds, interleaved, the median kept and the replay's rate given as a ratio to the live
processor's.
"""

from __future__ import annotations

import asyncio
import logging
import statistics
import time
from collections.abc import Sequence

import uvloop

from bench.broker import kafka
from bench.goals import Goal
from bench.meetings import RawCallback, raw_callbacks
from bench.processor import (
    PARTITIONS,
    ROUNDS,
    RUN_TIMEOUT_S,
    SESSIONS,
    Ends,
    bench_settings,
    preload,
    until_covered,
)
from bench.report import emit
from bench.side_by_side import median_spread
from processor.replay.run import replay, replay_settings
from processor.runtime import ProcessorService
from processor.settings import Guarantee, ProcessorSettings


async def measure_live(settings: ProcessorSettings, records: int, ends: Ends) -> float:
    """Records/s of the live processor over the pre-loaded raw topic of ``settings``, whose
    end offsets are ``ends``."""
    service = ProcessorService(settings)
    stop = asyncio.Event()
    began = time.perf_counter()
    task = asyncio.create_task(service.run(stop))
    try:
        await asyncio.wait_for(
            until_covered(settings.kafka.bootstrap_servers, settings.group_id, ends, task),
            RUN_TIMEOUT_S,
        )
        return records / (time.perf_counter() - began)
    finally:
        stop.set()
        await asyncio.wait_for(task, 60)


async def measure_replay(live: ProcessorSettings, records: int, to_prefix: str) -> float:
    """Records/s of a replay of the raw topic of ``live`` into ``to_prefix``."""
    began = time.perf_counter()
    summary = await asyncio.wait_for(
        replay(replay_settings(live, to_prefix), report=lambda line: None), RUN_TIMEOUT_S
    )
    assert summary.records == records, summary
    return records / (time.perf_counter() - began)


def _round(bootstrap: str, callbacks: Sequence[RawCallback], number: int) -> tuple[float, float]:
    settings = bench_settings(bootstrap, Guarantee.EXACTLY_ONCE)
    ends = uvloop.run(preload(settings, callbacks))
    live = uvloop.run(measure_live(settings, len(callbacks), ends))
    replayed = uvloop.run(
        measure_replay(settings, len(callbacks), f"{settings.kafka.topic_prefix}replay-{number}.")
    )
    return live, replayed


def run(rounds: int = ROUNDS) -> list[Goal]:
    callbacks = raw_callbacks(SESSIONS, now_ms=time.time_ns() // 1_000_000)
    emit(
        f"replay: {len(callbacks):,} raw callbacks of {SESSIONS:,} concurrent meetings on "
        f"{PARTITIONS} partitions, the live processor (exactly-once, a fresh group) and "
        "`processor replay` into a new prefix, each timed from its start (topics, group join "
        f"included); callbacks/s, median (range) of {rounds} interleaved rounds"
    )
    aiokafka_logger = logging.getLogger("aiokafka")
    level = aiokafka_logger.level
    aiokafka_logger.setLevel(logging.CRITICAL)  # retries on just-created topics; see processor
    live: list[float] = []
    replayed: list[float] = []
    try:
        with kafka() as bootstrap:
            for number in range(rounds):
                live_rate, replay_rate = _round(bootstrap, callbacks, number)
                live.append(live_rate)
                replayed.append(replay_rate)
    finally:
        aiokafka_logger.setLevel(level)
    ratio = statistics.median(replayed) / statistics.median(live)
    emit(f"  live processor, from its start           {median_spread(live):>30}")
    emit(f"  replay, from its start                   {median_spread(replayed):>30}  {ratio:.2f}x")
    return []


if __name__ == "__main__":
    run()
