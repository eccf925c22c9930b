"""Processor throughput on a backlog as the group scales out: 2 processors ÷ 1.

The question is what a second processor adds when one cannot keep up: the same backlog, the same
broker, drained by one ``python -m processor`` and then by two in one consumer group. On this
2-core machine the processors share the cores with the broker, so the answer is bounded by the
CPU left over, and the report says how the CPU was shared.

Method, for each measured run:

1. Fresh topics (``ensure_topics``) under a prefix no earlier run used (``bench.processor``'s
   ``bench_settings``), with ``PARTITIONS`` partitions: 12, the processor's default
   ``TOPIC_PARTITIONS``, which 1 and 2 processors (and 3, 4, 6) share evenly, so neither count is
   charged for an uneven split of partitions. The records are not spread perfectly evenly over
   the partitions (keys hash), so the report gives the share of the backlog each processor's
   partitions held: the pair finishes when the busier half does.
2. N processors start as production runs them (``python -m processor`` subprocesses, exactly-once,
   the default commit interval, settings from the environment: ``bench.e2e``'s helpers), on the
   empty topics. The backlog is only written once every one of them answers ``/readyz`` 200 and
   together they own every partition once, evenly: the group has settled, so the second member's
   join (and the rebalances it causes) is paid before the measurement, by neither count.
3. The backlog (``SESSIONS`` meetings' raw callbacks from ``bench.meetings``, about 16 records
   each: some 20 s of one processor's work here when nothing else runs) is written in ONE
   transaction (``bench.processor.preload_at_once``: the records, partitions, record batches
   and timestamps of ``bench.processor``). The processors read the raw topic
   ``read_committed``, so none of it is visible to them until the commit, and then all of it
   at once: a backlog that appears whole, as after an outage, rather than one growing as fast
   as this process writes it (that would time the writer, and take its CPU from the
   processors during the measurement).
4. The window runs from the commit of that transaction (the backlog appears) until the group's
   committed offsets cover the whole raw topic (polled with
   ``AIOKafkaAdminClient.list_consumer_group_offsets`` every ``POLL_S``); the rate is the backlog
   over its length. Not from the group's first commit: on this machine a processor's first
   transactions took seconds to land while it went on applying records (tens of thousands of
   them), so a window opened at the first commit seen would leave out work whose records it
   counts. The first commit's latency is reported beside each run; it is paid by both counts
   and is not a start-up cost only (later commits took as long).
5. The processors get SIGTERM (the production shutdown: they commit, leave the group and exit 0)
   and are waited for; then the run's topics are deleted, so six runs do not fill the broker's
   tmpfs.

Rounds interleave the counts (1, 2, 1, 2, ...; ``ROUNDS`` of each) after one uncounted warm-up run
on a quarter of the backlog (a freshly started broker's JIT would otherwise slow the first
measured run only); the figures are the medians and ranges of the rounds, and the goal is on the
ratio of the medians. CPU over each window comes from ``/proc``: each processor's, the broker's
(the process listening on the bootstrap port, when it is local), this process's, and the rest
of the machine (on a shared machine: other tenants).

Environment: ``BENCH_SCALE_OUT_SESSIONS`` (default 20,000 meetings, about 320,000 records);
``KAFKA_BOOTSTRAP_SERVERS`` as every benchmark (else an embedded broker).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import aiohttp
import uvloop
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.structs import TopicPartition

from bench.broker import kafka
from bench.e2e import Service, processor_environ, spawn, stop_processes
from bench.goals import Goal, at_least
from bench.meetings import RawCallback, raw_callbacks
from bench.processor import Ends, bench_settings, preload_at_once
from bench.report import emit
from bench.scaling import cpu_seconds, machine_cpu_seconds
from bench.side_by_side import median_spread
from processor.provisioning import ensure_topics
from processor.settings import Guarantee, ProcessorSettings
from tools.devkafka import free_port

PARTITIONS = 12
"""Shared evenly by 1 and 2 processors (and 3, 4, 6); the processor's default."""
COUNTS = (1, 2)
SESSIONS = int(os.environ.get("BENCH_SCALE_OUT_SESSIONS", "20000"))
"""Meetings in the backlog: about 16 raw records each."""
WARMUP_SHARE = 0.25
"""The part of the backlog the uncounted warm-up run drains."""
ROUNDS = 3
GOAL_RATIO = 1.3
FIGURE = "processor backlog throughput, 2 processors ÷ 1"
SETTLE_TIMEOUT_S = 90.0
"""Longest wait for the processors to start, join and share the partitions."""
RUN_TIMEOUT_S = 300.0
"""Longest wait for the group to commit the whole backlog."""
READY_POLL_S = 0.1
POLL_S = 0.025
"""How often the group's committed offsets are read: a commit is seen at most this late."""
LOCAL_HOSTS = ("127.0.0.1", "localhost", "::1", "[::1]")


