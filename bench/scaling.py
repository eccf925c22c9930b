"""End-to-end latency while the processor group scales 1 → 2 → 3 → 2 → 1 under steady load.

What a scale-out or scale-in costs the callbacks in flight, with the whole pipeline as in
production: a broker (embedded, or ``KAFKA_BOOTSTRAP_SERVERS``), the topics (``ensure_topics``
under a prefix no earlier run used), ``python -m ingest`` (1 worker) and ``python -m processor``
(exactly-once, default settings, one HTTP port each) as subprocesses.

Method:

1. One processor owns all ``PARTITIONS`` partitions. 12 because 1, 2 and 3 processors divide it
   evenly (12, 6, 4 each): every step of the schedule ends exactly balanced, so what a step
   costs is what the assignor must move, not an uneven split (with 8, three processors hold
   3/3/2); it is also the processor's default ``TOPIC_PARTITIONS``.
2. ``SESSIONS`` live sessions are built before the measurement: a ``session:started`` and one
   ``session:participant:joined`` each, written straight to the raw topic (as ingest would,
   much faster than through HTTP), until the group's committed offsets cover the raw topic. They
   stay active for the whole run (the idle timeout is hours): the state every restore reads,
   about 8,300 sessions per partition at 100,000.
3. An open-loop generator sends ``RATE`` callbacks/s through ingest for ``SECONDS`` (as
   ``bench.e2e``: new sessions and participant joins, each callback yielding exactly one derived
   event, matched by a ``read_committed`` consumer of the derived topics), and meanwhile the
   group is scaled by the clock (``SCHEDULE``): a processor started, or stopped with SIGTERM
   (the production way: it commits, keeps nothing, leaves the group). Readiness (``/readyz``) is
   polled only to report when each processor and the group settled.
4. Latency is the consumer's wall-clock arrival minus the callback's scheduled send time, so a
   paused partition is charged for every callback it made wait; over the whole run, and over
   the callbacks sent within ``WINDOW_S`` of each scale event, split by whether the callback's
   partition stayed with its processor or moved in that event. Stages as ``bench.e2e``: ingest's
   204, and the derived record's timestamp (its producer appended it, just before its
   transaction committed); and per callback the processor's part, that timestamp minus the
   204, which a rebalance lengthens whatever ingest and the generator were doing.
5. Correctness: derived events expected but not seen ``DRAIN_TIMEOUT_S`` after the last POST
   are lost; after the run every derived topic is read from its beginning (``read_committed``)
   and event ids seen twice are duplicates (goal 0).
6. What the processors say: each one's ``/metrics`` just before its SIGTERM (processor-1's at
   the end): rebalances, partitions kept/gained/lost, restores by kind and the changelog records
   they read, the pause histogram of kept partitions; and the rebalance log lines, which give
   the longest pause of a kept partition exactly (the histogram only bounds it).
7. Where the CPU went during the load (``/proc``): the machine's busy time, the processors',
   ingest's, this process's (generator and consumer), and the rest (the broker, anything else
   running). The pipeline shares the machine's cores with the processors that start and restore:
   on a small machine their CPU shows in every partition's latency, not only in those that move.

Environment: ``BENCH_SCALING_SESSIONS`` (default 100,000; 10,000 for a quick run);
``BENCH_SCALING_LOG_LEVEL`` (processors' ``PROCESSOR_LOG_LEVEL``, default ``info``: the level of
the rebalance lines; ``debug`` adds the group protocol's steps to the logs, at a cost);
``BENCH_SCALING_LOG_DIR`` keeps the services' logs there instead of deleting them, with every
callback's partition and times (``callbacks.csv``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import random
import re
import sys
import tempfile
import time
import uuid
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import IO, Literal

import aiohttp
import msgspec
import orjson
import uvloop
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.structs import TopicPartition
from prometheus_client.parser import text_string_to_metric_families

from bench.broker import kafka
from bench.e2e import (
    CONCURRENT_SESSIONS,
    JOINED,
    Arrival,
    Callback,
    Downstream,
    Sent,
    Service,
    Window,
    plan_callbacks,
    processor_environ,
    send_open_loop,
    spawn,
    stop_processes,
    wait_ready,
    window_of,
)
from bench.goals import Goal, below
from bench.ingest import ingest_command
from bench.meetings import RawCallback, session_id_of
from bench.report import emit
from processor.provisioning import ensure_topics
from processor.settings import ProcessorSettings
from schemas.timestamps import format_epoch_ms
from schemas.topics import TopicNames
from servicekit.kafka import KafkaSettings
from servicekit.partitioner import key_partition
from tools.devkafka import free_port

PARTITIONS = 12
"""1, 2 and 3 processors hold 12, 6 and 4 each: every step ends exactly balanced."""
SESSIONS = int(os.environ.get("BENCH_SCALING_SESSIONS", "100000"))
"""Live sessions built before the load, the state that moving partitions restore."""
RATE = 1_000.0
"""Callbacks per second through ingest, steady, for the whole run."""
SECONDS = 70.0


@dataclass(frozen=True, slots=True)
class Step:
    at_s: float
    """Seconds after the first callback of the load."""
    action: Literal["start", "stop"]
    processor: int


SCHEDULE = (
    Step(10.0, "start", 2),
    Step(25.0, "start", 3),
    Step(40.0, "stop", 3),
    Step(55.0, "stop", 2),
)
WINDOW_S = 5.0
"""Callbacks sent this close to a scale event (before or after) make its window."""
GOAL_P99_MS = 1_000.0
GOAL_MAX_MS = 2_500.0
GOAL_KEPT_PAUSE_S = 1.0
"""Longest pause of a partition that stays on its processor through a rebalance."""
PRELOAD_TIMEOUT_S = 600.0
"""Longest wait for the first processor to commit the sessions built before the load."""
DRAIN_TIMEOUT_S = 30.0
"""Longest wait, after the last POST, for derived events still missing: then they are lost."""
PRELOAD_BATCH_BYTES = 1_000_000
"""Record batches of the sessions written before the load: under the broker's 1 MiB limit."""
READ_BACK_TIMEOUT_S = 120.0
POLL_S = 0.25
"""How often ``/readyz`` of each running processor is polled (reporting only)."""
LOG_LEVEL = os.environ.get("BENCH_SCALING_LOG_LEVEL", "info")
LOG_DIR = os.environ.get("BENCH_SCALING_LOG_DIR")

