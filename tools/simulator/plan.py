"""What a simulation sends, and when: a pure function of the scenario (no clock, no I/O).

Sessions come from ``tools.simulator.meetings`` (Vonage Meetings) or ``tools.simulator.video``
(Vonage Video API). On top of their timeline the plan adds what Vonage's delivery does to it:
exact re-sends (retries) and callbacks that arrive after later ones, neither ever carrying a
Video connection's callback past a later one of the same connection (contract §7.4 relies on
that order). Finally it paces the sends to the target rate. The same scenario always yields the same
deliveries, byte for byte and in the same order, which is what makes a run repeatable.
"""

from __future__ import annotations

import functools
import random
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Literal, Protocol

import orjson

from tools.simulator import video
from tools.simulator.meetings import MINUTE_MS, Body, Timeline, draw_meeting, session_id_of
from tools.simulator.video_writer import VideoTenant, tenant_of

Source = Literal["meetings", "video"]
SOURCES: tuple[Source, ...] = ("meetings", "video")

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
    source: Source = "meetings"
    upload_before_stop_rate: float = 0.0
    """Video: the share of sessions (each use of one) whose ``uploaded`` archive is sent before
    its ``stopped``."""


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
    order_key: str | None = None
    """Deliveries with the same key (a Video connection's callbacks) are sent in timeline
    order, re-sends included; ``None``: any order."""


@dataclass(frozen=True, slots=True)
class Plan:
    scenario: Scenario
    time_scale: float
    deliveries: tuple[Delivery, ...]
    meeting_span_ms: int
    """From the first meeting's start to its last callback, in meeting time."""
    tenant: VideoTenant | None = None
    """The project Video callbacks come from; ``None`` for Meetings."""

    @property
    def duplicates(self) -> int:
        return sum(delivery.duplicate for delivery in self.deliveries)

    @property
    def delayed(self) -> int:
        return sum(delivery.delayed for delivery in self.deliveries)

    @property
    def duration_s(self) -> float:
        return self.deliveries[-1].send_at_s if self.deliveries else 0.0


class SessionDraw(Protocol):
    """One session's random draws, expanded deterministically into its callbacks."""

    def timeline(self, session_id: str, t0: int, time_scale: float) -> Timeline: ...


@dataclass(frozen=True, slots=True)
class _SourceKind:
    """What a source contributes to a plan."""

    session_id: Callable[[random.Random], str]
    draw: Callable[[random.Random], SessionDraw]
    route: Callable[[Body], str]
    order_key: Callable[[Body], str | None]


def build_plan(scenario: Scenario) -> Plan:
    rng = random.Random(scenario.seed)
    kind, tenant = _source_kind(scenario, rng)
    sessions: list[tuple[str, int, SessionDraw]] = []
    for _ in range(scenario.sessions):
        session_id = kind.session_id(rng)
        offset_ms = rng.randint(0, STAGGER_MS)
        sessions.append((session_id, offset_ms, kind.draw(rng)))
    # The earliest session starts the run: no idle lead-in before the first callback.
    first = min((offset_ms for _, offset_ms, _ in sessions), default=0)
    # Delivery faults have their own generator, so changing their rates keeps the meetings.
    faults = random.Random(f"{scenario.seed}:delivery")

    def timeline(time_scale: float) -> Timeline:
        out: Timeline = []
        for session_id, offset_ms, drawn in sessions:
            t0 = scenario.start_ms + round((offset_ms - first) / time_scale)
            out += drawn.timeline(session_id, t0, time_scale)
        out.sort(key=lambda pair: pair[0])  # stable: ties keep the generation order
        return out

    unscaled = timeline(1.0)
    span_ms = unscaled[-1][0] - scenario.start_ms if unscaled else 0
    time_scale = scenario.time_scale or _fitting_scale(scenario, span_ms, len(unscaled))
    scheduled = _with_duplicates(timeline(time_scale), faults, scenario, time_scale, kind)
    deliveries = _with_reordering(scheduled, faults, scenario.reorder_rate)
    return Plan(
        scenario=scenario,
        time_scale=time_scale,
        deliveries=_paced(deliveries, scenario.rate),
        meeting_span_ms=span_ms,
        tenant=tenant,
    )


