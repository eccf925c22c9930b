"""Records/s of the Quix Streams peer (``quix_job``), timed as the processor is timed.

A fresh raw topic gets the same records as the processor's run (``bench.processor.preload``);
the peer starts in its own process with a fresh consumer group and state directory, and is
timed from its first processed record (its own clock) until its group's committed offsets cover
the whole raw topic, polled no earlier than when it has processed every record, as
``bench.processor.until_covered`` does for the processor. Then it is stopped with SIGTERM,
and its output is read back (``read_committed``): every session's last state record must be
the one ``session_state`` gives for that session's callbacks, and there must be exactly as
many records per key as callbacks, or the run fails: a peer that skips work is no baseline.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import signal
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import orjson
from aiokafka import AIOKafkaConsumer
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.structs import TopicPartition

from bench.broker import broker_storage
from bench.meetings import RawCallback
from bench.peers.session_state import (
    SessionRecord,
    apply_callback,
    new_session,
    room_record,
    snapshot,
)
from bench.processor import RUN_TIMEOUT_S, Ends, bench_settings, preload
from processor.settings import Guarantee

ROOT = Path(__file__).resolve().parents[2]
STOP_TIMEOUT_S = 60.0
STDERR_LINES = 40
"""How much of the peer's standard error a failure shows."""
READ_BACK_TIMEOUT_S = 60.0


class PeerCrashed(RuntimeError):
    """The peer's process failed (as opposed to finishing with wrong output)."""

    def __init__(self, what: str, stderr: Sequence[str]) -> None:
        tail = "\n".join(stderr)
        super().__init__(f"the Quix Streams peer {what}; its last output:\n{tail}")
        self.last_line = next((line for line in reversed(stderr) if line.strip()), what)


