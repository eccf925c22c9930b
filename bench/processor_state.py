"""The processor's state at scale: restoring sessions from the changelog, memory, big sessions.

* Restore: 100,000 sessions (built by the engine from realistic meetings, a few participants
  and a recording each, half of them still active) are written as their changelog records to
  a compacted 8-partition topic; then ``read_sessions`` for every partition plus
  ``PartitionState.restore`` is timed, as ``ProcessorService`` does on assignment.
* Big-session restore: one webinar with 50,000 participant ids, 10,000 still present, written
  the same way and read back; its largest record is reported too.
* Memory: 20,000 active sessions built by the engine (five participants present and a
  recording running each), and the webinar: the growth of ``tracemalloc``'s traced memory
  divided by the sessions' (the webinar's participant ids') count.
* Big-session speed: callbacks applied to the webinar while 10,000 are present, what one commit
  writes for it (public state plus changed changelog records), and 1,000 replayed joins arriving
  at a 3,000-participant session after it ended.

Vonage Meetings traffic throughout; ``bench.processor_video`` prints memory per active session
and the engine's speed for Meetings and Video side by side.
"""

from __future__ import annotations

import asyncio
import gc
import random
import time
import tracemalloc
import uuid
from collections.abc import Sequence
from dataclasses import dataclass

import orjson
from aiokafka import AIOKafkaProducer

from bench.meetings import MINUTE_MS, Body, meeting, session_id_of
from bench.video import PARTICIPANT_KEY as VIDEO_PARTICIPANT_KEY
from processor.engine import (
    Session,
    all_records,
    apply,
    changed_records,
    snapshot,
)
from processor.provisioning import ensure_topics
from processor.runtime.changelog_read import read_sessions
from processor.runtime.partition import PartitionState
from processor.settings import ProcessorSettings
from processor.sources import CallbackReader, ParticipantKey
from processor.sources.meetings import SessionCallback, apply_callback
from schemas import (
    Callback,
    DecodeFailure,
    ParticipantJoinedCallback,
    ParticipantLeftCallback,
    RoomExpiredCallback,
    SessionEndedCallback,
    SessionStartedCallback,
    decode_callback,
    encode,
)
from schemas.sources import MEETINGS_ROUTES
from schemas.timestamps import clear_format_cache, format_epoch_ms, from_epoch_ms

STATE_SESSIONS = 100_000
TEMPLATES = 100
MEMORY_SESSIONS = 20_000
WEBINAR_PARTICIPANTS = 50_000
WEBINAR_PRESENT = 10_000
LATE_SESSION_PARTICIPANTS = 3_000
LATE_JOINS = 1_000


@dataclass(frozen=True, slots=True)
class RestoreResult:
    sessions: int
    record_bytes: float
    read_s: float
    restore_s: float

    @property
    def total_s(self) -> float:
        return self.read_s + self.restore_s

    def lines(self) -> list[str]:
        total = self.total_s
        return [
            f"  {'read_sessions (fetch + decode), 8 partitions':<44} {self.read_s:>14.2f} s",
            f"  {'PartitionState.restore (engine sessions)':<44} {self.restore_s:>14.2f} s",
            f"  {'total restore time':<44} {total:>14.2f} s (goal < 2 s)",
            f"  {'restore rate':<44} {self.sessions / total:>14,.0f} sessions/s",
        ]


@dataclass(frozen=True, slots=True)
class BigRestoreResult:
    records: int
    total_bytes: int
    largest_record: int
    restore_s: float

    def lines(self) -> list[str]:
        return [
            f"  {'changelog records of the webinar':<44} {self.records:>14,}",
            f"  {'their total size':<44} {self.total_bytes / 2**20:>14.1f} MiB",
            f"  {'largest record (key + value)':<44} {self.largest_record:>14,} bytes",
            f"  {'restore time (read + decode)':<44} {self.restore_s:>14.2f} s",
        ]


@dataclass(frozen=True, slots=True)
class MemoryResult:
    sessions: int
    traced_bytes: int
    webinar_bytes: int

    def lines(self) -> list[str]:
        per_session = self.traced_bytes / self.sessions
        per_participant = self.webinar_bytes / WEBINAR_PARTICIPANTS
        return [
            f"  {'traced memory of the sessions (tracemalloc)':<44} "
            f"{self.traced_bytes / 2**20:>14.1f} MiB",
            f"  {'memory per active session':<44} {per_session:>14,.0f} bytes (goal <= 1,536)",
            f"  {'memory of the webinar (50,000 ids)':<44} {self.webinar_bytes / 2**20:>14.1f} MiB",
            f"  {'memory per known participant':<44} {per_participant:>14,.0f} bytes",
        ]


