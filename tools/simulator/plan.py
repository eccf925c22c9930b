"""What a simulation sends, and when: a pure function of the scenario (no clock, no I/O).

Meetings come from ``tools.simulator.meetings``. On top of their timeline the plan adds what
Vonage's delivery does to it: exact re-sends (retries) and callbacks that arrive after later
ones. Finally it paces the sends to the target rate. The same scenario always yields the same
deliveries, byte for byte and in the same order, which is what makes a run repeatable.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, replace

import orjson

from tools.simulator.meetings import MINUTE_MS, Body, Timeline, meeting, session_id_of

ROUTES = {
    "room": "/callbacks/rooms",
    "recording": "/callbacks/recordings",
}
SESSIONS_ROUTE = "/callbacks/sessions"
"""Vonage lets an application configure three callback URLs; this is the one for sessions and
participants (``ROUTES`` has the others)."""

STAGGER_MS = 10 * MINUTE_MS
"""Meetings start within this window, so most of them overlap."""
_MAX_REORDER_DISTANCE = 10
"""A delayed callback lands after up to this many later ones."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Scenario:
    sessions: int
    seed: int
    start_ms: int
    """Epoch ms at which the first meeting starts (the run's start, normally)."""
    rate: float
    """Most callbacks sent per second."""
    time_scale: float | None = None
    """Meeting time per unit of wall time; ``None`` chooses the one that averages ``rate``."""
    duplicate_rate: float = 0.0
    reorder_rate: float = 0.0


@dataclass(frozen=True, slots=True)
class Delivery:
    send_at_s: float
    """Seconds after the run's start."""
    body: bytes
    route: str
    event: str
    duplicate: bool = False
    """An exact re-send of an earlier delivery, as Vonage's retries produce."""
    delayed: bool = False
    """Sent after callbacks that follow it in the meetings' own timeline."""


@dataclass(frozen=True, slots=True)
class Plan:
    scenario: Scenario
    time_scale: float
    deliveries: tuple[Delivery, ...]
    meeting_span_ms: int
    """From the first meeting's start to its last callback, in meeting time."""

    @property
    def duplicates(self) -> int:
        return sum(delivery.duplicate for delivery in self.deliveries)

    @property
    def delayed(self) -> int:
        return sum(delivery.delayed for delivery in self.deliveries)

    @property
    def duration_s(self) -> float:
        return self.deliveries[-1].send_at_s if self.deliveries else 0.0


@dataclass(frozen=True, slots=True)
class _Meeting:
    """One meeting's random draws; expanding it is deterministic given ``seed``."""

    offset_ms: int
    duration_ms: int
    participants: int
    recording: bool
    seed: int

    def timeline(self, session_id: str, start_ms: int, time_scale: float) -> Timeline:
        return meeting(
            random.Random(self.seed),
            session_id=session_id,
            t0=start_ms + round(self.offset_ms / time_scale),
            duration_ms=self.duration_ms,
            participants=self.participants,
            recording=self.recording,
            time_scale=time_scale,
        )


def build_plan(scenario: Scenario) -> Plan:
    rng = random.Random(scenario.seed)
    meetings = [(session_id_of(rng), _draw_meeting(rng)) for _ in range(scenario.sessions)]
    # The earliest meeting starts the run: no idle lead-in before the first callback.
    first = min((drawn.offset_ms for _, drawn in meetings), default=0)
    meetings = [
        (session_id, replace(drawn, offset_ms=drawn.offset_ms - first))
        for session_id, drawn in meetings
    ]
    # Delivery faults have their own generator, so changing their rates keeps the meetings.
    faults = random.Random(f"{scenario.seed}:delivery")

    def timeline(time_scale: float) -> Timeline:
        out: Timeline = []
        for session_id, drawn in meetings:
            out += drawn.timeline(session_id, scenario.start_ms, time_scale)
        out.sort(key=lambda pair: pair[0])  # stable: ties keep the generation order
        return out

    unscaled = timeline(1.0)
    span_ms = unscaled[-1][0] - scenario.start_ms if unscaled else 0
    time_scale = scenario.time_scale or _fitting_scale(scenario, span_ms, len(unscaled))
    scheduled = _with_duplicates(timeline(time_scale), faults, scenario, time_scale)
    deliveries = _with_reordering(scheduled, faults, scenario.reorder_rate)
    return Plan(
        scenario=scenario,
        time_scale=time_scale,
        deliveries=_paced(deliveries, scenario.rate),
        meeting_span_ms=span_ms,
    )