# -- the result ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ScaleOut:
    """The benchmark's figures: median records/s of each count, and their ratio."""

    one: float
    """Median records/s of one processor."""
    two: float
    """Median records/s of two processors in one group."""

    @classmethod
    def of(cls, rates: Mapping[int, Sequence[float]]) -> ScaleOut:
        return cls(one=statistics.median(rates[1]), two=statistics.median(rates[2]))

    @property
    def ratio(self) -> float:
        return self.two / self.one

    @property
    def met(self) -> bool:
        return self.ratio >= GOAL_RATIO

    def goal(self) -> Goal:
        return at_least(FIGURE, self.ratio, GOAL_RATIO)


# -- the group settling ----------------------------------------------------------------------


def split_evenly(owned: Sequence[Sequence[int] | None], partitions: int) -> bool:
    """Whether every member is ready (``None``: not) and together they own each of
    ``partitions`` once, none more than one partition more than another."""
    ready = [each for each in owned if each is not None]
    if len(ready) < len(owned) or not ready:
        return False
    sizes = [len(each) for each in ready]
    every = sorted(p for each in ready for p in each)
    return every == list(range(partitions)) and max(sizes) - min(sizes) <= 1


async def until_settled(services: Sequence[Service]) -> list[list[int]]:
    """Each processor's partitions, once all are ready and share ``PARTITIONS`` evenly."""
    timeout = aiohttp.ClientTimeout(total=2)
    deadline = time.monotonic() + SETTLE_TIMEOUT_S
    async with aiohttp.ClientSession(timeout=timeout) as session:
        while time.monotonic() < deadline:
            for service in services:
                service.check_alive()
            owned = await asyncio.gather(*(_owned(session, s) for s in services))
            if split_evenly(owned, PARTITIONS):
                return [list(each or ()) for each in owned]
            await asyncio.sleep(READY_POLL_S)  # readiness poll
    tails = "\n".join(f"{s.name}:\n{s.log_tail()}" for s in services)
    raise RuntimeError(f"the group did not settle in {SETTLE_TIMEOUT_S:.0f} s:\n{tails}")


async def _owned(session: aiohttp.ClientSession, service: Service) -> list[int] | None:
    """The partitions ``/readyz`` lists when it answers 200, else ``None``."""
    with contextlib.suppress(aiohttp.ClientError, TimeoutError):
        async with session.get(service.ready_url) as response:
            if response.status == 200:
                partitions: list[int] = (await response.json())["partitions"]
                return partitions
    return None


# -- the backlog -----------------------------------------------------------------------------


def committed_records(offsets: Mapping[TopicPartition, int], ends: Ends) -> int:
    """Records of ``ends`` the committed ``offsets`` cover (an offset past a partition's last
    record, at its transaction marker, counts as its end)."""
    return sum(min(offsets.get(tp, 0), end) for tp, end in ends.items())


async def until_committed(
    admin: AIOKafkaAdminClient,
    group: str,
    ends: Ends,
    services: Sequence[Service],
    *,
    records: int,
) -> None:
    """Poll ``group``'s committed offsets until they cover ``records`` records of ``ends``."""
    while True:
        for service in services:
            service.check_alive()
        offsets = await admin.list_consumer_group_offsets(group)
        if committed_records({tp: meta.offset for tp, meta in offsets.items()}, ends) >= records:
            return
        await asyncio.sleep(POLL_S)  # a poll of the broker's view