REBALANCE_LOGGERS = ("processor.runtime.assignor", "processor.runtime.rebalance")
_HEARTBEAT_FAILED = re.compile(r"Heartbeat failed for group .* because it is rebalancing")
"""aiokafka's warning when a heartbeat finds a rebalance begun: when this member learnt of it."""
_JOINING_OR_LEAVING = re.compile(r"^processor (consuming|stopped) ")
"""The service's lines when its consumer starts (it joins the group next) and once it left."""
_DONE = re.compile(
    r"rebalance done in (?P<done>[0-9.]+) s: kept \[(?P<kept>[0-9,]*)\], "
    r"gained \[(?P<gained>[0-9,]*)\], lost \[(?P<lost>[0-9,]*)\];.*"
    r"longest pause of a kept partition (?P<pause>[0-9.]+) s"
)


# -- the processors --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Figures:
    """What a processor's ``/metrics`` says about its rebalances and restores."""

    rebalances: int
    partitions: dict[str, int]
    """By outcome: kept, gained, lost."""
    restores: dict[str, int]
    """By kind: delta, full."""
    restore_records: dict[str, int]
    restore_seconds: dict[str, float]
    """Sum, by kind."""
    pauses: int
    pause_sum_s: float
    pause_max_at_most_s: float
    """The smallest bucket bound holding every observed pause (``inf`` past the last)."""

    @classmethod
    def parse(cls, text: str) -> Figures:
        value: dict[tuple[str, str], float] = {}
        buckets: list[tuple[float, float]] = []
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                label = next(iter(sample.labels.values()), "")
                if sample.name == "processor_rebalance_pause_seconds_bucket":
                    buckets.append((float(sample.labels["le"]), sample.value))
                else:
                    value[sample.name, label] = sample.value
        kinds, outcomes = ("delta", "full"), ("kept", "gained", "lost")
        pauses = int(value.get(("processor_rebalance_pause_seconds_count", ""), 0))
        at_most = min((le for le, count in buckets if count >= pauses), default=float("inf"))
        return cls(
            rebalances=int(value.get(("processor_rebalances_total", ""), 0)),
            partitions={
                o: int(value.get(("processor_rebalance_partitions_total", o), 0)) for o in outcomes
            },
            restores={k: int(value.get(("processor_restores_total", k), 0)) for k in kinds},
            restore_records={
                k: int(value.get(("processor_restore_records_total", k), 0)) for k in kinds
            },
            restore_seconds={
                k: value.get(("processor_restore_seconds_sum", k), 0.0) for k in kinds
            },
            pauses=pauses,
            pause_sum_s=value.get(("processor_rebalance_pause_seconds_sum", ""), 0.0),
            pause_max_at_most_s=at_most if pauses else 0.0,
        )


@dataclass(slots=True)
class Processor:
    number: int
    service: Service
    started_wall: float
    ready_wall: float | None = None
    not_ready: str | None = None
    """Why it never answered ``/readyz`` 200, if it did not."""
    stopped_wall: float | None = None
    exited_wall: float | None = None
    figures: Figures | None = None
    """From ``/metrics``, just before it was stopped (or at the end)."""
    cpu_at_load_s: float = 0.0
    """CPU seconds it had used when the load began (0 for those started during it)."""
    cpu_last_s: float | None = None
    """CPU seconds it had used just before its SIGTERM, or when the load ended."""

    @property
    def name(self) -> str:
        return f"processor-{self.number}"

    @property
    def url(self) -> str:
        return self.service.ready_url.removesuffix("/readyz")

    @property
    def running(self) -> bool:
        return self.stopped_wall is None and self.service.process.poll() is None