def _source_kind(scenario: Scenario, rng: random.Random) -> tuple[_SourceKind, VideoTenant | None]:
    if scenario.source == "meetings":
        return _SourceKind(session_id_of, draw_meeting, _meetings_route, lambda _: None), None
    tenant = tenant_of(rng)
    session_id = functools.partial(video.video_session_id_of, tenant=tenant)
    draw = functools.partial(
        video.draw_video_session,
        tenant=tenant,
        upload_before_stop_rate=scenario.upload_before_stop_rate,
    )
    return _SourceKind(session_id, draw, video.route_of, video.order_key), tenant


def _meetings_route(body: Body) -> str:
    return ROUTES.get(str(body["event"]).split(":", 1)[0], SESSIONS_ROUTE)


def _fitting_scale(scenario: Scenario, span_ms: int, originals: int) -> float:
    """The time scale at which the meetings' own callbacks average ``scenario.rate``.

    Re-sends are left out so that changing the fault rates keeps every body identical; pacing
    absorbs the extra sends.
    """
    if span_ms <= 0 or originals == 0:
        return 1.0
    return max(span_ms / 1000 / (originals / scenario.rate), 1.0)


def _with_duplicates(
    timeline: Timeline,
    rng: random.Random,
    scenario: Scenario,
    time_scale: float,
    kind: _SourceKind,
) -> list[tuple[int, Delivery]]:
    """Each callback, and for a ``duplicate_rate`` share of them an identical re-send 1-30 s
    (meeting time) later, as Vonage retries a callback whose answer it did not get in time;
    never after the next callback of the same order key."""
    keys = [kind.order_key(body) for _, body in timeline]
    bounds = _next_of_same_key([sent_ms for sent_ms, _ in timeline], keys)
    out: list[tuple[int, Delivery]] = []
    for (sent_ms, body), key, bound in zip(timeline, keys, bounds, strict=True):
        delivery = _delivery(body, sent_ms - scenario.start_ms, kind.route(body), key)
        out.append((sent_ms, delivery))
        if rng.random() < scenario.duplicate_rate:
            retry_ms = sent_ms + round(rng.randint(1_000, 30_000) / time_scale)
            if bound is not None:
                # A tie keeps the re-send first: the sort below is stable.
                retry_ms = min(retry_ms, bound)
            send_at_s = max(retry_ms - scenario.start_ms, 0) / 1000
            out.append((retry_ms, replace(delivery, send_at_s=send_at_s, duplicate=True)))
    out.sort(key=lambda pair: pair[0])
    return out


def _with_reordering(
    scheduled: list[tuple[int, Delivery]], rng: random.Random, reorder_rate: float
) -> list[Delivery]:
    """A ``reorder_rate`` share of the deliveries held back until after 1-10 later ones, but
    never past the next delivery of the same order key."""
    positions: list[tuple[float, int, Delivery]] = []
    last = len(scheduled) - 1
    limits = _next_of_same_key(
        list(range(len(scheduled))), [delivery.order_key for _, delivery in scheduled]
    )
    for index, (_, delivery) in enumerate(scheduled):
        position = float(index)
        if rng.random() < reorder_rate and index < last:
            target = min(index + rng.randint(1, _MAX_REORDER_DISTANCE), last)
            if (limit := limits[index]) is not None:
                target = min(target, limit - 1)
            if target > index:
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


def _next_of_same_key(values: list[int], keys: list[str | None]) -> list[int | None]:
    """For each entry, the value of the next entry with the same key (``None``: no key, or
    the last of its key)."""
    out: list[int | None] = [None] * len(values)
    following: dict[str, int] = {}
    for index in reversed(range(len(values))):
        key = keys[index]
        if key is not None:
            out[index] = following.get(key)
            following[key] = values[index]
    return out


def _delivery(body: Body, offset_ms: int, route: str, order_key: str | None) -> Delivery:
    return Delivery(
        send_at_s=max(offset_ms, 0) / 1000,
        body=orjson.dumps(body),
        route=route,
        event=str(body["event"]),
        order_key=order_key,
    )
