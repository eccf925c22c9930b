"""Property: a Video session's final summary and attendance do not depend on the order its
callbacks arrive in, nor on retried copies, as long as each connection's own callbacks keep
their order (SPEC §7 "Time and order")."""

from __future__ import annotations

import random
from typing import Any

import msgspec
from hypothesis import given, settings
from hypothesis import strategies as st

from processor.engine import settle
from processor.sources import ParticipantKey
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