class Fleet:
    """The processors of the run, started and stopped by number; each logs to its own file."""

    def __init__(self, bootstrap: str, prefix: str, logs: contextlib.ExitStack) -> None:
        self._bootstrap, self._prefix, self._logs = bootstrap, prefix, logs
        self.processors: dict[int, Processor] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    def start(self, number: int) -> Processor:
        port = free_port()
        environ = processor_environ(self._bootstrap, self._prefix, port, partitions=PARTITIONS)
        # JSON lines: their timestamps place each rebalance on the run's clock.
        environ.update(PROCESSOR_LOG_LEVEL=LOG_LEVEL, LOG_FORMAT="json")
        name = f"processor-{number}"
        service = spawn(
            name, [sys.executable, "-m", "processor"], environ, port, open_log(self._logs, name)
        )
        processor = Processor(number, service, started_wall=time.time())
        self.processors[number] = processor
        return processor

    def watch_readiness(self, processor: Processor) -> None:
        """Note when ``processor`` first answers ``/readyz`` 200 (nothing waits for it)."""

        async def watch() -> None:
            try:
                await wait_ready(processor.service)
                processor.ready_wall = time.time()
            except RuntimeError as exc:
                processor.not_ready = str(exc).splitlines()[0]

        task = asyncio.create_task(watch())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def stop(self, number: int) -> None:
        """Scrape its metrics, then SIGTERM (``poll_readiness`` notes when it is gone)."""
        processor = self.processors[number]
        processor.figures = await scrape(processor)
        processor.cpu_last_s = cpu_seconds(processor.service.process.pid)
        processor.stopped_wall = time.time()
        processor.service.process.terminate()

    def check_alive(self) -> None:
        for processor in self.processors.values():
            if processor.stopped_wall is None:
                processor.service.check_alive()

    async def settle(self) -> None:
        """Stop waiting for the readiness of processors that never got ready."""
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    def stop_all(self) -> None:
        stop_processes([p.service.process for p in self.processors.values()])


def open_log(logs: contextlib.ExitStack, name: str) -> IO[bytes]:
    if LOG_DIR:
        Path(LOG_DIR).mkdir(parents=True, exist_ok=True)
        return logs.enter_context(Path(LOG_DIR, f"{name}.log").open("wb"))
    return logs.enter_context(tempfile.NamedTemporaryFile(prefix=f"bench-scaling-{name}-"))


async def scrape(processor: Processor) -> Figures | None:
    timeout = aiohttp.ClientTimeout(total=5)
    try:
        async with (
            aiohttp.ClientSession(timeout=timeout) as session,
            session.get(f"{processor.url}/metrics") as response,
        ):
            return Figures.parse(await response.text())
    except (aiohttp.ClientError, TimeoutError):
        return None


def cpu_seconds(pid: int) -> float | None:
    """CPU time (user + system) process ``pid`` used so far; ``None`` once it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime


def machine_cpu_seconds() -> tuple[float, float]:
    """(busy, total) CPU seconds of every core of the machine since it booted."""
    ticks = [int(n) for n in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = ticks[3] + ticks[4]  # idle, iowait
    total = sum(ticks[:8])  # user nice system idle iowait irq softirq steal (guests are in user)
    clock = os.sysconf("SC_CLK_TCK")
    return (total - idle) / clock, total / clock


@dataclass(frozen=True, slots=True)
class CpuSample:
    busy_s: float
    total_s: float
    bench_s: float
    """This process: the generator and the downstream consumer."""
    ingest_s: float | None

    @classmethod
    def take(cls, ingest: Service) -> CpuSample:
        busy, total = machine_cpu_seconds()
        times = os.times()
        return cls(busy, total, times.user + times.system, cpu_seconds(ingest.process.pid))


@dataclass(frozen=True, slots=True)
class Snapshot:
    wall: float
    owned: dict[int, list[int] | None]
    """Per running processor: its partitions when ``/readyz`` said 200, else ``None``."""


async def poll_readiness(fleet: Fleet, snapshots: list[Snapshot], stop: asyncio.Event) -> None:
    """Every ``POLL_S``, each running processor's ``/readyz`` (to see when the group settles),
    and whether the stopped ones are gone yet."""
    timeout = aiohttp.ClientTimeout(total=1)
    async with aiohttp.ClientSession(timeout=timeout) as session:

        async def owned(processor: Processor) -> list[int] | None:
            with contextlib.suppress(aiohttp.ClientError, TimeoutError):
                async with session.get(processor.service.ready_url) as response:
                    if response.status == 200:
                        partitions: list[int] = (await response.json())["partitions"]
                        return partitions
            return None

        while not stop.is_set():
            for processor in fleet.processors.values():
                stopping = processor.stopped_wall is not None and processor.exited_wall is None
                if stopping and processor.service.process.poll() is not None:
                    processor.exited_wall = time.time()
            running = [p for p in fleet.processors.values() if p.running]
            answers = await asyncio.gather(*(owned(p) for p in running))
            snapshots.append(
                Snapshot(time.time(), {p.number: a for p, a in zip(running, answers, strict=True)})
            )
            await asyncio.sleep(POLL_S)  # a poll, for reporting only


# -- the sessions built before the load ------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Preload:
    records: int
    written_s: float
    committed_s: float
    """From the first record written until the group's offsets covered them all."""