def _draw_meeting(rng: random.Random) -> _Meeting:
    return _Meeting(
        offset_ms=rng.randint(0, STAGGER_MS),
        duration_ms=rng.randint(5, 40) * MINUTE_MS,
        participants=rng.randint(2, 12),
        recording=rng.random() < 0.3,
        seed=rng.getrandbits(64),
    )


def _fitting_scale(scenario: Scenario, span_ms: int, originals: int) -> float:
    """The time scale at which the meetings' own callbacks average ``scenario.rate``.

    Re-sends are left out so that changing the fault rates keeps every body identical; pacing
    absorbs the extra sends.
    """
    if span_ms <= 0 or originals == 0:
        return 1.0
    return max(span_ms / 1000 / (originals / scenario.rate), 1.0)


def _with_duplicates(
    timeline: Timeline, rng: random.Random, scenario: Scenario, time_scale: float
) -> list[tuple[int, Delivery]]:
    """Each callback, and for a ``duplicate_rate`` share of them an identical re-send 1-30 s
    (meeting time) later, as Vonage retries a callback whose answer it did not get in time."""
    out: list[tuple[int, Delivery]] = []
    for sent_ms, body in timeline:
        delivery = _delivery(body, sent_ms - scenario.start_ms)
        out.append((sent_ms, delivery))
        if rng.random() < scenario.duplicate_rate:
            retry_ms = sent_ms + round(rng.randint(1_000, 30_000) / time_scale)
            send_at_s = max(retry_ms - scenario.start_ms, 0) / 1000
            out.append((retry_ms, replace(delivery, send_at_s=send_at_s, duplicate=True)))
    out.sort(key=lambda pair: pair[0])
    return out


def _with_reordering(
    scheduled: list[tuple[int, Delivery]], rng: random.Random, reorder_rate: float
) -> list[Delivery]:
    """A ``reorder_rate`` share of the deliveries held back until after 1-10 later ones."""
    positions: list[tuple[float, int, Delivery]] = []
    last = len(scheduled) - 1
    for index, (_, delivery) in enumerate(scheduled):
        position = float(index)
        if rng.random() < reorder_rate and index < last:
            target = min(index + rng.randint(1, _MAX_REORDER_DISTANCE), last)
            position = target + 0.5
            delivery = replace(delivery, send_at_s=scheduled[target][1].send_at_s)
        positions.append((position, index, delivery))
    positions.sort(key=lambda entry: entry[0])
    # Flagged from the outcome: one held back behind another held back may overtake nothing.
    out: list[Delivery] = []
    latest = -1
    for _, index, delivery in positions:
        out.append(replace(delivery, delayed=index < latest))
        latest = max(latest, index)
    return out


def _paced(deliveries: list[Delivery], rate: float) -> tuple[Delivery, ...]:
    """No two sends closer than ``1 / rate``: bursts in the meetings' timeline are spread."""
    gap = 1 / rate
    out: list[Delivery] = []
    previous = float("-inf")
    for delivery in deliveries:
        send_at = max(delivery.send_at_s, previous + gap)
        out.append(replace(delivery, send_at_s=send_at))
        previous = send_at
    return tuple(out)


def _delivery(body: Body, offset_ms: int) -> Delivery:
    event = str(body["event"])
    return Delivery(
        send_at_s=max(offset_ms, 0) / 1000,
        body=orjson.dumps(body),
        route=ROUTES.get(event.split(":", 1)[0], SESSIONS_ROUTE),
        event=event,
    )
