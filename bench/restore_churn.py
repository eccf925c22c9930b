"""Restore after churn: what a partition's restore reads once its sessions have been revised many
times, against the same sessions written once, with the changelog's compaction settings as shipped.

``bench.processor_state``'s restore figure is the best case: one version of each session, written
to a fresh topic. In production a session is revised with every callback that changes it, and
compaction only removes superseded revisions from segments that have rolled
(``processor.provisioning.compaction``; a quiet partition's active segment is made to roll by the
processor's roll marker, ``processor.runtime.partition.ROLL_MARKER``). This benchmark measures
whether those settings keep a restore close to the best case.

1. Churn, through the real processor. A fresh raw topic (8 partitions, topics created by
   ``ensure_topics`` with the shipped ``CHANGELOG_*`` defaults) is pre-loaded with ``REVISIONS``
   callbacks for each of ``SESSIONS`` sessions: ``session:started``, then participants joining
   and leaving in turn, each callback a change of the session (one changelog revision), none of
   them ending it (every session is still live, so none is tombstoned). The order interleaves
   the sessions: revision *k* of every session comes before revision *k + 1* of any, so each
   changelog segment holds revisions of many sessions and every session's history spans the
   whole log. One ``ProcessorService`` (exactly-once, defaults, in this process on uvloop as in
   ``bench.processor``) consumes it until its committed offsets cover the raw topic; then it
   keeps running, idle, for ``CHURN_QUIET_S``: ``CHANGELOG_SEGMENT_MS`` after its last write it
   writes the roll marker, and the broker's log cleaner (backing off 15 s between looks)
   compacts. The changelog's records are counted, by reading it whole (compaction removes
   records, never offsets), when processing is done and again (by the restore itself) after the
   quiet period.
2. Restore after churn: ``read_changelog`` over the 8 changelog partitions, ``decode_sessions``
   of what is live (together, ``read_sessions``), and ``PartitionState.restore``, timed as
   ``bench.processor_state.measure_restore`` times them; the records read are counted, and the
   sessions restored must be the sessions fed.
3. Baseline: the latest value of every live key read in step 2 is copied, each to the same
   partition, into the changelog of fresh topics created the same way, and restored the same way.
   The two restores alternate (churned, once, churned, once, ...), ``ROUNDS`` each; medians are
   reported, so page cache, the broker's JIT and machine drift hit both alike.

The figure is churned ÷ once: what the revisions compaction has not removed yet cost a
processor taking a partition over; 1.0 means it reads only the live sessions. Goal: at most 1.5.

``BENCH_CHURN_SESSIONS``, ``BENCH_CHURN_REVISIONS`` and ``BENCH_CHURN_QUIET_S`` override the
sizes for quick runs; with few sessions, a commit (every 100 ms) covers several revisions of the
same session and writes only its latest, so the changelog churns less than the callbacks do.
At full size the run takes 10-15 minutes and writes several GB to the broker (2.3 GB of it still
there at the end: the raw topic and the participant events above all); its topics are deleted
once it has measured.
"""

from __future__ import annotations

import asyncio
import logging
import os
import random
import statistics
import time
import uuid
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import orjson
import uvloop
from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.structs import TopicPartition

from bench.broker import kafka
from bench.goals import Goal, at_most
from bench.meetings import MINUTE_MS, Body, RawCallback, session_id_of
from bench.processor import PARTITIONS, Ends, bench_settings, until_covered
from bench.processor_state import into_partition_states
from bench.report import emit
from processor.provisioning import ensure_topics
from processor.runtime import ProcessorService
from processor.runtime.changelog_read import ChangelogRead, decode_sessions, read_changelog
from processor.runtime.clients import MAX_BATCH_BYTES
from processor.settings import Guarantee, ProcessorSettings
from schemas.timestamps import format_epoch_ms
from schemas.topics import ALL_TOPICS

SESSIONS = 100_000
REVISIONS = 20
"""Callbacks per session, each one a change: its start, then joins and leaves in turn."""
CHURN_QUIET_S = 120.0
"""Seconds the processor stays up, idle, once it has committed everything."""
ROUNDS = 3
GOAL_RATIO = 1.5
SESSIONS_VARIABLE = "BENCH_CHURN_SESSIONS"
REVISIONS_VARIABLE = "BENCH_CHURN_REVISIONS"
QUIET_VARIABLE = "BENCH_CHURN_QUIET_S"