def live_sessions(count: int, *, seed: int = 17) -> list[RawCallback]:
    """A ``session:started`` and one participant's join for each of ``count`` sessions, as
    ingest writes them to the raw topic (each session's start before its join)."""
    rng = random.Random(seed)
    now_ms = time.time_ns() // 1_000_000
    records = []
    for _ in range(count):
        session_id = session_id_of(rng)
        room_id = str(uuid.UUID(int=rng.getrandbits(128)))
        started = {
            "event": "session:started",
            "session_id": session_id,
            "room_id": room_id,
            "started_at": format_epoch_ms(now_ms),
        }
        joined = {
            "event": "session:participant:joined",
            "participant_id": str(uuid.UUID(int=rng.getrandbits(128))),
            "session_id": session_id,
            "room_id": room_id,
            "name": "Host",
            "type": "Host",
            "is_host": True,
        }
        for body in (started, joined):
            records.append(RawCallback(orjson.dumps(body), session_id.encode(), now_ms))
    return records


async def build_sessions(
    bootstrap: str, topics: TopicNames, group: str, first: Processor
) -> Preload:
    """Write the live sessions to the raw topic; wait until ``group`` has committed them."""
    records = live_sessions(SESSIONS)
    began = time.monotonic()
    ends = await write_raw(bootstrap, topics.raw, records)
    written_s = time.monotonic() - began
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        deadline = time.monotonic() + PRELOAD_TIMEOUT_S
        while True:
            offsets = await admin.list_consumer_group_offsets(group)
            if all(tp in offsets and offsets[tp].offset >= end for tp, end in ends.items()):
                break
            if time.monotonic() > deadline:
                raise RuntimeError(f"{SESSIONS:,} sessions not committed in {PRELOAD_TIMEOUT_S} s")
            first.service.check_alive()
            await asyncio.sleep(0.5)  # polling the group's committed offsets
    finally:
        await admin.close()
    return Preload(len(records), written_s, time.monotonic() - began)


async def write_raw(
    bootstrap: str, topic: str, records: list[RawCallback]
) -> dict[TopicPartition, int]:
    """``records`` appended to ``topic`` (empty before) in order per partition, as record
    batches (``send`` per record costs more than the broker's work here); the end offsets."""
    by_partition: dict[int, list[tuple[int, RawCallback]]] = {}
    for number, record in enumerate(records):
        by_partition.setdefault(key_partition(record.key, PARTITIONS), []).append((number, record))
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap, enable_idempotence=True, max_batch_size=PRELOAD_BATCH_BYTES
    )
    await producer.start()
    try:
        deliveries = []
        for partition, numbered in by_partition.items():
            batch = producer.create_batch()
            for number, record in numbered:
                fields = {
                    "timestamp": record.received_at_ms,
                    "key": record.key,
                    "value": record.body,
                    "headers": record.headers(number),
                }
                if batch.append(**fields) is None:  # full: hand it over, start the next
                    deliveries.append(await producer.send_batch(batch, topic, partition=partition))
                    batch = producer.create_batch()
                    batch.append(**fields)
            deliveries.append(await producer.send_batch(batch, topic, partition=partition))
        await asyncio.gather(*deliveries)
    finally:
        await producer.stop()
    return {TopicPartition(topic, p): len(numbered) for p, numbered in by_partition.items()}


# -- the run ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Taken:
    """A step of the schedule as it happened."""

    step: Step
    wall: float


@dataclass(slots=True)
class Run:
    preload: Preload
    plan: list[Callback]
    partition_of: list[int]
    """The raw (and derived) partition of each callback of the plan."""
    sent: Sent
    arrivals: dict[str, Arrival]
    """Each derived event seen, by ``Callback.expects``."""
    taken: list[Taken]
    snapshots: list[Snapshot]
    cpu: tuple[CpuSample, CpuSample]
    """When the load began and when its last callback was answered."""
    processors: dict[int, Processor] = field(default_factory=dict)
    window: dict[str, Window] = field(default_factory=dict)

    @property
    def began_wall(self) -> float:
        return self.sent.scheduled_wall[0]


async def scale_under_load(
    bootstrap: str, topics: TopicNames, group: str, ingest: Service, fleet: Fleet
) -> Run:
    first = fleet.processors[1]
    await asyncio.gather(wait_ready(ingest), wait_ready(first.service, PARTITIONS))
    first.ready_wall = time.time()
    preload = await build_sessions(bootstrap, topics, group, first)
    plan = plan_callbacks(int(RATE * SECONDS))
    partition_of = [
        key_partition(orjson.loads(c.body)["session_id"].encode(), PARTITIONS) for c in plan
    ]
    downstream = Downstream(bootstrap, topics, PARTITIONS)
    await downstream.start()
    stop = asyncio.Event()
    consuming = asyncio.create_task(downstream.run(stop))
    snapshots: list[Snapshot] = []
    polling = asyncio.create_task(poll_readiness(fleet, snapshots, stop))
    taken: list[Taken] = []
    try:
        url = ingest.ready_url.replace("/readyz", "/callbacks")
        first.cpu_at_load_s = cpu_seconds(first.service.process.pid) or 0.0
        cpu_began = CpuSample.take(ingest)
        began = time.monotonic()
        sending = asyncio.create_task(send_open_loop(url, plan, RATE))
        for step in SCHEDULE:
            await asyncio.sleep(max(began + step.at_s - time.monotonic(), 0))  # the schedule
            fleet.check_alive()
            taken.append(Taken(step, time.time()))
            if step.action == "start":
                fleet.watch_readiness(fleet.start(step.processor))
            else:
                await fleet.stop(step.processor)
        sent = await sending
        cpu_ended = CpuSample.take(ingest)
        for processor in fleet.processors.values():
            if processor.running:
                processor.cpu_last_s = cpu_seconds(processor.service.process.pid)
        expected = {callback.expects for callback in plan}
        deadline = time.monotonic() + DRAIN_TIMEOUT_S
        while not expected <= downstream.arrivals.keys() and time.monotonic() < deadline:
            if consuming.done():
                consuming.result()
            fleet.check_alive()
            await asyncio.sleep(0.05)  # waiting for the last derived events
        for processor in fleet.processors.values():
            if processor.running:
                processor.figures = await scrape(processor)
    finally:
        stop.set()
        await consuming
        await polling
        await downstream.stop()
        await fleet.settle()
    return Run(
        preload=preload,
        plan=plan,
        partition_of=partition_of,
        sent=sent,
        arrivals=downstream.arrivals,
        taken=taken,
        snapshots=snapshots,
        cpu=(cpu_began, cpu_ended),
    )


