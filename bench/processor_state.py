"""The processor's state at scale: restoring sessions from the state topic, and their memory.

* Restore: 100,000 ``SessionState`` snapshots (built by the engine from realistic meetings, a
  few participants and a recording each, half of them still active) are written to a compacted
  8-partition state topic keyed by ``session_id``; then ``read_sessions`` for every partition
  plus ``PartitionState.restore`` is timed, as ``ProcessorService`` does on assignment.
* Memory: 20,000 active sessions built by the engine (five participants present and a
  recording running each); the growth of ``tracemalloc``'s traced memory divided by their count.
"""

from __future__ import annotations

import asyncio
import gc
import random
import time
import tracemalloc
import uuid
from dataclasses import dataclass

import orjson
from aiokafka import AIOKafkaProducer

from bench.meetings import MINUTE_MS, Body, meeting, session_id_of
from processor.engine import Session, SessionCallback, apply, snapshot
from processor.runtime.partition import PartitionState
from processor.runtime.restore import read_sessions
from processor.settings import ProcessorSettings
from processor.topics import ensure_topics
from schemas import Callback, DecodeFailure, RoomExpiredCallback, decode_callback, encode
from schemas.timestamps import format_epoch_ms

STATE_SESSIONS = 100_000
TEMPLATES = 100
MEMORY_SESSIONS = 20_000


@dataclass(frozen=True, slots=True)
class RestoreResult:
    sessions: int
    snapshot_bytes: float
    read_s: float
    restore_s: float

    def lines(self) -> list[str]:
        total = self.read_s + self.restore_s
        return [
            f"  {'read_sessions (fetch + decode), 8 partitions':<44} {self.read_s:>14.2f} s",
            f"  {'PartitionState.restore (engine sessions)':<44} {self.restore_s:>14.2f} s",
            f"  {'total restore time':<44} {total:>14.2f} s",
            f"  {'restore rate':<44} {self.sessions / total:>14,.0f} sessions/s",
        ]


@dataclass(frozen=True, slots=True)
class MemoryResult:
    sessions: int
    traced_bytes: int

    def lines(self) -> list[str]:
        per_session = self.traced_bytes / self.sessions
        return [
            f"  {'traced memory of the sessions (tracemalloc)':<44} "
            f"{self.traced_bytes / 2**20:>14.1f} MiB",
            f"  {'memory per active session':<44} {per_session:>14,.0f} bytes",
        ]


def applied(bodies: list[tuple[int, Body]]) -> Session:
    """The engine's session after these ``(receive time, body)`` callbacks, in receive order."""
    session: Session | None = None
    for received_at, body in sorted(bodies, key=lambda pair: pair[0]):
        callback = decode_callback(orjson.dumps(body))
        if isinstance(callback, RoomExpiredCallback):
            continue
        session = apply(session, session_callback(callback), received_at).session
    assert session is not None
    return session


def session_callback(callback: Callback | DecodeFailure) -> SessionCallback:
    if isinstance(callback, DecodeFailure | RoomExpiredCallback):
        raise RuntimeError(f"not a session callback: {callback!r}")
    return callback


def snapshot_templates(now_ms: int) -> list[tuple[bytes, bytes]]:
    """``(encoded snapshot, its session id)``: realistic sessions to copy under other ids."""
    rng = random.Random(5)
    templates = []
    for number in range(TEMPLATES):
        session_id = session_id_of(rng)
        duration_ms = rng.randint(10, 40) * MINUTE_MS
        bodies = meeting(
            rng,
            session_id=session_id,
            t0=now_ms - duration_ms - rng.randint(1, 5) * MINUTE_MS,
            duration_ms=duration_ms,
            participants=rng.randint(2, 8),
            recording=True,
            ended=number % 2 == 0,
        )
        templates.append((encode(snapshot(applied(bodies))), session_id.encode()))
    return templates