HISTORY_MS = 50 * MINUTE_MS
"""The callbacks' receive times span the 50 minutes before the run, ending 5 minutes before it:
recent enough for the raw topic's retention and well inside the idle timeout."""
PROCESS_TIMEOUT_S = 1_800.0
PRELOAD_WINDOW = 20_000
"""Sends in flight while pre-loading (the raw topic is written in windows, not held whole)."""
NAMES = ("Ada Lovelace", "Alan Turing", "Grace Hopper", "Edsger Dijkstra", "Guest")


@dataclass(frozen=True, slots=True)
class Meeting:
    session_id: str
    room_id: str


def meetings(count: int, seed: int = 23) -> list[Meeting]:
    rng = random.Random(seed)
    return [
        Meeting(session_id_of(rng), str(uuid.UUID(int=rng.getrandbits(128)))) for _ in range(count)
    ]


def revision_body(meeting: Meeting, number: int, revision: int, received_at_ms: int) -> Body:
    """Revision 0 starts the session; odd revisions bring participant ``(revision - 1) // 2``
    in, even ones send participant ``(revision - 2) // 2`` away again. None ends the session."""
    if revision == 0:
        return {
            "event": "session:started",
            "session_id": meeting.session_id,
            "room_id": meeting.room_id,
            "started_at": format_epoch_ms(received_at_ms - 250),
        }
    person = (revision - 1) // 2
    event = "session:participant:joined" if revision % 2 else "session:participant:left"
    return {
        "event": event,
        "participant_id": str(uuid.UUID(int=(number << 32) | person)),
        "session_id": meeting.session_id,
        "room_id": meeting.room_id,
        "name": NAMES[(number + person) % len(NAMES)],
        "type": "Host" if person == 0 else "Guest",
        "is_host": person == 0,
    }


def churn_callbacks(
    sessions: Sequence[Meeting], revisions: int, first_ms: int
) -> Iterator[RawCallback]:
    """Revision 0 of every session, then revision 1 of every session, and so on; receive times
    rise through ``HISTORY_MS`` from ``first_ms``."""
    step_ms = HISTORY_MS // revisions
    for revision in range(revisions):
        for number, meeting in enumerate(sessions):
            at = first_ms + revision * step_ms + number * step_ms // len(sessions)
            body = revision_body(meeting, number, revision, at)
            yield RawCallback(orjson.dumps(body), meeting.session_id.encode(), at)


async def preload(settings: ProcessorSettings, callbacks: Iterable[RawCallback]) -> Ends:
    """Create the topics of ``settings`` and write ``callbacks`` to its raw topic, a window of
    sends at a time (as ``bench.processor.preload``, without holding them all); returns the raw
    topic's end offsets."""
    await ensure_topics(settings)
    producer = AIOKafkaProducer(
        **settings.kafka.producer_options(),
        enable_idempotence=True,
        linger_ms=5,
        max_batch_size=MAX_BATCH_BYTES,
    )
    ends: Ends = {}
    await producer.start()
    try:
        window: list[Any] = []
        for number, callback in enumerate(callbacks):
            window.append(
                await producer.send(
                    settings.topics.raw,
                    value=callback.body,
                    key=callback.key,
                    timestamp_ms=callback.received_at_ms,
                    headers=callback.headers(number),
                )
            )
            if len(window) >= PRELOAD_WINDOW:
                _note_ends(ends, await asyncio.gather(*window))
                window = []
        _note_ends(ends, await asyncio.gather(*window))
    finally:
        await producer.stop()
    return ends


def _note_ends(ends: Ends, delivered: Iterable[Any]) -> None:
    for metadata in delivered:
        tp = TopicPartition(metadata.topic, metadata.partition)
        ends[tp] = max(ends.get(tp, 0), metadata.offset + 1)


@dataclass(frozen=True, slots=True)
class ChangelogCount:
    offsets: int
    """The partitions' end offsets, summed: records written plus transaction markers."""
    records: int
    """Records still in the log (compaction keeps offsets, removes records)."""


async def count_changelog(settings: ProcessorSettings) -> ChangelogCount:
    reads = await read_changelog(
        settings.kafka, settings.topics.changelog, dict.fromkeys(range(settings.topic_partitions))
    )
    return ChangelogCount(
        offsets=sum(read.end for read in reads.values()),
        records=sum(read.records for read in reads.values()),
    )


