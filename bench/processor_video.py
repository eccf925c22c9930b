"""The processor's engine on Vonage Video API traffic beside Vonage Meetings, without a broker.

Every callback goes the runtime's way: raw bytes and their ``source-route`` through
``processor.sources.CallbackReader`` (Video with ``VIDEO_PARTICIPANT_KEY=data.userId``) into
``processor.engine.apply``.

* Memory per active session, measured as ``bench.processor_state`` measures Meetings: the growth
  of ``tracemalloc``'s traced memory while ``MEMORY_SESSIONS`` sessions are built from their
  callbacks, divided by their count. An active session of either source has five people present
  and a recording running; a Video person also publishes a camera stream, which the engine keeps.
* Callbacks per second into small sessions (five people joining and leaving: Meetings
  ``session:participant:joined``/``left``, Video ``connectionCreated``/``connectionDestroyed``),
  once with the callbacks decoded beforehand (adapter and engine) and once from raw bytes
  (decoding too), and for the realistic mixes of ``bench.meetings`` and ``bench.video``. The
  two sources take turns in every round; the median of the rounds is kept.
"""

from __future__ import annotations

import gc
import random
import statistics
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import orjson

from bench.meetings import MINUTE_MS, Body, RawCallback, raw_callbacks, session_id_of
from bench.processor_state import (
    MEETINGS_ROUTE,
    MEMORY_SESSIONS,
    READER,
    Delivery,
    active_bodies,
    memory_per_session,
    participant_fields,
)
from bench.side_by_side import heading, median_spread, row
from bench.video import PARTICIPANT_KEY, raw_video_callbacks
from processor.engine import Session, apply
from processor.sources import ParticipantKey, meetings_facts, video_facts
from schemas.callbacks import RoomExpiredCallback
from schemas.decoding import DecodeFailure, decode_callback, decode_video_callback
from schemas.sources import VIDEO_ARCHIVES_ROUTE, VIDEO_SESSIONS_ROUTE
from tools.simulator.video import NAMES, video_session_id_of
from tools.simulator.video_writer import tenant_of

ROUNDS = 5
SMALL_SESSIONS = 2_000
MIX_SESSIONS = 1_000
PRESENT = 5

SESSIONS_ROUTE = VIDEO_SESSIONS_ROUTE.encode()
ARCHIVES_ROUTE = VIDEO_ARCHIVES_ROUTE.encode()
TENANTS = [tenant_of(random.Random(number)) for number in range(8)]
"""The Video projects whose sessions the engine holds (a processor serves a few)."""


@dataclass(frozen=True, slots=True)
class SourcesResult:
    memory: tuple[float, float]
    """Bytes per active session: Meetings, Video."""
    rates: dict[str, tuple[list[float], list[float]]]
    """Callbacks per second of each round, per workload: Meetings, Video."""

    def lines(self) -> list[str]:
        meetings_bytes, video_bytes = self.memory
        out = [
            heading("figure"),
            row(
                f"memory per active session ({PRESENT} present)",
                f"{meetings_bytes:,.0f} bytes",
                f"{video_bytes:,.0f} bytes ({video_bytes / meetings_bytes:.2f}x)",
            ),
        ]
        for label, (meetings, video) in self.rates.items():
            ratio = statistics.median(video) / statistics.median(meetings)
            out.append(row(label, median_spread(meetings), f"{median_spread(video)} {ratio:.2f}x"))
        return out


