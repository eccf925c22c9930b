"""The benchmarks' broker: ``KAFKA_BOOTSTRAP_SERVERS``, or one started here, its logs on tmpfs.

A Kafka broker memory-maps each log segment's offset and time indexes, files it first extends
to ``segment.index.bytes`` without writing them. The first write into each page of such a file
makes the kernel allocate its block inside a page fault, while the broker holds the partition's
lock. On the virtual disks of some machines that fault takes milliseconds (against about a
hundredth of one on tmpfs), and a topic's first traffic pays it twice per partition: the first
seconds into brand-new topics then measure the disk's allocator, not the pipeline. A broker in
production pays it once per segment roll.

So the benchmark's broker keeps its logs on tmpfs when there is one with room
(``MEMORY_DIRECTORY``), or wherever ``BENCH_KAFKA_DIR`` says, and the report prints the cost of
that first write both there and in the default temporary directory, measured in the same run.
"""

from __future__ import annotations

import contextlib
import mmap
import os
import statistics
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from bench.report import emit
from tools.devkafka import EmbeddedKafka

BOOTSTRAP_VARIABLE = "KAFKA_BOOTSTRAP_SERVERS"

DIRECTORY_VARIABLE = "BENCH_KAFKA_DIR"
STARTED_VARIABLE = "BENCH_KAFKA_STARTED"
"""Set to the bootstrap servers of the broker ``kafka()`` started, while it runs: a benchmark
handed that broker through ``KAFKA_BOOTSTRAP_SERVERS`` knows it is this run's, on the storage
``broker_storage()`` chose."""
MEMORY_DIRECTORY = Path("/dev/shm")
MINIMUM_FREE_BYTES = 4 << 30
"""Room the benchmarks' topics need, with a wide margin (they write well under 1 GiB)."""
INDEX_FILE_BYTES = 10 << 20
"""The broker's default ``segment.index.bytes``."""
PROBE_FILES = 16


@dataclass(frozen=True, slots=True)
class BrokerStorage:
    directory: Path
    """Where the broker's working directory goes."""
    reason: str

    def describe(self) -> str:
        here = first_index_write_ms(self.directory)
        line = f"  broker logs under {self.directory} ({self.reason}); first write into a fresh "
        line += f"index page: {here:.2f} ms"
        default = Path(tempfile.gettempdir())
        if default.resolve() != self.directory.resolve():
            line += f", {first_index_write_ms(default):.2f} ms in {default}"
        return line


@dataclass(frozen=True, slots=True)
class OtherStorage:
    """Where a second broker keeps its logs, to compare with the benchmarks' broker."""

    storage: BrokerStorage
    other_name: str
    """What the benchmarks' broker's storage is called: ``tmpfs``, or its directory."""

    def describe_briefly(self) -> str:
        return f"{self.storage.reason} ({self.storage.directory})"


def other_storage() -> OtherStorage | None:
    """The storage the benchmarks' broker does not use (the temporary directory's disk when it
    is on tmpfs, tmpfs when it is on disk and tmpfs has room); ``None`` when the broker is
    external or there is no other."""
    given = os.environ.get(BOOTSTRAP_VARIABLE)
    if given and given != os.environ.get(STARTED_VARIABLE):
        return None
    storage = broker_storage()
    if storage.reason == "tmpfs":
        disk = Path(tempfile.gettempdir())
        return OtherStorage(BrokerStorage(disk, "disk"), "tmpfs")
    if _is_roomy_tmpfs(MEMORY_DIRECTORY):
        return OtherStorage(BrokerStorage(MEMORY_DIRECTORY, "tmpfs"), str(storage.directory))
    return None


@contextlib.contextmanager
def started_broker(other: OtherStorage) -> Iterator[str]:
    """A broker started (and removed, logs and all) around the block, on ``other``'s storage."""
    with (
        tempfile.TemporaryDirectory(dir=other.storage.directory, prefix="bench-kafka-") as workdir,
        EmbeddedKafka(workdir=Path(workdir)) as broker,
    ):
        yield broker.bootstrap_servers


@contextlib.contextmanager
def kafka() -> Iterator[str]:
    """The bootstrap servers of ``KAFKA_BOOTSTRAP_SERVERS``, or of a broker started (and
    removed, logs and all) around the block."""
    external = os.environ.get(BOOTSTRAP_VARIABLE)
    if external:
        yield external
        return
    storage = broker_storage()
    emit(storage.describe())
    with (
        tempfile.TemporaryDirectory(dir=storage.directory, prefix="bench-kafka-") as workdir,
        EmbeddedKafka(workdir=Path(workdir)) as broker,
    ):
        os.environ[STARTED_VARIABLE] = broker.bootstrap_servers
        try:
            yield broker.bootstrap_servers
        finally:
            del os.environ[STARTED_VARIABLE]


def broker_storage() -> BrokerStorage:
    chosen = os.environ.get(DIRECTORY_VARIABLE)
    if chosen:
        return BrokerStorage(Path(chosen), DIRECTORY_VARIABLE)
    if _is_roomy_tmpfs(MEMORY_DIRECTORY):
        return BrokerStorage(MEMORY_DIRECTORY, "tmpfs")
    room = f"no tmpfs with {MINIMUM_FREE_BYTES >> 30} GiB free"
    return BrokerStorage(Path(tempfile.gettempdir()), room)


def first_index_write_ms(directory: Path) -> float:
    """Median time of the first 4-byte write into a memory-mapped file extended without writing,
    as the broker creates and first appends to a segment's index."""
    timings = []
    with tempfile.TemporaryDirectory(dir=directory, prefix="index-probe-") as probe:
        for number in range(PROBE_FILES):
            path = Path(probe) / f"{number}.index"
            with path.open("w+b") as file:
                file.truncate(INDEX_FILE_BYTES)
                with mmap.mmap(file.fileno(), INDEX_FILE_BYTES) as mapped:
                    began = time.perf_counter()
                    mapped[0:4] = b"\0\0\0\1"
                    timings.append((time.perf_counter() - began) * 1000)
    return statistics.median(timings)


def _is_roomy_tmpfs(directory: Path) -> bool:
    try:
        mounts = Path("/proc/mounts").read_text()
        usage = os.statvfs(directory)
    except OSError:
        return False
    is_tmpfs = any(
        fields[1] == str(directory) and fields[2] == "tmpfs"
        for fields in (line.split() for line in mounts.splitlines())
        if len(fields) > 2
    )
    return is_tmpfs and usage.f_bavail * usage.f_frsize >= MINIMUM_FREE_BYTES
