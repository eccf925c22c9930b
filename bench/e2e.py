"""End-to-end latency: from a callback's POST to its derived event being visible downstream.

The whole pipeline runs as in production: a broker (embedded, or ``KAFKA_BOOTSTRAP_SERVERS``),
the topics (``ensure_topics``, a prefix no earlier run used, 8 partitions), ``python -m ingest``
(1 worker) and ``python -m processor`` (exactly-once, default commit interval) as subprocesses.
An open-loop generator sends callbacks at a steady rate, each at its own scheduled time, over a
pool of raw keep-alive connections (as ``bench.http_load``): for each session a
``session:started``, then ``session:participant:joined`` of 2-12 unique participants,
interleaved over a few hundred sessions open at once. Each callback yields exactly one derived
event (``session.started`` on the sessions topic, ``participant.joined`` on the participants
topic), which a ``read_committed`` consumer (no group, positioned at the end of those topics
before the load starts) matches by session or participant id.

Latency is the consumer's wall-clock arrival time minus the callback's scheduled send time (wall
clock, same machine), so a stalled pipeline is charged for every callback it made wait. The
first ``WARMUP_SECONDS`` of the same steady stream are reported apart. Stages: the 204 from
ingest, and the derived record's timestamp (set when the processor's producer appends it, just
before its transaction commits), both from the same scheduled send time.

Then both services are stopped (SIGTERM) and started again on the same topics, and another
``WARMUP_SECONDS`` of new sessions is measured: the first seconds of a deploy or restart, the
processor restoring what the first run left. The two warm-ups differ in what the broker does:
the first writes every partition of topics created moments before, the second writes topics in
use, as production does after the day the topics were created.

Both are measured on the benchmarks' broker, whose figures meet or miss the goals, and again on a
broker started for the comparison with its logs on the other storage (disk when the benchmarks'
broker is on tmpfs): a broker's first writes into new topics cost what its storage costs
(``bench.broker``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import random
import re
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import aiohttp
import msgspec
import orjson
import uvloop
from aiokafka import AIOKafkaConsumer
from aiokafka.structs import TopicPartition

from bench.broker import BOOTSTRAP_VARIABLE, kafka, other_storage, started_broker
from bench.goals import Goal, below
from bench.http_load import RawPool, dispatch_at_rate
from bench.ingest import ingest_command
from bench.meetings import session_id_of
from bench.report import emit
from processor.provisioning import ensure_topics
from processor.settings import Guarantee, ProcessorSettings
from schemas.timestamps import format_epoch_ms
from schemas.topics import TopicNames
from servicekit.kafka import KafkaSettings
from tools.devkafka import free_port

PARTITIONS = 8
RATE = 1_000.0
"""Callbacks per second, steady."""
SECONDS = 15.0
WARMUP_SECONDS = 5.0
"""Sent first at the same rate, reported apart: the broker's JIT and every connection warm up
(the first seconds after start are several times slower)."""
CONCURRENT_SESSIONS = 300
"""Sessions receiving joins at any moment; each gets 2-12 participants, as ``bench.meetings``
(the processor writes a snapshot of every session it touched at each commit, so the size of
the sessions, not only the callback rate, sets how much it writes)."""
GOAL_P99_MS = 150.0
GOAL_WARMUP_P99_MS = 300.0
POOL = 64
"""Connections of the generator: enough that none waits at this rate."""
READY_TIMEOUT_S = 60.0
DRAIN_TIMEOUT_S = 15.0
"""Longest wait, after the last POST, for derived events still missing."""
STOP_TIMEOUT_S = 20.0

JOINED = "participant.joined"
STARTED = "session.started"


@dataclass(frozen=True, slots=True)
class Callback:
    body: bytes
    expects: str
    """``<derived type>/<id>``: the derived event this callback must produce."""


def plan_callbacks(total: int, *, seed: int = 5) -> list[Callback]:
    """``total`` callbacks in send order: ``CONCURRENT_SESSIONS`` sessions open at any time.

    Each session gets its ``session:started``, then 2-12 ``session:participant:joined`` of
    unique participants, interleaved with the other open sessions'; a full session makes room
    for a new one (the first ones open over the first ``2 * CONCURRENT_SESSIONS`` callbacks).
    A join always follows its session's start (same key, same raw partition: the processor
    sees the start first).
    """
    rng = random.Random(seed)
    now_ms = time.time_ns() // 1_000_000
    open_sessions: list[_OpenSession] = []
    plan: list[Callback] = []
    for number in range(total):
        if len(open_sessions) < CONCURRENT_SESSIONS and (number % 2 == 0 or not open_sessions):
            session = _OpenSession(
                session_id_of(rng), str(uuid.UUID(int=rng.getrandbits(128))), rng.randint(2, 12)
            )
            open_sessions.append(session)
            body: dict[str, object] = {
                "event": "session:started",
                "session_id": session.session_id,
                "room_id": session.room_id,
                "started_at": format_epoch_ms(now_ms),
            }
            plan.append(Callback(orjson.dumps(body), f"{STARTED}/{session.session_id}"))
            continue
        index = rng.randrange(len(open_sessions))
        session = open_sessions[index]
        participant_id = str(uuid.UUID(int=rng.getrandbits(128)))
        body = {
            "event": "session:participant:joined",
            "participant_id": participant_id,
            "session_id": session.session_id,
            "room_id": session.room_id,
            "name": "Guest",
            "type": "Guest",
            "is_host": False,
        }
        plan.append(Callback(orjson.dumps(body), f"{JOINED}/{participant_id}"))
        session.joins_left -= 1
        if session.joins_left == 0:
            open_sessions[index] = open_sessions[-1]
            open_sessions.pop()
    return plan


@dataclass(slots=True)
class _OpenSession:
    session_id: str
    room_id: str
    joins_left: int


# -- the services ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Service:
    name: str
    process: subprocess.Popen[bytes]
    log: IO[bytes]
    ready_url: str

    def check_alive(self) -> None:
        if self.process.poll() is not None:
            raise RuntimeError(
                f"{self.name} exited with {self.process.returncode}:\n{self.log_tail()}"
            )

    def log_tail(self, lines: int = 20) -> str:
        self.log.flush()
        text = Path(self.log.name).read_text(errors="replace")
        return "\n".join(text.splitlines()[-lines:])


@contextlib.contextmanager
def services(bootstrap: str, prefix: str) -> Iterator[tuple[Service, Service]]:
    """Ingest (1 worker) and the processor as subprocesses; both stopped on the way out
    (SIGTERM, then SIGKILL after ``STOP_TIMEOUT_S``), whatever happened."""
    ingest_port, processor_port = free_port(), free_port()
    command, ingest_environ = ingest_command(bootstrap, prefix, ingest_port, workers=1)
    processor_env = processor_environ(bootstrap, prefix, processor_port)
    processor_command = [sys.executable, "-m", "processor"]
    started: list[Service] = []
    with contextlib.ExitStack() as logs:
        try:
            for name, argv, environ, port in (
                ("ingest", command, ingest_environ, ingest_port),
                ("processor", processor_command, processor_env, processor_port),
            ):
                log = logs.enter_context(tempfile.NamedTemporaryFile(prefix=f"bench-e2e-{name}-"))
                started.append(spawn(name, argv, environ, port, log))
            yield started[0], started[1]
        finally:
            stop_processes([service.process for service in started])


def spawn(
    name: str, argv: list[str], environ: dict[str, str], port: int, log: IO[bytes]
) -> Service:
    """``argv`` as a subprocess, ``environ`` over this process's environment, its output in
    ``log``; ready when ``/readyz`` on ``port`` says so."""
    process = subprocess.Popen(argv, env={**os.environ, **environ}, stdout=log, stderr=log)
    return Service(name, process, log, f"http://127.0.0.1:{port}/readyz")


def processor_environ(
    bootstrap: str, prefix: str, port: int, *, partitions: int = PARTITIONS
) -> dict[str, str]:
    """The environment of ``python -m processor`` for a run: exactly-once, the default commit
    interval, its group under ``prefix``, its HTTP endpoint on ``port``."""
    return {
        BOOTSTRAP_VARIABLE: bootstrap,
        "MEETINGS_TOPIC_PREFIX": prefix,
        "PROCESSOR_GROUP_ID": f"{prefix}processor",
        "PROCESSING_GUARANTEE": Guarantee.EXACTLY_ONCE.value,
        "COMMIT_INTERVAL_MS": str(ProcessorSettings().commit_interval_ms),
        "TOPIC_PARTITIONS": str(partitions),
        "PROCESSOR_HTTP_HOST": "127.0.0.1",
        "PROCESSOR_HTTP_PORT": str(port),
        "PROCESSOR_LOG_LEVEL": "warning",
    }


def stop_processes(processes: list[subprocess.Popen[bytes]]) -> None:
    """SIGTERM to each still running, then SIGKILL to any not gone after ``STOP_TIMEOUT_S``."""
    for process in processes:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + STOP_TIMEOUT_S
    for process in processes:
        try:
            process.wait(timeout=max(deadline - time.monotonic(), 0.1))
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


async def wait_ready(service: Service, partitions: int | None = None) -> None:
    """Until ``/readyz`` answers 200 (and, with ``partitions``, lists that many)."""
    deadline = time.monotonic() + READY_TIMEOUT_S
    async with aiohttp.ClientSession() as session:
        while time.monotonic() < deadline:
            service.check_alive()
            with contextlib.suppress(aiohttp.ClientError):
                async with session.get(service.ready_url) as response:
                    if response.status == 200:
                        owned = (await response.json()).get("partitions", [])
                        if partitions is None or len(owned) == partitions:
                            return
            await asyncio.sleep(0.1)  # readiness poll
    raise RuntimeError(
        f"{service.name} not ready in {READY_TIMEOUT_S:.0f} s:\n{service.log_tail()}"
    )


# -- the downstream consumer -----------------------------------------------------------------


class _Seen(msgspec.Struct):
    """The fields of a derived event that identify what it is about."""

    type: str
    session_id: str | None = None
    participant_id: str | None = None


@dataclass(frozen=True, slots=True)
class Arrival:
    wall: float
    """``time.time()`` when the consumer got the record."""
    produced_ms: int
    """The record's timestamp: when the processor's producer appended it."""


class Downstream:
    """A ``read_committed`` consumer of the derived topics, from their end, recording arrivals."""

    def __init__(self, bootstrap: str, topics: TopicNames, partitions: int = PARTITIONS) -> None:
        self._consumer = AIOKafkaConsumer(
            bootstrap_servers=bootstrap, isolation_level="read_committed", enable_auto_commit=False
        )
        self._partitions = [
            TopicPartition(topic, partition)
            for topic in (topics.participants, topics.sessions)
            for partition in range(partitions)
        ]
        self._decoder = msgspec.json.Decoder(_Seen)
        self.arrivals: dict[str, Arrival] = {}
        self.duplicates = 0

    async def start(self) -> None:
        await self._consumer.start()
        self._consumer.assign(self._partitions)
        await self._consumer.seek_to_end(*self._partitions)
        for tp in self._partitions:  # resolve the positions now, before any load
            await self._consumer.position(tp)

    async def stop(self) -> None:
        await self._consumer.stop()

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            batches = await self._consumer.getmany(timeout_ms=50)
            wall = time.time()
            for records in batches.values():
                for record in records:
                    if record.value is None:
                        continue
                    seen = self._decoder.decode(record.value)
                    about = seen.participant_id if seen.type == JOINED else seen.session_id
                    key = f"{seen.type}/{about}"
                    if key in self.arrivals:
                        self.duplicates += 1
                    else:
                        self.arrivals[key] = Arrival(wall, record.timestamp)


# -- the load --------------------------------------------------------------------------------


@dataclass(slots=True)
class Sent:
    """Per callback, in plan order: scheduled send time (wall) and when the 204 came back."""

    scheduled_wall: list[float]
    answered_wall: list[float]
    late_ms: list[float]
    """How late the generator actually wrote each request (its own lag, not the server's)."""
    errors: int
    elapsed_s: float


async def send_open_loop(url: str, plan: list[Callback], rate: float) -> Sent:
    """Each callback written at ``start + n / rate`` on an idle keep-alive connection."""
    pool = RawPool(url)
    requests = [pool.post(callback.body) for callback in plan]
    await pool.open(POOL)
    total = len(plan)
    scheduled_wall = [0.0] * total
    answered_wall = [0.0] * total
    late_ms = [0.0] * total
    errors = 0

    async def one(number: int, scheduled: float) -> None:
        nonlocal errors

        def written() -> None:
            late_ms[number] = (time.monotonic() - scheduled) * 1000

        accepted = await pool.exchange(requests[number], on_written=written)
        answered_wall[number] = time.time()
        errors += not accepted

    began_wall, began = time.time(), time.monotonic()
    for number in range(total):
        scheduled_wall[number] = began_wall + number / rate
    try:
        elapsed = await dispatch_at_rate(total, rate, began, one)
    finally:
        pool.close()
    return Sent(scheduled_wall, answered_wall, late_ms, errors, elapsed)


# -- the run ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Window:
    """The figures of a stretch of the plan."""

    total: int
    latency_ms: list[float]
    """Sorted, of the matched callbacks: scheduled send → visible downstream."""
    answered_ms: list[float]
    """Sorted: scheduled send → 204 from ingest."""
    produced_ms: list[float]
    """Sorted: scheduled send → the processor's producer appended the derived record."""
    missing: list[str]

    def p(self, figures: list[float], fraction: float) -> float:
        if not figures:
            return float("nan")
        return figures[max(int(len(figures) * fraction) - 1, 0)]


@dataclass(frozen=True, slots=True)
class Result:
    warmup: Window
    measured: Window
    starts: int
    duplicates: int
    errors: int
    achieved_rate: float
    late_p99_ms: float
    commits: int
    """Transactions the processor committed during the measured stretch."""
    commit_mean_ms: float


async def measure(
    bootstrap: str, topics: TopicNames, ingest: Service, processor: Service, plan: list[Callback]
) -> Result:
    await asyncio.gather(wait_ready(ingest), wait_ready(processor, PARTITIONS))
    metrics_url = processor.ready_url.replace("/readyz", "/metrics")
    downstream = Downstream(bootstrap, topics)
    await downstream.start()
    stop = asyncio.Event()
    consuming = asyncio.create_task(downstream.run(stop))
    try:
        url = ingest.ready_url.replace("/readyz", "/callbacks")
        sending = asyncio.create_task(send_open_loop(url, plan, RATE))
        await asyncio.sleep(WARMUP_SECONDS)
        commits_before = await commit_seconds(metrics_url)
        sent = await sending
        commits_after = await commit_seconds(metrics_url)
        expected = {callback.expects for callback in plan}
        deadline = time.monotonic() + DRAIN_TIMEOUT_S
        while not expected <= downstream.arrivals.keys() and time.monotonic() < deadline:
            if consuming.done():
                consuming.result()
            processor.check_alive()
            await asyncio.sleep(0.05)  # waiting for the last derived events
    finally:
        stop.set()
        await consuming
        await downstream.stop()
    split = int(WARMUP_SECONDS * RATE)
    commits = commits_after[1] - commits_before[1]
    return Result(
        warmup=window_of(plan, sent, downstream.arrivals, range(split)),
        measured=window_of(plan, sent, downstream.arrivals, range(split, len(plan))),
        starts=sum(callback.expects.startswith(STARTED) for callback in plan[split:]),
        duplicates=downstream.duplicates,
        errors=sent.errors,
        achieved_rate=len(plan) / sent.elapsed_s,
        late_p99_ms=sorted(sent.late_ms)[int(len(sent.late_ms) * 0.99) - 1],
        commits=int(commits),
        commit_mean_ms=(commits_after[0] - commits_before[0]) / max(commits, 1) * 1000,
    )


def window_of(
    plan: list[Callback], sent: Sent, arrivals: dict[str, Arrival], numbers: Sequence[int]
) -> Window:
    latency, answered, produced, missing = [], [], [], []
    for number in numbers:
        scheduled = sent.scheduled_wall[number]
        answered.append((sent.answered_wall[number] - scheduled) * 1000)
        arrival = arrivals.get(plan[number].expects)
        if arrival is None:
            missing.append(plan[number].expects)
            continue
        latency.append((arrival.wall - scheduled) * 1000)
        produced.append(arrival.produced_ms - scheduled * 1000)
    return Window(len(numbers), sorted(latency), sorted(answered), sorted(produced), missing)


async def commit_seconds(metrics_url: str) -> tuple[float, float]:
    """The processor's ``processor_commit_seconds`` histogram: (sum, count)."""
    async with aiohttp.ClientSession() as session, session.get(metrics_url) as response:
        text = await response.text()
    figures = dict(
        re.findall(r"^processor_commit_seconds_(sum|count) ([0-9.e+]+)$", text, re.MULTILINE)
    )
    return float(figures.get("sum", 0.0)), float(figures.get("count", 0.0))


def run() -> list[Goal]:
    """The pipeline on the benchmarks' broker (its goals), then once on a broker keeping its
    logs on the other storage (tmpfs or disk) for comparison."""
    emit(
        f"end-to-end: POST → derived event visible to a read_committed consumer, "
        f"{RATE:,.0f} callbacks/s for {SECONDS:.0f} s (after {WARMUP_SECONDS:.0f} s of warm-up)"
    )
    aiokafka_logger = logging.getLogger("aiokafka")
    level = aiokafka_logger.level
    # Freshly created topics have no leader for a moment; aiokafka logs its (successful) retries
    # as errors. A real failure still surfaces: as an exception, or as missing events.
    aiokafka_logger.setLevel(logging.CRITICAL)
    try:
        with kafka() as bootstrap:
            result, restarted = _measure_twice(bootstrap)
        _report(result, restarted)
        other = other_storage()
        if other is None:
            emit("  (no second broker: the benchmarks' broker is not one this run started)")
        else:
            emit(f"  the same on a broker with its logs on {other.describe_briefly()}:")
            with started_broker(other) as bootstrap:
                elsewhere, elsewhere_restarted = _measure_twice(bootstrap)
            _report_briefly(elsewhere, elsewhere_restarted)
    finally:
        aiokafka_logger.setLevel(level)
    measured = result.measured
    storage = "external broker" if other is None else f"broker on {other.other_name}"
    return [
        below(
            f"end to end p99 at {RATE:,.0f} callbacks/s ({storage})",
            measured.p(measured.latency_ms, 0.99),
            GOAL_P99_MS,
            unit="ms",
        ),
        below(
            f"warm-up p99, services restarted ({storage})",
            restarted.warmup.p(restarted.warmup.latency_ms, 0.99),
            GOAL_WARMUP_P99_MS,
            unit="ms",
        ),
        below(
            f"warm-up p99, new topics ({storage})",
            result.warmup.p(result.warmup.latency_ms, 0.99),
            GOAL_WARMUP_P99_MS,
            unit="ms",
        ),
    ]


def _measure_twice(bootstrap: str) -> tuple[Result, Result]:
    """The measured run into new topics, then the first seconds after both services restart
    on the same topics."""
    prefix = f"bench-e2e-{uuid.uuid4().hex[:10]}."
    topics = TopicNames.with_prefix(prefix)
    settings = ProcessorSettings(
        kafka=KafkaSettings(bootstrap_servers=bootstrap, topic_prefix=prefix),
        topic_partitions=PARTITIONS,
    )
    uvloop.run(ensure_topics(settings))
    plan = plan_callbacks(int(RATE * (WARMUP_SECONDS + SECONDS)))
    with services(bootstrap, prefix) as (ingest, processor):
        result = uvloop.run(measure(bootstrap, topics, ingest, processor, plan))
    # New sessions: the first run's would be duplicates, which derive nothing.
    restart_plan = plan_callbacks(int(RATE * WARMUP_SECONDS), seed=6)
    with services(bootstrap, prefix) as (ingest, processor):
        restarted = uvloop.run(measure(bootstrap, topics, ingest, processor, restart_plan))
    return result, restarted


def _report_briefly(result: Result, restarted: Result) -> None:
    measured = result.measured
    emit(
        f"    matched {len(measured.latency_ms):,}/{measured.total:,}  p99 "
        f"{measured.p(measured.latency_ms, 0.99):.0f} ms; warm-up p99: new topics "
        f"{result.warmup.p(result.warmup.latency_ms, 0.99):.0f} ms, services restarted "
        f"{restarted.warmup.p(restarted.warmup.latency_ms, 0.99):.0f} ms"
    )
    lost = len(measured.missing + result.warmup.missing + restarted.warmup.missing)
    if lost or result.duplicates + restarted.duplicates:
        emit(f"    WARNING: {lost} missing, {result.duplicates + restarted.duplicates} duplicated")


def _report(result: Result, restarted: Result) -> None:
    measured, warmup = result.measured, result.warmup
    latency = measured.latency_ms
    emit(
        f"  {result.starts:,} session starts + {measured.total - result.starts:,} participant "
        f"joins ({CONCURRENT_SESSIONS} sessions open at a time, 2-12 participants each), "
        f"{PARTITIONS} partitions; ingest 1 worker; processor exactly-once, commit every "
        f"{ProcessorSettings().commit_interval_ms} ms"
    )
    emit(
        f"  matched {len(latency):,}/{measured.total:,}  p50 {measured.p(latency, 0.5):.0f} ms  "
        f"p99 {measured.p(latency, 0.99):.0f} ms  max {measured.p(latency, 1.0):.0f} ms "
        f"(goal p99 < {GOAL_P99_MS:.0f} ms)"
    )
    emit(
        "  stages (p50 / p99 from the scheduled send): ingest's 204 "
        f"{measured.p(measured.answered_ms, 0.5):.1f} / "
        f"{measured.p(measured.answered_ms, 0.99):.1f} ms; derived record produced "
        f"{measured.p(measured.produced_ms, 0.5):.0f} / "
        f"{measured.p(measured.produced_ms, 0.99):.0f} ms; visible "
        f"{measured.p(latency, 0.5):.0f} / {measured.p(latency, 0.99):.0f} ms"
    )
    emit(
        f"  processor: {result.commits:,} transactions, {result.commit_mean_ms:.0f} ms each on "
        f"average; generator: {result.achieved_rate:,.0f} callbacks/s sent"
    )
    for label, window in (
        ("warm-up, first traffic into the new topics", warmup),
        ("warm-up, both services restarted on the same topics", restarted.warmup),
    ):
        emit(
            f"  {label} (not counted above): matched {len(window.latency_ms):,}/"
            f"{window.total:,}  p50 {window.p(window.latency_ms, 0.5):.0f} ms  "
            f"p99 {window.p(window.latency_ms, 0.99):.0f} ms "
            f"(goal p99 < {GOAL_WARMUP_P99_MS:.0f} ms)"
        )
    late_p99_ms = max(result.late_p99_ms, restarted.late_p99_ms)
    if late_p99_ms > 5:
        emit(f"  WARNING: the generator wrote requests late (p99 {late_p99_ms:.1f} ms)")
    missing = warmup.missing + measured.missing + restarted.warmup.missing
    if missing:
        emit(
            f"  WARNING: {len(missing):,} derived events never arrived, e.g. "
            + ", ".join(missing[:3])
        )
    duplicates = result.duplicates + restarted.duplicates
    if duplicates:
        emit(f"  WARNING: {duplicates} derived events arrived more than once")
    errors = result.errors + restarted.errors
    if errors:
        emit(f"  WARNING: {errors} requests were not answered 204")


if __name__ == "__main__":
    run()