def active_video_bodies(rng: random.Random, now_ms: int) -> list[Delivery]:
    """An active Video session: created, five people connected (token data naming them), each
    publishing a camera, an archive recording; Vonage's wire shapes (contract §7)."""
    tenant = rng.choice(TENANTS)
    session_id = video_session_id_of(rng, tenant)
    t0 = now_ms - rng.randint(5, 50) * MINUTE_MS
    common: Body = {"sessionId": session_id, "projectId": tenant.api_key}
    out = [(t0, {**common, "event": "sessionCreated", "timestamp": t0}, SESSIONS_ROUTE)]
    streams = []
    for number, user in enumerate(rng.sample(range(1, 1000), PRESENT)):
        at = t0 + 1_000 * (number + 1)
        data = {"userId": f"u-{user}", "name": rng.choice(NAMES)}
        connection: Body = {"id": _uuid(rng), "createdAt": at, "data": orjson.dumps(data).decode()}
        opened: Body = {**common, "event": "connectionCreated", "timestamp": at}
        out.append((at, {**opened, "connection": connection}, SESSIONS_ROUTE))
        stream_id = _uuid(rng)
        stream: Body = {
            "id": stream_id,
            "connection": {**connection, "data": ""},  # Vonage need not repeat token data
            "createdAt": at + 500,
            "name": data["name"],
            "videoType": "camera",
        }
        published: Body = {**common, "event": "streamCreated", "timestamp": at + 500}
        out.append((at + 500, {**published, "stream": stream}, SESSIONS_ROUTE))
        streams.append({"streamId": stream_id, "hasAudio": True, "hasVideo": True})
    started = t0 + MINUTE_MS
    archive: Body = {
        "id": _uuid(rng),
        "event": "archive",
        "sessionId": session_id,
        **tenant.archive_fields(),
        "name": "",
        "createdAt": started,
        "updatedAt": started,
        "status": "started",
        "duration": 0,
        "size": 0,
        "reason": "",
        "url": None,
        "outputMode": "composed",
        "hasAudio": True,
        "hasVideo": True,
        "streams": streams,
    }
    out.append((started, archive, ARCHIVES_ROUTE))
    return [(at, orjson.dumps(body), route) for at, body, route in out]


def _uuid(rng: random.Random) -> str:
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


def meetings_memory() -> float:
    """Bytes per active Meetings session, as ``bench.processor_state.measure_memory`` counts
    them."""
    now_ms = time.time_ns() // 1_000_000
    rng = random.Random(3)
    encoded = [
        [(at, body, MEETINGS_ROUTE) for at, body in active_bodies(rng, now_ms)]
        for _ in range(MEMORY_SESSIONS)
    ]
    return memory_per_session(encoded, present=PRESENT)


def video_memory() -> float:
    """Bytes per active Video session, over as many sessions as the Meetings figure."""
    now_ms = time.time_ns() // 1_000_000
    rng = random.Random(3)
    encoded = [active_video_bodies(rng, now_ms) for _ in range(MEMORY_SESSIONS)]
    return memory_per_session(encoded, present=PRESENT)


Work = Callable[[], int]
"""Applies a workload to fresh sessions; returns how many callbacks it handled."""


def small_meetings(rng: random.Random, t0: int) -> list[RawCallback]:
    """``SMALL_SESSIONS`` meetings of five people joining, then leaving."""
    out = []
    for _ in range(SMALL_SESSIONS):
        session_id = session_id_of(rng)
        room_id = str(uuid.UUID(int=rng.getrandbits(128)))
        people = [participant_fields(session_id, room_id, n, rng) for n in range(PRESENT)]
        for offset, event in ((0, "joined"), (100, "left")):
            out += [
                _record({"event": f"session:participant:{event}", **person}, session_id, at)
                for at, person in enumerate(people, start=t0 + offset)
            ]
    return out


def small_video(rng: random.Random, t0: int) -> list[RawCallback]:
    """``SMALL_SESSIONS`` Video sessions of five people connecting, then disconnecting."""
    out = []
    for _ in range(SMALL_SESSIONS):
        tenant = rng.choice(TENANTS)
        session_id = video_session_id_of(rng, tenant)
        common: Body = {"sessionId": session_id, "projectId": tenant.api_key}
        connections = [
            {
                "id": _uuid(rng),
                "createdAt": t0,
                "data": orjson.dumps({"userId": f"u-{number}", "name": rng.choice(NAMES)}).decode(),
            }
            for number in range(PRESENT)
        ]
        for at, connection in enumerate(connections, start=t0):
            body = {**common, "event": "connectionCreated", "timestamp": at}
            out.append(_record({**body, "connection": connection}, session_id, at, SESSIONS_ROUTE))
        for at, connection in enumerate(connections, start=t0 + 100):
            body = {**common, "event": "connectionDestroyed", "reason": "clientDisconnected"}
            closed = {**connection, "data": ""}  # not repeated: the engine knows the connection
            body |= {"timestamp": at, "connection": closed}
            out.append(_record(body, session_id, at, SESSIONS_ROUTE))
    return out


def _record(body: Body, session_id: str, at: int, route: bytes = MEETINGS_ROUTE) -> RawCallback:
    return RawCallback(orjson.dumps(body), session_id.encode(), at, route)