async def measure_restore(settings: ProcessorSettings) -> RestoreResult:
    """Write ``STATE_SESSIONS`` snapshots to a fresh state topic, then time reading them back."""
    await ensure_topics(settings)
    topic = settings.topics.session_state
    templates = snapshot_templates(time.time_ns() // 1_000_000)
    rng = random.Random(9)
    producer = AIOKafkaProducer(
        bootstrap_servers=settings.kafka.bootstrap_servers, linger_ms=20, enable_idempotence=True
    )
    await producer.start()
    written = 0
    try:
        deliveries = []
        for number in range(STATE_SESSIONS):
            template, template_id = templates[number % len(templates)]
            session_id = session_id_of(rng).encode()
            value = template.replace(template_id, session_id)
            written += len(value)
            # keyed like the raw topic, so the default partitioner spreads them the same way
            deliveries.append(await producer.send(topic, value=value, key=session_id))
        await asyncio.gather(*deliveries)
    finally:
        await producer.stop()

    partitions = list(range(settings.topic_partitions))
    began = time.perf_counter()
    snapshots = await read_sessions(settings.kafka, topic, partitions)
    read_s = time.perf_counter() - began
    began = time.perf_counter()
    restored = 0
    for partition in partitions:
        state = PartitionState(
            partition, settings.topics, room_dedup_capacity=settings.room_dedup_capacity
        )
        restored += state.restore(snapshots.get(partition, []))
    restore_s = time.perf_counter() - began
    if restored != STATE_SESSIONS:
        raise RuntimeError(f"restored {restored} sessions, wrote {STATE_SESSIONS}")
    return RestoreResult(restored, written / STATE_SESSIONS, read_s, restore_s)


def active_bodies(rng: random.Random, now_ms: int) -> list[tuple[int, bytes]]:
    """An active session: started, five participants present, a recording running."""
    session_id = session_id_of(rng)
    room_id = str(uuid.UUID(int=rng.getrandbits(128)))
    t0 = now_ms - rng.randint(5, 50) * MINUTE_MS
    bodies: list[tuple[int, Body]] = [
        (
            t0,
            {
                "event": "session:started",
                "session_id": session_id,
                "room_id": room_id,
                "started_at": format_epoch_ms(t0),
            },
        )
    ]
    for number in range(5):
        person: Body = {
            "event": "session:participant:joined",
            "participant_id": str(uuid.UUID(int=rng.getrandbits(128))),
            "session_id": session_id,
            "room_id": room_id,
            "name": rng.choice(("Ada Lovelace", "Alan Turing", "Grace Hopper", "Guest")),
            "type": "Host" if number == 0 else "Guest",
            "is_host": number == 0,
        }
        bodies.append((t0 + 1_000 * (number + 1), person))
    recording = {"recording_id": str(uuid.UUID(int=rng.getrandbits(128))), "session_id": session_id}
    bodies.append((t0 + 60_000, {"event": "recording:started", **recording}))
    return [(at, orjson.dumps(body)) for at, body in bodies]


def measure_memory() -> MemoryResult:
    """Traced memory kept by ``MEMORY_SESSIONS`` active engine sessions (callbacks decoded and
    applied while tracing, so the strings the facts keep are counted)."""
    rng = random.Random(3)
    now_ms = time.time_ns() // 1_000_000
    encoded = [active_bodies(rng, now_ms) for _ in range(MEMORY_SESSIONS)]
    sessions: dict[str, Session] = {}
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for bodies in encoded:
            session: Session | None = None
            for received_at, body in bodies:
                session = apply(
                    session, session_callback(decode_callback(body)), received_at
                ).session
            assert session is not None
            sessions[session.session_id] = session
        gc.collect()
        grown = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    present = sum(len(s.present_participants()) for s in sessions.values())
    if present != 5 * MEMORY_SESSIONS:
        raise RuntimeError(f"{present} participants present, expected {5 * MEMORY_SESSIONS}")
    return MemoryResult(len(sessions), grown)
