"""Property: a Video session's final summary and attendance do not depend on the order its
callbacks arrive in, nor on retried copies, as long as each connection's own callbacks keep
their order (contract §7 "Time and order")."""

from __future__ import annotations

import random
from typing import Any

import msgspec
from hypothesis import given, settings
from hypothesis import strategies as st

from processor.engine import settle
from processor.sources import ParticipantKey
from schemas.events import ParticipantAttendanceEvent, SessionEndedEvent
from tests.processor.video_builders import (
    Delivery,
    VideoPlayer,
    archive,
    connected,
    disconnected,
    person,
    session_created,
    session_destroyed,
    stream_created,
    stream_destroyed,
)

END = 10_000_000
"""The session ends after every connection (``sessionDestroyed``)."""


@st.composite
def connection_timelines(draw: st.DrawFn) -> list[list[Delivery]]:
    """Per connection, its callbacks in their own order: created, streams, destroyed."""
    timelines: list[list[Delivery]] = []
    people = draw(st.integers(1, 4))
    for number in range(people):
        data = person(f"u-{number}")
        for index in range(draw(st.integers(1, 3))):
            connection_id = f"c-{number}-{index}"
            opened = draw(st.integers(0, 5_000_000))
            closed = opened + draw(st.integers(0, 3_000_000))
            timeline = [connected(opened, connection_id, data)]
            for stream in range(draw(st.integers(0, 2))):
                video_type = draw(st.sampled_from(["camera", "screen", None]))
                start = draw(st.integers(opened, closed))
                end = draw(st.integers(start, closed))
                stream_id = f"s-{connection_id}-{stream}"
                timeline.append(stream_created(start, stream_id, connection_id, video_type))
                if draw(st.booleans()):  # else the connection's end ends it
                    timeline.append(
                        stream_destroyed(end, stream_id, connection_id, video_type, created=start)
                    )
            if draw(st.booleans()):
                reason = draw(st.sampled_from(["clientDisconnected", "networkDisconnected"]))
                timeline.append(disconnected(closed, connection_id, reason))
            timelines.append(timeline)
    return timelines


def interleaved(timelines: list[list[Delivery]], rng: random.Random) -> list[Delivery]:
    """A random merge that keeps each timeline's order."""
    queues = [list(timeline) for timeline in timelines if timeline]
    merged: list[Delivery] = []
    while queues:
        queue = rng.choice(queues)
        merged.append(queue.pop(0))
        if not queue:
            queues.remove(queue)
    return merged


def with_retries(deliveries: list[Delivery], rng: random.Random, count: int) -> list[Delivery]:
    """Exact copies of some callbacks, each somewhere after its original."""
    result = list(deliveries)
    for _ in range(count):
        original = rng.randrange(len(result))
        result.insert(rng.randint(original + 1, len(result)), result[original])
    return result


def outcome(deliveries: list[Delivery]) -> tuple[Any, Any]:
    player = VideoPlayer(ParticipantKey("data.userId")).play(deliveries)
    player.events.extend(settle(player.current).events)
    summary = msgspec.structs.replace(player.final_summary().summary, revision=0)
    attendance = {
        participant_id: msgspec.structs.replace(report, revision=0, event_id="")
        for participant_id, report in player.final_attendance().items()
    }
    return summary, attendance


@settings(max_examples=150, deadline=None)
@given(timelines=connection_timelines(), seed=st.integers(0, 2**32), retries=st.integers(0, 6))
def test_the_final_summary_and_attendance_do_not_depend_on_order_or_retries(
    timelines: list[list[Delivery]], seed: int, retries: int
) -> None:
    rng = random.Random(seed)
    fixed = [
        session_created(0),
        archive(100, "a1", "started"),
        archive(200, "a1", "paused"),
        archive(300, "a1", "started"),
        archive(400, "a1", "stopped", duration=4),
        archive(500, "a1", "uploaded", duration=4, size=10),
        session_destroyed(END),
    ]
    in_order = [*fixed[:-1], *(d for timeline in timelines for d in timeline), fixed[-1]]
    shuffled = interleaved([*timelines, *([d] for d in fixed)], rng)
    shuffled = with_retries(shuffled, rng, retries)
    assert outcome(shuffled) == outcome(in_order)


def outcomes_by_instance(deliveries: list[Delivery]) -> dict[int, tuple[Any, Any]]:
    player = VideoPlayer(ParticipantKey("data.userId")).play(deliveries)
    player.events.extend(settle(player.current).events)
    summaries: dict[int, Any] = {}
    for event in player.events:
        if isinstance(event, SessionEndedEvent):
            summaries[event.instance] = event.summary
    result: dict[int, tuple[Any, Any]] = {}
    for instance, summary in summaries.items():
        reports = {
            event.participant_id: msgspec.structs.replace(event, revision=0, event_id="")
            for event in player.events
            if isinstance(event, ParticipantAttendanceEvent)
            and event.instance == instance
            and event.revision == summary.revision
        }
        result[instance] = (msgspec.structs.replace(summary, revision=0), reports)
    return result


def shifted(timelines: list[list[Delivery]], offset_ms: int) -> list[list[Delivery]]:
    """The same callbacks, ``offset_ms`` later (and under other connection and stream ids)."""
    return [
        [
            (
                _shift_body(body, offset_ms),
                route,
            )
            for body, route in timeline
        ]
        for timeline in timelines
    ]


def _shift_body(body: bytes, offset_ms: int) -> bytes:
    value = msgspec.json.decode(body)
    value["timestamp"] += offset_ms
    for part in ("connection", "stream"):
        if part in value:
            value[part]["id"] = "2-" + value[part]["id"]
            if part == "stream":
                value[part]["connection"]["id"] = "2-" + value[part]["connection"]["id"]
                value[part]["createdAt"] += offset_ms
    return msgspec.json.encode(value)


@settings(max_examples=100, deadline=None)
@given(
    first=connection_timelines(),
    second=connection_timelines(),
    seed=st.integers(0, 2**32),
    retries=st.integers(0, 4),
)
def test_late_callbacks_revise_their_own_instance_whatever_the_order(
    first: list[list[Delivery]], second: list[list[Delivery]], seed: int, retries: int
) -> None:
    """A session id used twice: callbacks of the first use arriving after the second began
    still revise the first; neither instance's final figures depend on the order (as long as
    the first's end is known before the second begins)."""
    rng = random.Random(seed)
    offset = END + 1_000_000
    second = shifted(second, offset)
    end_first, end_second = session_destroyed(END), session_destroyed(offset + END)
    in_order = [
        *(d for timeline in first for d in timeline),
        end_first,
        session_created(offset),
        *(d for timeline in second for d in timeline),
        end_second,
    ]
    early = interleaved(first, rng)
    cut = rng.randint(0, len(early))
    shuffled = [
        *early[:cut],
        end_first,
        *interleaved([early[cut:], [session_created(offset)], *second, [end_second]], rng),
    ]
    shuffled = [*shuffled[:1], *with_retries(shuffled[1:], rng, retries)] if shuffled else []
    assert outcomes_by_instance(shuffled) == outcomes_by_instance(in_order)