# -- reading everything back -----------------------------------------------------------------


class _Derived(msgspec.Struct):
    event_id: str
    type: str
    session_id: str | None = None
    participant_id: str | None = None


@dataclass(frozen=True, slots=True)
class ReadBack:
    events: int
    duplicates: int
    """Event ids seen more than once (each extra copy counts)."""
    seen: set[str]
    """``<type>/<id>`` of every derived event, as ``Callback.expects``."""
    topics: int


async def read_back(bootstrap: str, topics: TopicNames) -> ReadBack:
    """Every derived topic of the run from its beginning, ``read_committed``."""
    names = [topics.sessions, topics.participants, topics.recordings, topics.rooms]
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap,
        isolation_level="read_committed",
        enable_auto_commit=False,
        max_partition_fetch_bytes=4 << 20,
    )
    await consumer.start()
    decoder = msgspec.json.Decoder(_Derived)
    ids: set[str] = set()
    seen: set[str] = set()
    events = duplicates = 0
    try:
        # ``ensure_topics`` created every topic of the run with ``PARTITIONS`` partitions.
        partitions = [
            TopicPartition(name, number) for name in names for number in range(PARTITIONS)
        ]
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        ends = await consumer.end_offsets(partitions)
        deadline = time.monotonic() + READ_BACK_TIMEOUT_S
        left = {tp for tp in partitions if ends[tp] > 0}
        while left:
            if time.monotonic() > deadline:
                raise RuntimeError(f"derived topics not read back in {READ_BACK_TIMEOUT_S} s")
            batches = await consumer.getmany(timeout_ms=200, max_records=20_000)
            for records in batches.values():
                for record in records:
                    event = decoder.decode(record.value)
                    events += 1
                    if event.event_id in ids:
                        duplicates += 1
                    ids.add(event.event_id)
                    about = event.participant_id if event.type == JOINED else event.session_id
                    seen.add(f"{event.type}/{about}")
            for tp in list(left):
                if await consumer.position(tp) >= ends[tp]:
                    left.discard(tp)
    finally:
        await consumer.stop()
    return ReadBack(events, duplicates, seen, len(names))


# -- the processors' log lines ---------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class LogLine:
    processor: int
    wall: float
    logger: str
    level: str
    message: str

    @property
    def about_rebalance(self) -> bool:
        """The line says the processor joins or left the group, or that a rebalance began
        (seen by a heartbeat), was assigned or is done."""
        return (
            self.logger in REBALANCE_LOGGERS
            or bool(_HEARTBEAT_FAILED.search(self.message))
            or bool(_JOINING_OR_LEAVING.search(self.message))
        )

    @property
    def done(self) -> re.Match[str] | None:
        """The figures of a ``rebalance done`` line."""
        return _DONE.search(self.message) if self.logger.endswith(".rebalance") else None


def log_lines(processors: Iterable[Processor]) -> list[LogLine]:
    """The processors' JSON log lines, in time order (lines that are not JSON are skipped)."""
    lines = []
    for processor in processors:
        processor.service.log.flush()
        for text in Path(processor.service.log.name).read_text(errors="replace").splitlines():
            try:
                entry = orjson.loads(text)
                wall = datetime.fromisoformat(entry["ts"]).timestamp()
                line = LogLine(
                    processor.number, wall, entry["logger"], entry["level"], entry["msg"]
                )
            except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
                continue
            lines.append(line)
    return sorted(lines, key=lambda line: line.wall)


def _partitions(text: str) -> set[int]:
    return {int(number) for number in text.split(",") if number}


# -- the report ------------------------------------------------------------------------------


def run() -> list[Goal]:
    emit(
        f"processor group scaling {' → '.join(str(n) for n in group_sizes())} under "
        f"{RATE:,.0f} callbacks/s for {SECONDS:.0f} s: POST → derived event visible to a "
        "read_committed consumer"
    )
    aiokafka_logger = logging.getLogger("aiokafka")
    level = aiokafka_logger.level
    # Freshly created topics have no leader for a moment; aiokafka logs its (successful) retries
    # as errors. A real failure still surfaces: as an exception, or as missing events.
    aiokafka_logger.setLevel(logging.CRITICAL)
    try:
        with kafka() as bootstrap:
            prefix = f"bench-scaling-{uuid.uuid4().hex[:10]}."
            topics = TopicNames.with_prefix(prefix)
            settings = ProcessorSettings(
                kafka=KafkaSettings(bootstrap_servers=bootstrap, topic_prefix=prefix),
                topic_partitions=PARTITIONS,
            )
            uvloop.run(ensure_topics(settings))
            with running(bootstrap, prefix) as (ingest, fleet):
                outcome = uvloop.run(
                    scale_under_load(bootstrap, topics, f"{prefix}processor", ingest, fleet)
                )
                fleet.stop_all()
                outcome.processors = fleet.processors
                lines = log_lines(fleet.processors.values())
            read = uvloop.run(read_back(bootstrap, topics))
    finally:
        aiokafka_logger.setLevel(level)
    if LOG_DIR:
        dump_callbacks(outcome, Path(LOG_DIR, "callbacks.csv"))
    return _report(outcome, lines, read)