@dataclass(frozen=True, slots=True)
class BigSessionResult:
    webinar_rate: float
    small_rate: float
    commit_ms: float
    commit_bytes: int
    late_s: float

    def lines(self) -> list[str]:
        return [
            f"  {'callbacks into small meetings (baseline)':<44} "
            f"{self.small_rate:>14,.0f} callbacks/s",
            f"  {'callbacks into the webinar, 10,000 present':<44} "
            f"{self.webinar_rate:>14,.0f} callbacks/s",
            f"  {'one commit of the webinar (state+changelog)':<44} {self.commit_ms:>14.2f} ms"
            f" ({self.commit_bytes:,} bytes)",
            f"  {'1,000 late joins, 3,000-participant ended':<44} {self.late_s:>14.2f} s",
        ]


def applied(bodies: list[tuple[int, Body]]) -> Session:
    """The engine's session after these ``(receive time, body)`` callbacks, in receive order."""
    session: Session | None = None
    for received_at, body in sorted(bodies, key=lambda pair: pair[0]):
        callback = decode_callback(orjson.dumps(body))
        if isinstance(callback, RoomExpiredCallback):
            continue
        session = apply_callback(session, session_callback(callback), received_at).session
    assert session is not None
    return session


def session_callback(callback: Callback | DecodeFailure) -> SessionCallback:
    if isinstance(callback, DecodeFailure | RoomExpiredCallback):
        raise RuntimeError(f"not a session callback: {callback!r}")
    return callback


def changelog_templates(now_ms: int) -> list[tuple[list[tuple[bytes, bytes]], bytes]]:
    """``(changelog records, the session id)``: realistic sessions to copy under other ids."""
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
        records = [(k, v) for k, v in all_records(applied(bodies)) if v is not None]
        templates.append((records, session_id.encode()))
    return templates


async def _write(
    settings: ProcessorSettings, records: list[tuple[bytes, bytes, int | None]]
) -> int:
    producer = AIOKafkaProducer(
        bootstrap_servers=settings.kafka.bootstrap_servers,
        linger_ms=20,
        enable_idempotence=True,
        max_request_size=2**20,
    )
    await producer.start()
    written = 0
    try:
        deliveries = []
        for key, value, partition in records:
            written += len(value)
            deliveries.append(
                await producer.send(
                    settings.topics.changelog, value=value, key=key, partition=partition
                )
            )
        await asyncio.gather(*deliveries)
    finally:
        await producer.stop()
    return written