class PeerProcess:
    """The ``quix_job`` process and what it has said: see that module for the lines."""

    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self.process = process
        self.first_ns: int | None = None
        self.processed: int | None = None
        self.first = asyncio.Event()
        self.all = asyncio.Event()
        self.stderr: collections.deque[str] = collections.deque(maxlen=STDERR_LINES)
        assert process.stdout is not None
        assert process.stderr is not None
        self.reading = asyncio.gather(self._stdout(process.stdout), self._stderr(process.stderr))
        self.exited = asyncio.ensure_future(process.wait())

    @classmethod
    async def start(cls, *arguments: str) -> PeerProcess:
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "bench.peers.quix_job",
            *arguments,
            cwd=ROOT,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        return cls(process)

    async def until(self, event: asyncio.Event) -> None:
        """Wait for ``event``; fail if the process exits first."""
        waiting = asyncio.ensure_future(event.wait())
        try:
            await asyncio.wait({waiting, self.exited}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            waiting.cancel()
        if not event.is_set():
            raise self.failure("exited before it was done")

    async def stop(self) -> None:
        """SIGTERM, as an orchestrator stops it; killed if it does not exit in time."""
        if not self.exited.done():
            with contextlib.suppress(ProcessLookupError):  # it may be exiting already
                self.process.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(asyncio.shield(self.exited), STOP_TIMEOUT_S)
        except TimeoutError:
            self.process.kill()
            await self.exited
            raise self.failure(f"did not stop within {STOP_TIMEOUT_S:.0f} s of SIGTERM") from None
        finally:
            await self.reading
        if self.process.returncode != 0:
            raise self.failure(f"exited with status {self.process.returncode}")

    def failure(self, what: str) -> PeerCrashed:
        return PeerCrashed(what, list(self.stderr))

    async def _stdout(self, stream: asyncio.StreamReader) -> None:
        async for line in stream:
            word, _, number = line.decode().partition(" ")
            if word == "first":
                self.first_ns = int(number)
                self.first.set()
            elif word == "all":
                self.all.set()
            elif word == "processed":
                self.processed = int(number)

    async def _stderr(self, stream: asyncio.StreamReader) -> None:
        async for line in stream:
            self.stderr.append(line.decode(errors="replace").rstrip())


async def measure_quix(bootstrap: str, callbacks: Sequence[RawCallback]) -> float:
    """Records/s of the Quix Streams peer, exactly-once, on a raw topic of its own."""
    settings = bench_settings(bootstrap, Guarantee.EXACTLY_ONCE)
    ends = await preload(settings, callbacks)
    total = sum(ends.values())
    prefix = settings.kafka.topic_prefix
    output, group = f"{prefix}quix.sessions", f"{prefix}quix"
    # Beside the broker's logs (tmpfs when there is room, see bench.broker): RocksDB's files
    # then cost what the processor's memory costs, not what this machine's disk does.
    with tempfile.TemporaryDirectory(dir=broker_storage().directory, prefix="quix-state-") as state:
        peer = await PeerProcess.start(
            *("--bootstrap", bootstrap, "--input", settings.topics.raw, "--output", output),
            *("--group", group, "--state-dir", state, "--expect", str(total)),
            *("--partitions", str(settings.topic_partitions)),
            *("--replication", str(settings.topic_replication_factor)),
        )
        try:
            elapsed = await asyncio.wait_for(
                _until_committed(bootstrap, group, ends, peer), RUN_TIMEOUT_S
            )
        finally:
            await peer.stop()
    if peer.processed != total:
        raise RuntimeError(f"the Quix Streams peer processed {peer.processed} of {total} records")
    await check_output(bootstrap, output, settings.topic_partitions, callbacks)
    return total / elapsed


async def _until_committed(bootstrap: str, group: str, ends: Ends, peer: PeerProcess) -> float:
    """Seconds from the peer's first processed record until ``group`` has committed ``ends``."""
    await peer.until(peer.first)
    assert peer.first_ns is not None
    began = time.perf_counter() - (time.time_ns() - peer.first_ns) / 1e9
    await peer.until(peer.all)
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        while True:
            offsets = await admin.list_consumer_group_offsets(group)
            if all(tp in offsets and offsets[tp].offset >= end for tp, end in ends.items()):
                return time.perf_counter() - began
            if peer.exited.done():
                raise peer.failure("exited before committing everything")
            await asyncio.sleep(0.01)
    finally:
        await admin.close()


async def check_output(
    bootstrap: str, topic: str, partitions: int, callbacks: Sequence[RawCallback]
) -> None:
    """The output holds one record per callback under its key, and each key's last record is
    its session's state after all its callbacks; raises ``RuntimeError`` otherwise."""
    expected = expected_last(callbacks)
    wanted = collections.Counter(callback.key for callback in callbacks)
    counts: collections.Counter[bytes] = collections.Counter()
    last: dict[bytes, object] = {}
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, isolation_level="read_committed", enable_auto_commit=False
    )
    await consumer.start()
    try:
        assigned = [TopicPartition(topic, number) for number in range(partitions)]
        consumer.assign(assigned)
        await consumer.seek_to_beginning(*assigned)
        ends = await consumer.end_offsets(assigned)  # the last stable offsets
        deadline = time.monotonic() + READ_BACK_TIMEOUT_S
        left = {tp for tp in assigned if ends[tp] > 0}
        while left:
            if time.monotonic() > deadline:
                raise RuntimeError(f"{topic} not read back in {READ_BACK_TIMEOUT_S:.0f} s")
            for records in (await consumer.getmany(timeout_ms=200, max_records=20_000)).values():
                for record in records:
                    counts[record.key] += 1
                    last[record.key] = orjson.loads(record.value)
            for tp in list(left):
                if await consumer.position(tp) >= ends[tp]:
                    left.discard(tp)
    finally:
        await consumer.stop()
    if counts != wanted:
        missing = sum((wanted - counts).values())
        extra = sum((counts - wanted).values())
        raise RuntimeError(
            f"the Quix Streams peer wrote {counts.total()} records for {wanted.total()} "
            f"callbacks ({missing} missing, {extra} extra by key)"
        )
    wrong = sum(last.get(key) != state for key, state in expected.items())
    if wrong:
        raise RuntimeError(f"the Quix Streams peer's last record is wrong for {wrong} keys")


def expected_last(callbacks: Sequence[RawCallback]) -> dict[bytes, object]:
    """Each key's last published record, replaying ``callbacks`` in order through
    ``session_state`` (JSON values as they come back from the output topic)."""
    sessions: dict[bytes, SessionRecord] = {}
    last: dict[bytes, object] = {}
    for callback in callbacks:
        body = orjson.loads(callback.body)
        session_id = body.get("session_id")
        if not isinstance(session_id, str):
            last[callback.key] = room_record(body)
            continue
        record = sessions.get(callback.key)
        if record is None:
            record = sessions[callback.key] = new_session(session_id)
        apply_callback(record, body)
        last[callback.key] = snapshot(record)
    return {key: orjson.loads(orjson.dumps(value)) for key, value in last.items()}