def dump_callbacks(run: Run, path: Path) -> None:
    """Per callback, for a closer look: its partition and its times (wall seconds)."""
    with path.open("w") as out:
        out.write("number,partition,scheduled,answered,produced,visible\n")
        for number, callback in enumerate(run.plan):
            arrival = run.arrivals.get(callback.expects)
            produced = "" if arrival is None else f"{arrival.produced_ms / 1000:.3f}"
            visible = "" if arrival is None else f"{arrival.wall:.3f}"
            out.write(
                f"{number},{run.partition_of[number]},{run.sent.scheduled_wall[number]:.3f},"
                f"{run.sent.answered_wall[number]:.3f},{produced},{visible}\n"
            )


def group_sizes() -> list[int]:
    sizes = [1]
    for step in SCHEDULE:
        sizes.append(sizes[-1] + (1 if step.action == "start" else -1))
    return sizes


@contextlib.contextmanager
def running(bootstrap: str, prefix: str) -> Iterator[tuple[Service, Fleet]]:
    """Ingest and processor-1 started; everything started stopped on the way out."""
    with contextlib.ExitStack() as logs:
        fleet = Fleet(bootstrap, prefix, logs)
        port = free_port()
        command, environ = ingest_command(bootstrap, prefix, port, workers=1)
        ingest = spawn("ingest", command, environ, port, open_log(logs, "ingest"))
        try:
            fleet.start(1)
            yield ingest, fleet
        finally:
            fleet.stop_all()
            stop_processes([ingest.process])


def _verdict(value: float, goal: float) -> str:
    return "met" if value < goal else "missed"


def _latency_line(window: Window) -> str:
    latency = window.latency_ms
    p99, worst = window.p(latency, 0.99), window.p(latency, 1.0)
    return (
        f"matched {len(latency):,}/{window.total:,}  p50 {window.p(latency, 0.5):,.0f} ms  "
        f"p99 {p99:,.0f} ms (goal < {GOAL_P99_MS:,.0f} ms: {_verdict(p99, GOAL_P99_MS)})  "
        f"max {worst:,.0f} ms (goal < {GOAL_MAX_MS:,.0f} ms: {_verdict(worst, GOAL_MAX_MS)})"
    )


def _stages_line(window: Window, processor_ms: list[float]) -> str:
    def both(figures: list[float]) -> str:
        return f"{window.p(figures, 0.99):,.0f} / {window.p(figures, 1.0):,.0f} ms"

    return (
        f"stages p99 / max from the scheduled send: ingest's 204 {both(window.answered_ms)}; "
        f"derived record produced {both(window.produced_ms)}; visible {both(window.latency_ms)}"
        f"; the processor's part (produced - 204) {both(processor_ms)}"
    )


def _processor_ms(run: Run, numbers: Iterable[int]) -> list[float]:
    """Sorted, per matched callback: its derived record's timestamp minus ingest's 204 (the
    time the processor took, whatever ingest and the generator were doing)."""
    part = []
    for number in numbers:
        arrival = run.arrivals.get(run.plan[number].expects)
        if arrival is not None:
            part.append(arrival.produced_ms - run.sent.answered_wall[number] * 1000)
    return sorted(part)


def _numbers(run: Run, start_wall: float, end_wall: float) -> range:
    """Plan numbers of the callbacks scheduled in ``[start_wall, end_wall)``."""
    first = max(int((start_wall - run.began_wall) * RATE), 0)
    last = min(int((end_wall - run.began_wall) * RATE), len(run.plan))
    return range(first, max(first, last))


def _by_partition_line(run: Run, numbers: range, moved: set[int]) -> str:
    """Latency p99 / max (end to end, and the processor's part) of the callbacks of
    ``numbers`` on partitions that stayed with their processor, and on those that moved."""
    parts = []
    for label, partitions in (
        ("stayed", set(range(PARTITIONS)) - moved),
        ("moved", moved),
    ):
        chosen = [n for n in numbers if run.partition_of[n] in partitions]
        window, processor_ms = _window(run, chosen), _processor_ms(run, chosen)
        parts.append(
            f"{label} {_ranges(partitions)}: {window.p(window.latency_ms, 0.99):,.0f} / "
            f"{window.p(window.latency_ms, 1.0):,.0f} ms (processor's part "
            f"{window.p(processor_ms, 0.99):,.0f} / {window.p(processor_ms, 1.0):,.0f} ms)"
        )
    return "partitions p99 / max: " + "; ".join(parts)