def raw_work(records: Sequence[RawCallback]) -> Work:
    """From raw bytes, as the runtime reads a record: ``CallbackReader`` and the engine."""

    def work() -> int:
        sessions: dict[bytes, Session] = {}
        for record in records:
            facts = READER.read(record.body, record.route, record.received_at_ms)
            if isinstance(facts, DecodeFailure):
                raise RuntimeError(f"undecodable: {facts!r}")
            if isinstance(facts, RoomExpiredCallback) or not facts:
                continue  # no session's (room expiry) or no change (sessionNotification)
            key = record.key
            sessions[key] = apply(sessions.get(key), facts, record.received_at_ms).session
        return len(records)

    return work


def decoded_meetings_work(records: Sequence[RawCallback]) -> Work:
    """Callbacks decoded beforehand: the Meetings adapter and the engine only."""
    decoded = []
    for record in records:
        callback = decode_callback(record.body)
        if isinstance(callback, DecodeFailure | RoomExpiredCallback):
            raise RuntimeError(f"not a session callback: {callback!r}")
        decoded.append((callback, record.received_at_ms))

    def work() -> int:
        sessions: dict[str, Session] = {}
        for callback, at in decoded:
            key = callback.session_id
            sessions[key] = apply(sessions.get(key), meetings_facts(callback, at), at).session
        return len(decoded)

    return work


def decoded_video_work(records: Sequence[RawCallback]) -> Work:
    """Callbacks decoded beforehand: the Video adapter and the engine only."""
    key_of = ParticipantKey(PARTICIPANT_KEY)
    decoded = []
    for record in records:
        callback = decode_video_callback(record.body)
        if isinstance(callback, DecodeFailure):
            raise RuntimeError(f"undecodable: {callback!r}")
        decoded.append((callback, record.received_at_ms))

    def work() -> int:
        sessions: dict[str, Session] = {}
        for callback, at in decoded:
            key = callback.session_id
            facts = video_facts(callback, at, key_of)
            sessions[key] = apply(sessions.get(key), facts, at).session
        return len(decoded)

    return work


def _rate(work: Work) -> float:
    gc.collect()  # each round starts from the same heap, whichever source ran before
    began = time.perf_counter()
    handled = work()
    return handled / (time.perf_counter() - began)


def measure_rates(rounds: int = ROUNDS) -> dict[str, tuple[list[float], list[float]]]:
    """Callbacks per second of each workload, per round, the two sources taking turns."""
    rng = random.Random(13)
    t0 = 1_700_000_000_000
    meetings, video = small_meetings(rng, t0), small_video(rng, t0)
    now_ms = time.time_ns() // 1_000_000
    workloads: dict[str, tuple[Work, Work]] = {
        "small sessions, decoded: adapter + engine": (
            decoded_meetings_work(meetings),
            decoded_video_work(video),
        ),
        "small sessions, raw bytes: reader + engine": (raw_work(meetings), raw_work(video)),
        f"the bench's mix, {MIX_SESSIONS:,} sessions, raw bytes": (
            raw_work(raw_callbacks(MIX_SESSIONS, now_ms=now_ms)),
            raw_work(raw_video_callbacks(MIX_SESSIONS, now_ms=now_ms)),
        ),
    }
    rates: dict[str, tuple[list[float], list[float]]] = {label: ([], []) for label in workloads}
    for number in range(rounds):
        for label, (meetings_work, video_work) in workloads.items():
            meetings_rates, video_rates = rates[label]
            # Alternate which goes first, so neither always inherits the other's garbage.
            if number % 2:
                video_rates.append(_rate(video_work))
                meetings_rates.append(_rate(meetings_work))
            else:
                meetings_rates.append(_rate(meetings_work))
                video_rates.append(_rate(video_work))
    return rates


def report(*, meetings_bytes: float | None = None) -> None:
    """Print both sources' figures side by side. ``meetings_bytes``: the Meetings memory per
    active session when ``bench.processor_state.measure_memory`` has just measured it (the same
    sessions and method: measured again here otherwise)."""
    from bench.report import emit

    if meetings_bytes is None:
        meetings_bytes = meetings_memory()
    result = SourcesResult(memory=(meetings_bytes, video_memory()), rates=measure_rates())
    emit(
        f"processor engine by source, no broker: memory of {MEMORY_SESSIONS:,} active sessions; "
        f"callbacks/s, median (range) of {ROUNDS} interleaved rounds, Video / Meetings"
    )
    for line in result.lines():
        emit(line)


if __name__ == "__main__":
    report()