# -- CPU -------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CpuSample:
    """CPU seconds used so far: by each processor, the broker, this process, the machine."""

    processors: tuple[float, ...]
    broker: float | None
    bench: float
    busy: float
    total: float

    @classmethod
    def take(cls, pids: Sequence[int], broker_pid: int | None) -> CpuSample:
        busy, total = machine_cpu_seconds()
        times = os.times()
        return cls(
            processors=tuple(cpu_seconds(pid) or 0.0 for pid in pids),
            broker=None if broker_pid is None else cpu_seconds(broker_pid),
            bench=times.user + times.system,
            busy=busy,
            total=total,
        )

    def since(self, earlier: CpuSample) -> CpuShare:
        broker = None
        if self.broker is not None and earlier.broker is not None:
            broker = self.broker - earlier.broker
        return CpuShare(
            processors=tuple(
                a - b for a, b in zip(self.processors, earlier.processors, strict=True)
            ),
            broker=broker,
            bench=self.bench - earlier.bench,
            busy=self.busy - earlier.busy,
            total=self.total - earlier.total,
        )


@dataclass(frozen=True, slots=True)
class CpuShare:
    """Core-seconds used over a window, by whom."""

    processors: tuple[float, ...]
    broker: float | None
    bench: float
    busy: float
    total: float
    """Every core's seconds over the window, busy or idle."""

    @property
    def rest(self) -> float:
        """Busy time of everything else: the machine's other work (and the broker's, when its
        process was not found)."""
        return self.busy - sum(self.processors) - (self.broker or 0.0) - self.bench

    def describe(self, records: int) -> str:
        ours = sum(self.processors)
        each = " + ".join(f"{seconds:.1f}" for seconds in self.processors)
        processors = each if len(self.processors) == 1 else f"{each} = {ours:.1f}"
        broker = "not found" if self.broker is None else f"{self.broker:.1f}"
        return (
            f"CPU core-s of {self.total:.1f}: processors {processors} "
            f"({ours / max(records, 1) * 1e6:.0f} µs/record), broker {broker}, this bench "
            f"{self.bench:.1f}, other work {self.rest:.1f}; busy {self.busy / self.total:.0%}"
        )


def listening_inodes(table: str, port: int) -> set[str]:
    """Inodes of the sockets listening on ``port`` in a ``/proc/net/tcp`` (or ``tcp6``) table."""
    inodes = set()
    for line in table.splitlines()[1:]:
        fields = line.split()
        listening = len(fields) > 9 and fields[3] == "0A"
        if listening and int(fields[1].rsplit(":", 1)[1], 16) == port:
            inodes.add(fields[9])
    return inodes


def listening_pid(port: int) -> int | None:
    """The process listening on local TCP ``port``, if this user may see it."""
    inodes: set[str] = set()
    for table in ("tcp", "tcp6"):
        with contextlib.suppress(OSError):
            inodes |= listening_inodes(Path("/proc/net", table).read_text(), port)
    wanted = {f"socket:[{inode}]" for inode in inodes}
    for process in Path("/proc").iterdir() if wanted else ():
        if not process.name.isdigit():
            continue
        with contextlib.suppress(OSError):
            if any(os.readlink(fd) in wanted for fd in (process / "fd").iterdir()):
                return int(process.name)
    return None


def broker_pid(bootstrap: str) -> int | None:
    """The broker's process, when the first bootstrap server is on this machine."""
    host, _, port = bootstrap.split(",")[0].rpartition(":")
    return listening_pid(int(port)) if host in LOCAL_HOSTS else None