def _window(run: Run, numbers: Sequence[int]) -> Window:
    return window_of(run.plan, run.sent, run.arrivals, numbers)


def _settled(run: Run, after: float, live: set[int]) -> float | None:
    """The first poll after ``after`` at which exactly ``live`` were ready, sharing every
    partition once."""
    for snapshot in run.snapshots:
        if snapshot.wall <= after or set(snapshot.owned) != live:
            continue
        owned = [snapshot.owned[number] for number in live]
        partitions = [p for each in owned if each is not None for p in each]
        if all(each is not None for each in owned) and sorted(partitions) == list(
            range(PARTITIONS)
        ):
            return snapshot.wall
    return None


def _ranges(partitions: Iterable[int]) -> str:
    ordered = sorted(partitions)
    if not ordered:
        return "[]"
    spans: list[str] = []
    start = previous = ordered[0]
    for number in [*ordered[1:], None]:
        if number is not None and number == previous + 1:
            previous = number
            continue
        spans.append(str(start) if start == previous else f"{start}-{previous}")
        if number is not None:
            start = previous = number
    return "[" + ",".join(spans) + "]"


def _report(run: Run, lines: list[LogLine], read: ReadBack) -> list[Goal]:
    t = run.began_wall
    defaults = ProcessorSettings()
    whole = _window(run, range(len(run.plan)))
    preload = run.preload
    emit(
        f"  {SESSIONS:,} live sessions built first ({preload.records:,} raw records: "
        f"session:started + one participant:joined each, written straight to the raw topic in "
        f"{preload.written_s:.1f} s, committed by processor-1 {preload.committed_s:.1f} s after "
        f"the first was written, {preload.records / preload.committed_s:,.0f} records/s)"
    )
    emit(
        f"  {PARTITIONS} partitions (12 / 6 / 4 per processor at 1 / 2 / 3); ingest 1 worker; "
        f"processors exactly-once, defaults: commit every {defaults.commit_interval_ms} ms, "
        f"heartbeat {defaults.consumer_heartbeat_interval_ms} ms, session timeout "
        f"{defaults.consumer_session_timeout_ms / 1000:.0f} s, sticky assignor"
    )
    late = sorted(run.sent.late_ms)
    emit(
        f"  load: {len(run.plan):,} callbacks ({CONCURRENT_SESSIONS} new sessions open at a "
        f"time, 2-12 joins each), {len(run.plan) / run.sent.elapsed_s:,.0f}/s achieved; "
        f"generator late p99 {late[int(len(late) * 0.99) - 1]:.1f} ms, max {late[-1]:.1f} ms"
        + (f"; {run.sent.errors} not answered 204" if run.sent.errors else "")
    )
    emit(f"  {_cpu_line(run)}")
    emit("  schedule (t: seconds since the first callback was due):")
    live = {1}
    for taken in run.taken:
        processor = run.processors[taken.step.processor]
        live = (
            live | {processor.number} if taken.step.action == "start" else live - {processor.number}
        )
        settled = _settled(run, taken.wall, live)
        text = f"    t={taken.wall - t:5.1f} s  {taken.step.action} {processor.name}: "
        if taken.step.action == "start":
            if processor.ready_wall is not None:
                text += f"ready after {processor.ready_wall - processor.started_wall:.1f} s"
            else:
                text += f"never ready ({processor.not_ready})"
        else:
            exited = processor.exited_wall
            text += f"exited after {exited - taken.wall:.1f} s" if exited else "did not exit"
        text += (
            f"; group of {len(live)} settled (all ready, {PARTITIONS} partitions shared) after "
            f"{settled - taken.wall:.1f} s"
            if settled is not None
            else f"; group of {len(live)} never seen settled"
        )
        emit(text)

    emit(f"  whole run: {_latency_line(whole)}")
    emit(f"    {_stages_line(whole, _processor_ms(run, range(len(run.plan))))}")
    emit(f"  around each scale event (callbacks due within ±{WINDOW_S:.0f} s of it):")
    rebalances = [line for line in lines if line.done is not None]
    for number, taken in enumerate(run.taken):
        until = run.taken[number + 1].wall if number + 1 < len(run.taken) else float("inf")
        moved: set[int] = set()
        for line in rebalances:
            # A rebalance belongs to the event before its assignment (its line comes once
            # every partition is restored, which can be after the next event).
            done = line.done
            if done is not None and taken.wall <= line.wall - float(done["done"]) < until:
                moved |= _partitions(done["gained"])
        numbers = _numbers(run, taken.wall - WINDOW_S, taken.wall + WINDOW_S)
        window = _window(run, numbers)
        emit(
            f"    t={taken.wall - t:4.1f} s {taken.step.action} processor-{taken.step.processor}: "
            f"{_latency_line(window)}"
        )
        emit(f"      {_stages_line(window, _processor_ms(run, numbers))}")
        emit(f"      {_by_partition_line(run, numbers, moved)}")

    missing = [c.expects for c in run.plan if c.expects not in run.arrivals]
    never = [key for key in missing if key not in read.seen]
    emit(
        f"  lost: {len(missing):,} derived events not seen {DRAIN_TIMEOUT_S:.0f} s after the "
        f"last POST (goal 0: {'met' if not missing else 'missed'})"
        + (f"; {len(never):,} of them absent from the topics for good" if missing else "")
        + (f", e.g. {', '.join(missing[:3])}" if missing else "")
    )
    emit(
        f"  duplicate event ids: {read.duplicates:,} among {read.events:,} derived events of "
        f"the run's {read.topics} derived topics, read back from the beginning (goal 0: "
        f"{'met' if read.duplicates == 0 else 'missed'})"
    )

    emit(
        "  the processors' log lines about the group: consuming (about to join), a heartbeat "
        "finding a rebalance begun, the leader's assignment, rebalance done, stopped (left) "
        "(t: seconds since the first callback was due):"
    )
    for line in lines:
        if line.about_rebalance:
            emit(f"    t={line.wall - t:6.2f} s processor-{line.processor}: {line.message}")
    problems = [
        line
        for line in lines
        if line.level in ("warning", "error", "critical") and not line.about_rebalance
    ]
    for line in problems[:10]:
        emit(
            f"    t={line.wall - t:5.1f} s processor-{line.processor} {line.level.upper()}: "
            f"{line.message[:200]}"
        )
    if len(problems) > 10:
        emit(f"    ... {len(problems) - 10} more warnings or errors")

    emit("  per processor, from /metrics just before its SIGTERM (processor-1: at the end):")
    for processor in run.processors.values():
        figures = processor.figures
        if figures is None:
            emit(f"    {processor.name}: metrics not scraped")
            continue
        restores = ", ".join(
            f"{kind} {figures.restores[kind]} ({figures.restore_records[kind]:,} changelog "
            f"records, {figures.restore_seconds[kind] / max(figures.restores[kind], 1):.2f} s "
            "each on average)"
            for kind in ("full", "delta")
        )
        pause_max = (
            f"max ≤ {figures.pause_max_at_most_s:g} s" if figures.pauses else "none observed"
        )
        emit(
            f"    {processor.name}: {figures.rebalances} rebalances; partitions kept "
            f"{figures.partitions['kept']}, gained {figures.partitions['gained']}, lost "
            f"{figures.partitions['lost']}; restores: {restores}; pause of kept partitions: "
            f"{figures.pauses} observed, sum {figures.pause_sum_s:.2f} s, {pause_max}"
        )
    pauses = [float(done["pause"]) for line in rebalances if (done := line.done) is not None]
    longest = max(pauses, default=0.0)
    emit(
        f"  pause of a partition that stays on its processor: longest {longest:.3f} s over "
        f"{len(pauses)} rebalances (from the rebalance lines; goal < {GOAL_KEPT_PAUSE_S:g} s: "
        f"{_verdict(longest, GOAL_KEPT_PAUSE_S)})"
    )
    emit(
        "  max latency by second of the run, ms (callbacks due in that second): end to end, "
        "and the processor's part (produced - 204)"
    )
    seconds = int(len(run.plan) / RATE)
    end_to_end, processor_part = [], []
    for second in range(seconds):
        numbers = _numbers(run, t + second, t + second + 1)
        window = _window(run, numbers)
        end_to_end.append(window.p(window.latency_ms, 1.0))
        processor_part.append(window.p(_processor_ms(run, numbers), 1.0))
    for first in range(0, seconds, 10):
        span = f"t={first:2d}-{min(first + 9, seconds - 1):2d}"
        for label, maxima in (("end to end", end_to_end), ("processor ", processor_part)):
            row = " ".join(f"{m:6,.0f}" for m in maxima[first : first + 10])
            emit(f"    {span} {label}: {row}")
    if late[int(len(late) * 0.99) - 1] > 5:
        emit("  WARNING: the generator itself wrote requests late (p99 over 5 ms)")
    latency = whole.latency_ms
    return [
        below(
            "scaling 1-2-3-2-1 under load: end to end p99",
            whole.p(latency, 0.99),
            GOAL_P99_MS,
            unit="ms",
        ),
        below(
            "scaling 1-2-3-2-1 under load: end to end max",
            whole.p(latency, 1.0),
            GOAL_MAX_MS,
            unit="ms",
        ),
        below(
            "longest pause of a partition kept by its processor",
            longest,
            GOAL_KEPT_PAUSE_S,
            unit="s",
        ),
    ]


def _cpu_line(run: Run) -> str:
    """Where the machine's CPU went during the load: this bench's processes, and the rest."""
    began, ended = run.cpu
    total, busy = ended.total_s - began.total_s, ended.busy_s - began.busy_s
    processors = {
        p.name: p.cpu_last_s - p.cpu_at_load_s
        for p in run.processors.values()
        if p.cpu_last_s is not None
    }
    ingest = (ended.ingest_s or 0.0) - (began.ingest_s or 0.0)
    bench = ended.bench_s - began.bench_s
    rest = busy - sum(processors.values()) - ingest - bench
    each = ", ".join(f"{name} {seconds:.0f}" for name, seconds in processors.items())
    return (
        f"CPU during the load ({os.cpu_count()} cores, {total:.0f} core-seconds): busy "
        f"{busy:.0f} ({busy / total:.0%}): processors {sum(processors.values()):.0f} ({each}), "
        f"ingest {ingest:.0f}, this bench's generator and consumer {bench:.0f}, everything "
        f"else (the broker, other work on the machine) {rest:.0f}"
    )


if __name__ == "__main__":
    run()
