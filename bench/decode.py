"""Decode throughput: typed msgspec decoding of callbacks versus untyped ``orjson.loads``.

Both decode the same bodies, a realistic mix of callbacks, in interleaved rounds of one run.
"""

from __future__ import annotations

import random
import uuid

import orjson

from bench.report import Rate, best_rate, emit
from schemas import BaseCallback, decode_callback


def meeting_bodies(sessions: int, seed: int = 7) -> list[bytes]:
    """Callbacks of ``sessions`` meetings: joins and leaves dominate, as in real traffic."""
    rng = random.Random(seed)
    bodies: list[dict[str, object]] = []
    for number in range(sessions):
        session_id = f"2_MX40NjMzOTg5Mn5-{uuid.UUID(int=rng.getrandbits(128)).hex}-{number}~fg"
        room_id = str(uuid.UUID(int=rng.getrandbits(128)))
        started = f"2021-11-02T15:{number % 60:02d}:28.753Z"
        bodies.append(
            {
                "event": "session:started",
                "session_id": session_id,
                "room_id": room_id,
                "started_at": started,
            }
        )
        for _ in range(rng.randint(2, 12)):
            participant = {
                "participant_id": str(uuid.UUID(int=rng.getrandbits(128))),
                "session_id": session_id,
                "room_id": room_id,
                "name": rng.choice(["Ada Lovelace", "Alan Turing", "Grace Hopper", "Guest"]),
                "type": "Guest",
                "is_host": rng.random() < 0.1,
            }
            bodies.append({"event": "session:participant:joined", **participant})
            bodies.append({"event": "session:participant:left", **participant})
        if rng.random() < 0.3:
            recording_id = str(uuid.UUID(int=rng.getrandbits(128)))
            times = {"started_at": started, "ended_at": "2021-11-02T16:35:30.500Z"}
            bodies.append(
                {
                    "event": "recording:started",
                    "recording_id": recording_id,
                    "session_id": session_id,
                }
            )
            bodies.append(
                {
                    "event": "recording:ended",
                    "recording_id": recording_id,
                    "session_id": session_id,
                    **times,
                    "duration": 2430,
                }
            )
            bodies.append(
                {
                    "event": "recording:uploaded",
                    "recording_id": recording_id,
                    "session_id": session_id,
                    **times,
                    "duration": "2430",
                    "url": f"https://example.invalid/{recording_id}.mp4",
                }
            )
        bodies.append(
            {
                "event": "session:ended",
                "session_id": session_id,
                "room_id": room_id,
                "started_at": started,
                "ended_at": "2021-11-02T16:41:02.120Z",
            }
        )
        if rng.random() < 0.5:
            bodies.append(
                {
                    "event": "room:expired",
                    "room_id": room_id,
                    "room_type": "instant",
                    "expires_at": "2021-11-02T22:53:28.000Z",
                    "created_at": "2021-11-02T15:50:00.000Z",
                }
            )
    return [orjson.dumps(body) for body in bodies]


def run(rounds: int = 7) -> tuple[Rate, Rate]:
    bodies = meeting_bodies(sessions=2_000)
    # Every body must decode, or the comparison is meaningless.
    assert all(isinstance(decode_callback(body), BaseCallback) for body in bodies)

    def untyped() -> int:
        for body in bodies:
            orjson.loads(body)
        return len(bodies)

    def typed() -> int:
        for body in bodies:
            decode_callback(body)
        return len(bodies)

    baseline_rounds: list[Rate] = []
    typed_rounds: list[Rate] = []
    for _ in range(rounds):  # interleave so drift on a shared machine hits both alike
        baseline_rounds.append(best_rate("orjson.loads (untyped dict)", untyped, rounds=1))
        typed_rounds.append(best_rate("decode_callback (typed msgspec)", typed, rounds=1))
    baseline = sorted(baseline_rounds, key=lambda r: r.per_second)[rounds // 2]
    candidate = sorted(typed_rounds, key=lambda r: r.per_second)[rounds // 2]
    emit(f"decode: {len(bodies):,} callback bodies, median of {rounds} interleaved rounds")
    emit(baseline.line("callbacks"))
    emit(candidate.line("callbacks"))
    emit(f"  typed / untyped ratio: {candidate.per_second / baseline.per_second:.2f}x")
    return baseline, candidate


if __name__ == "__main__":
    run()
