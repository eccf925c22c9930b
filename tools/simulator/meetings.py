"""The callbacks of one realistic meeting, as Vonage would send them.

Each meeting: ``session:started``; participants (the first one the host) joining over its first
half and, most of them, leaving before it ends; optionally a recording started, ended and
uploaded; ``session:ended``; for some, ``room:expired`` a little later.

Shared by the simulator (``meetings-simulate``) and the benchmarks, which is why the output is a
plain ``(send time, body)`` timeline rather than anything HTTP- or Kafka-shaped.
"""

from __future__ import annotations

import base64
import random
import uuid
from collections.abc import Callable
from dataclasses import dataclass

from schemas.timestamps import format_epoch_ms

MINUTE_MS = 60_000
NAMES = ("Ada Lovelace", "Alan Turing", "Grace Hopper", "Edsger Dijkstra", "Guest", None)

Body = dict[str, object]
Timeline = list[tuple[int, Body]]
"""``(epoch ms at which Vonage sends it, body)`` pairs."""
_Clock = Callable[[int], int]
"""Meeting-time offset (ms) to epoch ms."""


@dataclass(frozen=True, slots=True)
class MeetingDraw:
    """One meeting's random draws (what ``meetings-simulate`` plans); expanding it is
    deterministic given ``seed``."""

    duration_ms: int
    participants: int
    recording: bool
    seed: int

    def timeline(self, session_id: str, t0: int, time_scale: float) -> Timeline:
        return meeting(
            random.Random(self.seed),
            session_id=session_id,
            t0=t0,
            duration_ms=self.duration_ms,
            participants=self.participants,
            recording=self.recording,
            time_scale=time_scale,
        )


def draw_meeting(rng: random.Random) -> MeetingDraw:
    return MeetingDraw(
        duration_ms=rng.randint(5, 40) * MINUTE_MS,
        participants=rng.randint(2, 12),
        recording=rng.random() < 0.3,
        seed=rng.getrandbits(64),
    )


def session_id_of(rng: random.Random) -> str:
    """Shaped like a Vonage session id (``2_MX4…-fg``)."""
    token = base64.urlsafe_b64encode(rng.randbytes(36)).decode()
    return f"2_MX40NjMzOTg5Mn5-{token}-fg"


def meeting(
    rng: random.Random,
    *,
    session_id: str,
    t0: int,
    duration_ms: int,
    participants: int,
    recording: bool,
    ended: bool = True,
    time_scale: float = 1.0,
) -> Timeline:
    """``(send time, body)`` of one meeting starting at epoch ms ``t0``; unsorted.

    ``duration_ms`` and every delay are meeting time; ``time_scale`` compresses them (a 40-minute
    meeting at 600 takes 4 s), and body timestamps are compressed alike so they keep agreeing
    with the receive times the pipeline gives join and left callbacks, which carry no time of
    their own. The random draws do not depend on ``time_scale``: one seed, one meeting, any pace.

    ``ended=False`` cuts the meeting at ``t0 + duration_ms`` (still active): callbacks due later
    are left out, so participants not yet gone stay present and a recording may still run.
    """

    def at(offset_ms: int) -> int:
        return t0 + round(offset_ms / time_scale)

    room_id = str(uuid.UUID(int=rng.getrandbits(128)))
    out: Timeline = [
        (
            at(rng.randint(50, 400)),
            {
                "event": "session:started",
                "session_id": session_id,
                "room_id": room_id,
                "started_at": format_epoch_ms(t0),
            },
        )
    ]
    for number in range(participants):
        person: Body = {
            "participant_id": str(uuid.UUID(int=rng.getrandbits(128))),
            "session_id": session_id,
            "room_id": room_id,
            "name": rng.choice(NAMES),
            "type": "Host" if number == 0 else "Guest",
            "is_host": number == 0,
        }
        joined = rng.randint(1_000, max(duration_ms // 2, 2_000))
        out.append((at(joined), {"event": "session:participant:joined", **person}))
        if rng.random() < 0.8:  # the others are sent away by session:ended
            left = joined + rng.randint(1_000, max(duration_ms - joined - 1_000, 2_000))
            out.append((at(left), {"event": "session:participant:left", **person}))
    if recording:
        out += _recording(rng, session_id=session_id, duration_ms=duration_ms, at=at)
    ending: Body = {"session_id": session_id, "room_id": room_id}
    times: Body = {"started_at": format_epoch_ms(t0), "ended_at": format_epoch_ms(at(duration_ms))}
    out.append(
        (at(duration_ms + rng.randint(50, 400)), {"event": "session:ended", **ending, **times})
    )
    if rng.random() < 0.4:
        expires = duration_ms + 2 * MINUTE_MS
        expiry: Body = {
            "event": "room:expired",
            "room_id": room_id,
            "room_type": "instant",
            "expires_at": format_epoch_ms(at(expires)),
            "created_at": format_epoch_ms(at(-MINUTE_MS)),
        }
        out.append((at(expires + rng.randint(0, 2_000)), expiry))
    if not ended:
        out = [(sent, body) for sent, body in out if sent < at(duration_ms)]
    return out


def _recording(rng: random.Random, *, session_id: str, duration_ms: int, at: _Clock) -> Timeline:
    recording_id = str(uuid.UUID(int=rng.getrandbits(128)))
    started = rng.randint(5_000, max(duration_ms // 3, 10_000))
    stopped = started + rng.randint(30_000, max(duration_ms - started - 10_000, 60_000))
    times: Body = {
        "recording_id": recording_id,
        "session_id": session_id,
        "started_at": format_epoch_ms(at(started)),
        "ended_at": format_epoch_ms(at(stopped)),
        "duration": round((at(stopped) - at(started)) / 1000),
    }
    # recording:started carries only the ids: its time is when ingest receives it.
    started_body: Body = {"recording_id": recording_id, "session_id": session_id}
    ready: Body = {**times, "url": f"https://example.invalid/{recording_id}.mp4"}
    return [
        (at(started + 300), {"event": "recording:started", **started_body}),
        (at(stopped + 500), {"event": "recording:ended", **times}),
        (at(stopped + rng.randint(20_000, 90_000)), {"event": "recording:uploaded", **ready}),
    ]