# -- one run ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Run:
    count: int
    backlog: int
    """Records in the raw topic."""
    elapsed_s: float
    """From the backlog's appearance until the group committed all of it."""
    first_commit_s: float
    """From the commit of the backlog to the group's first commit seen."""
    shares: tuple[float, ...]
    """Fraction of the backlog on each processor's partitions."""
    cpu: CpuShare
    exit_codes: tuple[int | None, ...]

    @property
    def rate(self) -> float:
        return self.backlog / self.elapsed_s

    def describe(self) -> str:
        shares = ""
        if self.count > 1:
            shares = "; their partitions held " + " / ".join(f"{s:.1%}" for s in self.shares)
        exits = ""
        if any(code != 0 for code in self.exit_codes):
            exits = f"; WARNING: exit codes after SIGTERM {list(self.exit_codes)}"
        return (
            f"{self.rate:,.0f} records/s ({self.backlog:,} in {self.elapsed_s:.1f} s, first "
            f"commit {self.first_commit_s:.2f} s after the backlog appeared){shares}; "
            f"{self.cpu.describe(self.backlog)}{exits}"
        )


def run_settings(bootstrap: str) -> ProcessorSettings:
    """``bench.processor``'s settings (a new prefix and group), with ``PARTITIONS``."""
    return dataclasses.replace(
        bench_settings(bootstrap, Guarantee.EXACTLY_ONCE), topic_partitions=PARTITIONS
    )


def measure(
    bootstrap: str, count: int, callbacks: Sequence[RawCallback], broker: int | None
) -> Run:
    """``count`` processors drain ``callbacks`` on topics of their own."""
    settings = run_settings(bootstrap)
    uvloop.run(ensure_topics(settings))
    try:
        with contextlib.ExitStack() as logs:
            services: list[Service] = []
            try:
                for number in range(1, count + 1):
                    name = f"processor-{number}"
                    log = logs.enter_context(tempfile.NamedTemporaryFile(prefix=f"{name}-"))
                    services.append(start_processor(settings, name, log))
                drained = uvloop.run(_drain(settings, services, callbacks, broker))
            finally:
                stop_processes([service.process for service in services])
            exit_codes = tuple(service.process.returncode for service in services)
    finally:
        uvloop.run(delete_topics(settings))
    return dataclasses.replace(drained, exit_codes=exit_codes)


def start_processor(settings: ProcessorSettings, name: str, log: IO[bytes]) -> Service:
    port = free_port()
    environ = processor_environ(
        settings.kafka.bootstrap_servers, settings.kafka.topic_prefix, port, partitions=PARTITIONS
    )
    return spawn(name, [sys.executable, "-m", "processor"], environ, port, log)


async def _drain(
    settings: ProcessorSettings,
    services: Sequence[Service],
    callbacks: Sequence[RawCallback],
    broker: int | None,
) -> Run:
    owned = await until_settled(services)
    ends = await preload_at_once(settings, callbacks)
    pids = [service.process.pid for service in services]
    appeared, cpu_began = time.perf_counter(), CpuSample.take(pids, broker)
    total = sum(ends.values())
    group = settings.group_id
    admin = AIOKafkaAdminClient(**settings.kafka.client_options())
    await admin.start()
    try:
        async with asyncio.timeout(RUN_TIMEOUT_S):
            await until_committed(admin, group, ends, services, records=1)
            first_commit = time.perf_counter()
            await until_committed(admin, group, ends, services, records=total)
        ended, cpu_ended = time.perf_counter(), CpuSample.take(pids, broker)
    finally:
        await admin.close()
    raw = settings.topics.raw
    return Run(
        count=len(services),
        backlog=total,
        elapsed_s=ended - appeared,
        first_commit_s=first_commit - appeared,
        shares=tuple(
            sum(ends.get(TopicPartition(raw, p), 0) for p in mine) / total for mine in owned
        ),
        cpu=cpu_ended.since(cpu_began),
        exit_codes=(),  # known once they are stopped
    )


async def delete_topics(settings: ProcessorSettings) -> None:
    """Delete every topic of the run (the broker frees their logs in the background)."""
    prefix = settings.kafka.topic_prefix
    admin = AIOKafkaAdminClient(**settings.kafka.client_options())
    await admin.start()
    try:
        names = [name for name in await admin.list_topics() if name.startswith(prefix)]
        if names:
            await admin.delete_topics(names)
    finally:
        await admin.close()


# -- the benchmark ---------------------------------------------------------------------------