@dataclass(frozen=True, slots=True)
class Restore:
    records: int
    """Changelog records read, every revision left in the log."""
    sessions: int
    read_s: float
    """``read_changelog`` and ``decode_sessions``: what ``read_sessions`` does."""
    restore_s: float
    """``PartitionState.restore`` of every partition."""

    @property
    def seconds(self) -> float:
        return self.read_s + self.restore_s


async def timed_restore(
    settings: ProcessorSettings, expected: int
) -> tuple[Restore, dict[int, ChangelogRead]]:
    """Restore every partition of the changelog of ``settings`` as the processor does on
    assignment (``bench.processor_state.measure_restore``), counting the records read."""
    partitions = range(settings.topic_partitions)
    began = time.perf_counter()
    reads = await read_changelog(
        settings.kafka, settings.topics.changelog, dict.fromkeys(partitions)
    )
    sessions = {
        partition: decode_sessions(partition, read.live()) for partition, read in reads.items()
    }
    read_s = time.perf_counter() - began
    began = time.perf_counter()
    restored = into_partition_states(settings, sessions)
    restore_s = time.perf_counter() - began
    if restored != expected:
        raise RuntimeError(
            f"restored {restored:,} sessions from {settings.topics.changelog}, fed {expected:,}"
        )
    records = sum(read.records for read in reads.values())
    return Restore(records, restored, read_s, restore_s), reads


async def write_once(settings: ProcessorSettings, reads: Mapping[int, ChangelogRead]) -> int:
    """Create the topics of ``settings`` and write the live records of ``reads`` to its
    changelog, each to the partition it was read from; returns how many."""
    await ensure_topics(settings)
    producer = AIOKafkaProducer(
        **settings.kafka.client_options(),
        enable_idempotence=True,
        linger_ms=20,
        max_batch_size=MAX_BATCH_BYTES,
    )
    written = 0
    await producer.start()
    try:
        window: list[Any] = []
        for partition, read in sorted(reads.items()):
            for key, value in read.live().items():
                window.append(
                    await producer.send(
                        settings.topics.changelog, value=value, key=key, partition=partition
                    )
                )
                written += 1
                if len(window) >= PRELOAD_WINDOW:
                    await asyncio.gather(*window)
                    window = []
        await asyncio.gather(*window)
    finally:
        await producer.stop()
    return written


@dataclass(frozen=True, slots=True)
class ChurnResult:
    sessions: int
    revisions: int
    callbacks: int
    processing_s: float
    quiet_s: float
    processed: ChangelogCount
    """The changelog as processing finished, before the quiet period."""
    churned: list[Restore]
    once: list[Restore]

    @property
    def ratio(self) -> float:
        """Median restore time after churn over the same sessions written once."""
        churned_s = statistics.median(r.seconds for r in self.churned)
        return churned_s / statistics.median(r.seconds for r in self.once)

    def lines(self) -> list[str]:
        ratio = self.ratio
        records_ratio = _median_records(self.churned) / _median_records(self.once)
        verdict = "met" if ratio <= GOAL_RATIO else "missed"
        quiet = f"changelog records after {self.quiet_s:.0f} s quiet"
        return [
            f"  {'processing (start to all committed)':<44} "
            f"{self.processing_s:>14.1f} s ({self.callbacks / self.processing_s:,.0f} callbacks/s)",
            f"  {'changelog offsets written (records+markers)':<44} {self.processed.offsets:>14,}",
            f"  {'changelog records when processing was done':<44} {self.processed.records:>14,}",
            f"  {quiet:<44} {_records(self.churned):>14}",
            f"  {f'restore (median of {len(self.churned)})':<30} {'records read':>14} "
            f"{'read+decode':>12} {'restore':>9} {'total':>9}  rounds' totals",
            _restore_row("after churn", self.churned),
            _restore_row("same sessions written once", self.once),
            f"  {'restore time, churned / once':<44} {ratio:>13.2f}x "
            f"(goal <= {GOAL_RATIO}x: {verdict}; records read {records_ratio:.2f}x)",
            "  (what a processor taking a partition over pays for the revisions compaction has "
            "not removed yet; 1.00x: it reads only the live sessions)",
        ]


def _median_records(restores: Sequence[Restore]) -> float:
    return statistics.median(r.records for r in restores)


def _records(restores: Sequence[Restore]) -> str:
    counts = [r.records for r in restores]
    if min(counts) == max(counts):
        return f"{counts[0]:,}"
    return f"{min(counts):,}-{max(counts):,}"


