"""A replay: the processor, with its own consumer group, reading the live raw topic from the
start and writing every other topic under another prefix, until it has committed the raw
topic's ends as they were when it started.

It is the service itself (same engine, same settings, exactly-once like the service), so it
is restartable where it stopped: its group's committed offsets say how far it got, and its
changelog under the new prefix holds its sessions. Its clock is stream time throughout, so
idle expiry and retention depend on the raw topic only, not on when the replay runs.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import re
import time
from collections.abc import Callable
from dataclasses import dataclass

from processor.provisioning import ensure_topics
from processor.replay.progress import Progress, describe
from processor.runtime import ProcessorService
from processor.runtime.offsets import OffsetView
from processor.settings import ProcessorSettings
from schemas.topics import RAW

logger = logging.getLogger(__name__)

_LEGAL_PREFIX = re.compile(r"^[A-Za-z0-9._-]{1,200}$")


class ReplayRefusedError(Exception):
    """The replay would overwrite or confuse live topics, or has nothing to read."""


class ReplayStoppedError(Exception):
    """The replay stopped before its end: the processor failed (the cause), or it was asked
    to stop (no cause); run it again to go on from there."""


def replay_settings(live: ProcessorSettings, to_prefix: str) -> ProcessorSettings:
    """The live settings, reading the live raw topic and writing under ``to_prefix``, as a
    consumer group of its own."""
    live_prefix = live.kafka.topic_prefix
    raw_prefix = live.input_prefix or live_prefix
    if not _LEGAL_PREFIX.match(to_prefix):
        raise ReplayRefusedError(
            f"{to_prefix!r} is not a usable topic prefix (letters, digits, '.', '_', '-')"
        )
    if to_prefix in (live_prefix, raw_prefix):
        raise ReplayRefusedError(
            f"--to-prefix {to_prefix!r} is the live prefix (MEETINGS_TOPIC_PREFIX): a replay "
            "never writes into the live topics"
        )
    return dataclasses.replace(
        live,
        kafka=dataclasses.replace(live.kafka, topic_prefix=to_prefix),
        input_prefix=raw_prefix,
        group_id=f"{live.group_id}.replay.{to_prefix.rstrip('.')}",
        stream_time_only=True,
    )


@dataclass(frozen=True, slots=True)
class ReplaySummary:
    raw_topic: str
    to_prefix: str
    records: int
    partitions: int
    seconds: float

    def describe(self) -> str:
        rate = self.records / self.seconds if self.seconds > 0 else 0.0
        return (
            f"replayed {self.records:,} records of {self.raw_topic} ({self.partitions} "
            f"partitions) into {self.to_prefix}* in {self.seconds:.1f} s ({rate:,.0f} records/s)"
        )


Report = Callable[[str], None]


async def replay(
    settings: ProcessorSettings,
    *,
    report: Report,
    report_every_s: float = 5.0,
    interrupt: asyncio.Event | None = None,
    from_ms: int | None = None,
) -> ReplaySummary:
    """Run the replay of ``settings`` (from ``replay_settings``) to its end, or until
    ``interrupt`` is set (``ReplayStoppedError`` once the processor has stopped cleanly).

    ``from_ms``: a new replay starts each partition at its first record received at or after
    that time rather than at its start (a replay under way goes on from its offsets)."""
    raw = settings.topics.raw
    began = time.monotonic()
    async with OffsetView(settings.kafka, client_id="meetings-replay") as view:
        topics = await view.partition_counts()
        if raw not in topics:
            raise ReplayRefusedError(f"the raw topic {raw} does not exist: nothing to replay")
        own_raw = RAW.name_under(settings.kafka.topic_prefix)
        if await view.records_in(own_raw, topics.get(own_raw, 0)):
            raise ReplayRefusedError(
                f"{own_raw} holds callbacks: {settings.kafka.topic_prefix!r} is a live "
                "pipeline's prefix, and a replay never writes into live topics"
            )
        partitions = topics[raw]
        ends = await view.ends(raw, partitions)
        committed = await view.committed(settings.group_id, raw)
        if from_ms is not None:
            if committed:
                report("going on from the replay's own offsets: --from-time starts a new one only")
            else:
                committed = await view.start_at(settings.group_id, raw, partitions, from_ms)
        beginnings = await view.beginnings(raw, partitions)
        starts = {p: committed.get(p, beginnings[p]) for p in range(partitions)}
        progress = Progress(starts, ends, committed)
        if not progress.finished:
            provisioned = await ensure_topics(settings)
            logger.info("%s", provisioned.describe()[0])
            report(
                f"replaying {raw} into {settings.kafka.topic_prefix}*: {progress.total:,} records"
            )
            await _run_until(
                settings,
                view,
                progress,
                report,
                report_every_s,
                began,
                interrupt or asyncio.Event(),
            )
    return ReplaySummary(
        raw, settings.kafka.topic_prefix, progress.total, partitions, time.monotonic() - began
    )


async def _run_until(
    settings: ProcessorSettings,
    view: OffsetView,
    progress: Progress,
    report: Report,
    report_every_s: float,
    began: float,
    interrupt: asyncio.Event,
) -> None:
    service = ProcessorService(settings)
    stop = asyncio.Event()
    running = asyncio.create_task(service.run(stop), name="replay-processor")
    reported = time.monotonic()
    try:
        while not progress.finished:
            await asyncio.wait({running}, timeout=min(report_every_s, 0.5))
            if running.done():
                raise ReplayStoppedError(
                    f"the processor stopped at {describe(progress, time.monotonic() - began)}"
                ) from running.exception()
            if interrupt.is_set():
                raise ReplayStoppedError(
                    f"stopped at {describe(progress, time.monotonic() - began)}; the same "
                    "command goes on from there"
                )
            done_to = await view.committed(settings.group_id, settings.topics.raw)
            progress = dataclasses.replace(progress, done_to=done_to)
            if time.monotonic() - reported >= report_every_s or progress.finished:
                reported = time.monotonic()
                report(describe(progress, reported - began))
    finally:
        stop.set()
        await asyncio.wait({running})
        if not running.cancelled() and running.exception() is not None and progress.finished:
            raise ReplayStoppedError("the processor failed while stopping") from running.exception()