def run(rounds: int = ROUNDS) -> ScaleOut:
    aiokafka_logger = logging.getLogger("aiokafka")
    level = aiokafka_logger.level
    # Freshly created topics have no leader for a moment; aiokafka logs its (successful) retries
    # as errors. A real failure still surfaces: as an exception, or a timeout.
    aiokafka_logger.setLevel(logging.CRITICAL)
    try:
        with kafka() as bootstrap:
            result = _rounds(bootstrap, rounds)
    finally:
        aiokafka_logger.setLevel(level)
    return result


def _rounds(bootstrap: str, rounds: int) -> ScaleOut:
    callbacks = raw_callbacks(SESSIONS, now_ms=time.time_ns() // 1_000_000)
    broker = broker_pid(bootstrap)
    emit(
        f"processor scale-out on a backlog: {len(callbacks):,} raw callbacks of {SESSIONS:,} "
        f"meetings on {PARTITIONS} partitions, written in one transaction once the group "
        f"settled; python -m processor exactly-once, defaults; {os.cpu_count()} cores shared "
        f"with the broker; records/s from the backlog's appearance until the group committed it"
    )
    warmup = measure(bootstrap, 2, callbacks[: int(len(callbacks) * WARMUP_SHARE)], broker)
    emit(f"  warm-up, 2 processors (not counted): {warmup.describe()}")
    runs: dict[int, list[Run]] = {count: [] for count in COUNTS}
    for number in range(1, rounds + 1):
        for count in COUNTS:  # interleaved, so drift on a shared machine hits both alike
            measured = measure(bootstrap, count, callbacks, broker)
            runs[count].append(measured)
            emit(f"  round {number}, {_processors(count)}: {measured.describe()}")
    result = ScaleOut.of({count: [r.rate for r in of] for count, of in runs.items()})
    for count, of in runs.items():
        emit(f"  {_processors(count):<13} {median_spread([r.rate for r in of])} records/s")
        emit(f"    {_cores(of)}")
    verdict = "met" if result.met else "missed"
    emit(f"  2 processors ÷ 1: {result.ratio:.2f}x (goal >= {GOAL_RATIO}: {verdict})")
    emit(f"    {_why(runs)}")
    return result


def _processors(count: int) -> str:
    return "1 processor" if count == 1 else f"{count} processors"


def _cores(runs: Sequence[Run]) -> str:
    """Median cores busy over the windows, by whom."""

    def cores(of: Callable[[Run], float | None]) -> str:
        median = _median_cores(runs, of)
        return "?" if median is None else f"{median:.2f}"

    return (
        f"cores busy (medians): processors {cores(_processors_cpu)}, broker "
        f"{cores(lambda r: r.cpu.broker)}, this bench {cores(lambda r: r.cpu.bench)}, other "
        f"work {cores(lambda r: r.cpu.rest)}, machine {cores(lambda r: r.cpu.busy)} of "
        f"{os.cpu_count()}"
    )


def _processors_cpu(run: Run) -> float:
    return sum(run.cpu.processors)


def _median_cores(runs: Sequence[Run], of: Callable[[Run], float | None]) -> float | None:
    values = [value / r.elapsed_s for r in runs if (value := of(r)) is not None]
    return statistics.median(values) if values else None


def _why(runs: Mapping[int, Sequence[Run]]) -> str:
    """What the throughput follows: the cores the processors got, and their CPU per record."""
    one, two = runs[1], runs[2]
    cores_one = _median_cores(one, _processors_cpu) or 0.0
    cores_two = _median_cores(two, _processors_cpu) or 0.0

    def per_record(of: Sequence[Run]) -> float:
        return statistics.median(_processors_cpu(r) / r.backlog * 1e6 for r in of)

    return (
        f"the processors' cores, 2 ÷ 1: {cores_two / max(cores_one, 1e-9):.2f}x "
        f"({cores_one:.2f} → {cores_two:.2f}); their CPU per record {per_record(one):.0f} → "
        f"{per_record(two):.0f} µs (medians)"
    )


if __name__ == "__main__":
    run()