def _restore_row(label: str, restores: Sequence[Restore]) -> str:
    read_s = statistics.median(r.read_s for r in restores)
    restore_s = statistics.median(r.restore_s for r in restores)
    totals = [r.seconds for r in restores]
    spread = "-".join(f"{total:.2f}" for total in (min(totals), max(totals)))
    return (
        f"  {label:<30} {_records(restores):>14} {read_s:>10.2f} s "
        f"{restore_s:>7.2f} s {statistics.median(totals):>7.2f} s  {spread} s"
    )


async def measure(bootstrap: str, sessions: int, revisions: int, quiet_s: float) -> ChurnResult:
    settings = bench_settings(bootstrap, Guarantee.EXACTLY_ONCE)
    fed = meetings(sessions)
    first_ms = time.time_ns() // 1_000_000 - HISTORY_MS - 5 * MINUTE_MS
    ends = await preload(settings, churn_callbacks(fed, revisions, first_ms))
    del fed
    service = ProcessorService(settings)
    stop = asyncio.Event()
    began = time.perf_counter()  # joining its group is a second of minutes of processing
    task = asyncio.create_task(service.run(stop))
    try:
        await asyncio.wait_for(
            until_covered(bootstrap, settings.group_id, ends, task), PROCESS_TIMEOUT_S
        )
        processing_s = time.perf_counter() - began
        quiet_ends = time.monotonic() + quiet_s
        processed = await count_changelog(settings)
        await asyncio.wait({task}, timeout=max(quiet_ends - time.monotonic(), 0))
        if task.done():
            task.result()  # raises what stopped it
            raise RuntimeError("the processor stopped during the quiet period")
    finally:
        stop.set()
        await asyncio.wait_for(task, 60)

    baseline = bench_settings(bootstrap, Guarantee.EXACTLY_ONCE)
    churned: list[Restore] = []
    once: list[Restore] = []
    for number in range(ROUNDS):  # interleaved: drift and caches hit both alike
        restore, reads = await timed_restore(settings, sessions)
        churned.append(restore)
        if number == 0:
            await write_once(baseline, reads)
        del reads
        once.append((await timed_restore(baseline, sessions))[0])
    await delete_topics(settings, baseline)
    return ChurnResult(
        sessions=sessions,
        revisions=revisions,
        callbacks=sum(ends.values()),
        processing_s=processing_s,
        quiet_s=quiet_s,
        processed=processed,
        churned=churned,
        once=once,
    )


async def delete_topics(*runs: ProcessorSettings) -> None:
    """Remove every topic of these runs: a full-size run leaves about 2.3 GB on the broker (the
    raw topic and the participant events above all), whose logs may be on tmpfs
    (``bench.broker``) for the benchmarks that follow."""
    admin = AIOKafkaAdminClient(**runs[0].kafka.client_options())
    await admin.start()
    try:
        await admin.delete_topics([run.topics.of(topic) for run in runs for topic in ALL_TOPICS])
    finally:
        await admin.close()


def _from_environment(name: str, default: float) -> float:
    value = os.environ.get(name)
    return float(value) if value else default


def run() -> list[Goal]:
    sessions = int(_from_environment(SESSIONS_VARIABLE, SESSIONS))
    revisions = int(_from_environment(REVISIONS_VARIABLE, REVISIONS))
    quiet_s = _from_environment(QUIET_VARIABLE, CHURN_QUIET_S)
    aiokafka_logger = logging.getLogger("aiokafka")
    level = aiokafka_logger.level
    # As in bench.processor: fresh topics have no leader for a moment, and aiokafka logs its
    # successful retries as errors.
    aiokafka_logger.setLevel(logging.CRITICAL)
    try:
        with kafka() as bootstrap:
            result = uvloop.run(measure(bootstrap, sessions, revisions, quiet_s))
    finally:
        aiokafka_logger.setLevel(level)
    emit(
        f"processor restore after churn: {sessions:,} live sessions x {revisions} revisions "
        f"({result.callbacks:,} callbacks, interleaved) through the exactly-once processor, "
        f"{PARTITIONS} partitions, changelog compaction configs as shipped; then idle "
        f"{quiet_s:.0f} s; restores interleaved with the same sessions written once"
    )
    for line in result.lines():
        emit(line)
    return [
        at_most(
            f"restore after {revisions} revisions each / written once", result.ratio, GOAL_RATIO
        )
    ]


if __name__ == "__main__":
    run()