async def measure_restore(settings: ProcessorSettings) -> RestoreResult:
    """Write ``STATE_SESSIONS`` sessions' changelogs to a fresh topic, then time reading them."""
    await ensure_topics(settings)
    templates = changelog_templates(time.time_ns() // 1_000_000)
    rng = random.Random(9)
    records: list[tuple[bytes, bytes, int | None]] = []
    for number in range(STATE_SESSIONS):
        template, template_id = templates[number % len(templates)]
        new_id = session_id_of(rng).encode()  # as long as the template's: same encoding
        partition = number % settings.topic_partitions
        records.extend(
            (
                key.replace(template_id, new_id),
                value.replace(template_id, new_id),
                partition,
            )
            for key, value in template
        )
    written = await _write(settings, records)

    partitions = list(range(settings.topic_partitions))
    began = time.perf_counter()
    sessions = await read_sessions(settings.kafka, settings.topics.changelog, partitions)
    read_s = time.perf_counter() - began
    began = time.perf_counter()
    restored = into_partition_states(settings, sessions)
    restore_s = time.perf_counter() - began
    if restored != STATE_SESSIONS:
        raise RuntimeError(f"restored {restored} sessions, wrote {STATE_SESSIONS}")
    return RestoreResult(restored, written / STATE_SESSIONS, read_s, restore_s)


def into_partition_states(settings: ProcessorSettings, sessions: dict[int, list[Session]]) -> int:
    """``PartitionState.restore`` of each partition's sessions, as the runtime does on
    assignment; returns how many."""
    restored = 0
    for partition, restored_sessions in sessions.items():
        state = PartitionState(
            partition, settings.topics, room_dedup_capacity=settings.room_dedup_capacity
        )
        restored += state.restore(restored_sessions)
    return restored


async def measure_big_restore(settings: ProcessorSettings) -> BigRestoreResult:
    """Write the webinar's changelog to one partition of a fresh topic, then time reading it."""
    await ensure_topics(settings)
    webinar = build_webinar()
    records = [(k, v) for k, v in all_records(webinar) if v is not None]
    await _write(settings, [(key, value, 0) for key, value in records])
    began = time.perf_counter()
    sessions = await read_sessions(settings.kafka, settings.topics.changelog, [0])
    restore_s = time.perf_counter() - began
    [restored] = sessions[0]
    if restored != webinar or restored.active_count != WEBINAR_PRESENT:
        raise RuntimeError("the restored webinar differs from the one written")
    return BigRestoreResult(
        records=len(records),
        total_bytes=sum(len(k) + len(v) for k, v in records),
        largest_record=max(len(k) + len(v) for k, v in records),
        restore_s=restore_s,
    )


def participant_fields(session_id: str, room_id: str, number: int, rng: random.Random) -> Body:
    """The fields of a Meetings participant callback for attendee ``number`` (0 hosts)."""
    return {
        "participant_id": str(uuid.UUID(int=rng.getrandbits(128))),
        "session_id": session_id,
        "room_id": room_id,
        "name": f"Attendee {number}",
        "type": "Guest",
        "is_host": number == 0,
    }


def _participant_callbacks(
    session_id: str, room_id: str, count: int, rng: random.Random
) -> tuple[list[ParticipantJoinedCallback], list[ParticipantLeftCallback]]:
    joins, lefts = [], []
    for number in range(count):
        fields = participant_fields(session_id, room_id, number, rng)
        joins.append(ParticipantJoinedCallback(**fields))  # type: ignore[arg-type]
        lefts.append(ParticipantLeftCallback(**fields))  # type: ignore[arg-type]
    return joins, lefts


def _started(session_id: str, room_id: str, t0: int) -> Session:
    callback = SessionStartedCallback(
        session_id=session_id, room_id=room_id, started_at=from_epoch_ms(t0)
    )
    return apply_callback(None, callback, t0).session


def build_webinar(t0: int = 1_700_000_000_000) -> Session:
    """50,000 participant ids joined, 40,000 of them gone again: 10,000 present."""
    rng = random.Random(11)
    session_id, room_id = session_id_of(rng), str(uuid.UUID(int=rng.getrandbits(128)))
    joins, lefts = _participant_callbacks(session_id, room_id, WEBINAR_PARTICIPANTS, rng)
    session = _started(session_id, room_id, t0)
    for number, join in enumerate(joins):
        apply_callback(session, join, t0 + 10 * number)
    for number, leaving in enumerate(lefts[WEBINAR_PRESENT:]):
        apply_callback(session, leaving, t0 + 600_000 + 10 * number)
    return session


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


Delivery = tuple[int, bytes, bytes]
"""``(receive time, body, source-route)``: one callback of one session, as the runtime reads
it."""

MEETINGS_ROUTE = MEETINGS_ROUTES[0].encode()
READER = CallbackReader(ParticipantKey(VIDEO_PARTICIPANT_KEY))
"""Reads raw callbacks as the runtime does (Video ones with ``bench.video``'s key)."""


def measure_memory() -> MemoryResult:
    """Traced memory kept by ``MEMORY_SESSIONS`` active engine sessions, then by the webinar."""
    rng = random.Random(3)
    now_ms = time.time_ns() // 1_000_000
    encoded = [
        [(at, body, MEETINGS_ROUTE) for at, body in active_bodies(rng, now_ms)]
        for _ in range(MEMORY_SESSIONS)
    ]
    per_session = memory_per_session(encoded, present=5)
    del encoded
    return MemoryResult(MEMORY_SESSIONS, round(per_session * MEMORY_SESSIONS), _webinar_memory())


def memory_per_session(encoded: Sequence[Sequence[Delivery]], *, present: int) -> float:
    """Traced growth while these sessions are built from their raw callbacks through the
    reader, per session: the callbacks are decoded and applied while tracing, so the strings
    the facts keep are counted. Each session must end with ``present`` participants present."""
    sessions: dict[str, Session] = {}
    clear_format_cache()
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for deliveries in encoded:
            session: Session | None = None
            for received_at, body, route in deliveries:
                facts = READER.read(body, route, received_at)
                if not isinstance(facts, list) or not facts:
                    raise RuntimeError(f"not a session callback with facts: {body[:200]!r}")
                session = apply(session, facts, received_at).session
            assert session is not None
            sessions[session.session_id] = session
        clear_format_cache()  # process-wide and bounded: not the sessions' memory
        gc.collect()
        grown = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    counted = sum(s.active_count for s in sessions.values())
    if counted != present * len(encoded):
        raise RuntimeError(f"{counted} present in {len(encoded)} sessions, expected {present} each")
    return grown / len(encoded)


def _webinar_memory() -> int:
    """Traced growth while the webinar is built from decoded callbacks (the callbacks freed)."""
    clear_format_cache()
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        webinar = build_webinar()
        clear_format_cache()
        gc.collect()
        grown = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    if len(webinar.participants) != WEBINAR_PARTICIPANTS:
        raise RuntimeError("the webinar lost participants")
    return grown


def measure_big_session() -> BigSessionResult:
    """Callbacks per second into the webinar and into small meetings; one commit's cost; late
    joins into an ended session."""
    rng = random.Random(13)
    t0 = 1_700_000_000_000
    webinar = build_webinar(t0)
    joins, lefts = _participant_callbacks(webinar.session_id, webinar.room_id or "", 20_000, rng)
    changed_records(webinar)  # as committed so far
    began = time.perf_counter()
    for number in range(len(joins)):  # newcomers come and go while 10,000 stay
        apply_callback(webinar, joins[number], t0 + 2_000_000 + number)
        apply_callback(webinar, lefts[number], t0 + 2_000_000 + number)
    webinar_rate = 2 * len(joins) / (time.perf_counter() - began)
    for number in range(200):  # what one commit interval brings: 200 newcomers
        apply_callback(webinar, joins[number], t0 + 3_000_000 + number)
    changed_records(webinar)
    for number in range(200):
        apply_callback(webinar, lefts[number], t0 + 3_000_000 + number)
    began = time.perf_counter()
    state = encode(snapshot(webinar))
    records = changed_records(webinar)
    commit_ms = (time.perf_counter() - began) * 1000
    commit_bytes = len(state) + sum(len(k) + len(v or b"") for k, v in records)

    small: list[tuple[SessionCallback, int]] = []
    for _ in range(2_000):
        session_id, room_id = session_id_of(rng), str(uuid.UUID(int=rng.getrandbits(128)))
        people_in, people_out = _participant_callbacks(session_id, room_id, 5, rng)
        small += [(c, t0 + i) for i, c in enumerate(people_in)]
        small += [(c, t0 + 100 + i) for i, c in enumerate(people_out)]
    sessions: dict[str, Session] = {}
    began = time.perf_counter()
    for callback, received_at in small:
        sessions[callback.session_id] = apply_callback(
            sessions.get(callback.session_id), callback, received_at
        ).session
    small_rate = len(small) / (time.perf_counter() - began)
    return BigSessionResult(webinar_rate, small_rate, commit_ms, commit_bytes, _late_joins())


def _late_joins() -> float:
    """Seconds to apply 1,000 replayed joins to an ended 3,000-participant session."""
    rng = random.Random(17)
    t0 = 1_700_000_000_000
    session_id, room_id = session_id_of(rng), str(uuid.UUID(int=rng.getrandbits(128)))
    joins, lefts = _participant_callbacks(session_id, room_id, LATE_SESSION_PARTICIPANTS, rng)
    session = _started(session_id, room_id, t0)
    for number in range(LATE_SESSION_PARTICIPANTS):
        apply_callback(session, joins[number], t0 + number)
        apply_callback(session, lefts[number], t0 + 60_000 + number)
    ended = SessionEndedCallback(
        session_id=session_id,
        room_id=room_id,
        started_at=from_epoch_ms(t0),
        ended_at=from_epoch_ms(t0 + 120_000),
    )
    apply_callback(session, ended, t0 + 120_000)
    began = time.perf_counter()
    for number in range(LATE_JOINS):  # retries of joins, after their lefts: each a new stint
        apply_callback(session, joins[number], t0 + 130_000 + number)
    return time.perf_counter() - began


def run_engine_only() -> None:
    """The figures that need no broker: ``python -m bench.processor_state``."""
    from bench import processor_video  # it imports this module
    from bench.report import emit

    memory = measure_memory()
    emit(f"processor memory: {memory.sessions:,} active sessions; one 50,000-id webinar")
    for line in memory.lines():
        emit(line)
    big = measure_big_session()
    emit("processor engine at scale: a webinar of 50,000 ids, 10,000 present")
    for line in big.lines():
        emit(line)
    processor_video.report(meetings_bytes=memory.traced_bytes / memory.sessions)


if __name__ == "__main__":
    run_engine_only()
