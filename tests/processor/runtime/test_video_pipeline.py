"""A Vonage Video session through the processor and a real broker: the same derived topics as
a Meetings session, with the Video fields, whatever the delivery order and retries."""

from __future__ import annotations

import random
from collections import Counter
from dataclasses import replace
from typing import Any

import pytest

from processor.settings import ProcessorSettings
from schemas import SessionEndedEvent, decode_event, decode_state
from tests.kafka_helpers import wait_until
from tests.processor.runtime.conftest import RawCallback, feed, read_all, running
from tests.processor.runtime.scripted_meeting import recent_ms
from tests.processor.video_builders import (
    SESSION_ID,
    Delivery,
    archive,
    connected,
    disconnected,
    person,
    session_created,
    session_destroyed,
    stream_created,
    stream_destroyed,
)

pytestmark = pytest.mark.kafka


def video_meeting() -> list[Delivery]:
    """Ada joins, loses her network and comes back on a new connection, shares her screen;
    Grace joins from two devices; the meeting is archived (paused once) and uploaded before
    its stop is reported."""
    ada, grace = person("u-ada", "Ada"), person("u-grace", "Grace")
    return [
        session_created(0),
        connected(1_000, "c-ada-1", ada),
        connected(2_000, "c-grace-1", grace),
        connected(3_000, "c-grace-2", grace),
        archive(4_000, "a-1", "started"),
        stream_created(5_000, "s-ada-cam", "c-ada-1", "camera"),
        disconnected(30_000, "c-ada-1", "networkDisconnected"),
        connected(35_000, "c-ada-2", ada),
        stream_created(40_000, "s-ada-screen", "c-ada-2", "screen"),
        archive(45_000, "a-1", "paused"),
        archive(50_000, "a-1", "started"),
        stream_destroyed(70_000, "s-ada-screen", "c-ada-2", "screen", created=40_000),
        disconnected(80_000, "c-grace-2"),
        archive(90_000, "a-1", "uploaded", duration=80, size=4096),
        archive(89_000, "a-1", "stopped", duration=80, reason="user initiated"),
        disconnected(95_000, "c-ada-2"),
        disconnected(96_000, "c-grace-1"),
        session_destroyed(100_000),
    ]


def raw(deliveries: list[Delivery]) -> list[RawCallback]:
    received = recent_ms()
    return [
        RawCallback(body, SESSION_ID.encode(), received + number, route)
        for number, (body, route) in enumerate(deliveries)
    ]


async def derived(settings: ProcessorSettings, topic: str) -> list[Any]:
    return [decode_event(r.value) for r in await read_all(settings.kafka.bootstrap_servers, topic)]


async def final_summary(settings: ProcessorSettings) -> SessionEndedEvent:
    found: list[SessionEndedEvent] = []

    async def ended() -> bool:
        events = await derived(settings, settings.topics.sessions)
        found[:] = [e for e in events if isinstance(e, SessionEndedEvent)]
        return bool(found)

    await wait_until(ended, what="session.ended", within=60)
    return found[-1]


async def test_a_video_session_yields_the_derived_topics(settings: ProcessorSettings) -> None:
    settings = replace(settings, video_participant_key="data.userId")
    await feed(settings, raw(video_meeting()))
    async with running(settings):
        ended = await final_summary(settings)
    summary = ended.summary
    assert (ended.source, ended.tenant_id, ended.instance) == ("video", "123456", 1)
    assert (summary.unique_participants, summary.total_joins, summary.peak_concurrency) == (2, 3, 2)
    # Ada: 1 s to 30 s, then 35 s to 95 s; Grace: 2 s to 96 s (two devices, one person).
    assert summary.participant_seconds == 29 + 60 + 94
    assert (summary.screen_share_s, summary.recordings, summary.recorded_seconds) == (30, 1, 80)
    assert (summary.ended_by, summary.end_reason) == ("callback", "clientDisconnected")

    participants = await derived(settings, settings.topics.participants)
    kinds = Counter(str(type(e).__struct_config__.tag) for e in participants)
    assert kinds == {
        "participant.joined": 3,
        "participant.left": 3,
        "participant.attendance": 2,
        "stream.started": 2,
        "stream.ended": 2,
    }
    recordings = await derived(settings, settings.topics.recordings)
    assert [str(type(e).__struct_config__.tag) for e in recordings] == [
        "recording.started",
        "recording.paused",
        "recording.resumed",
        "recording.ended",
        "recording.ready",
    ]
    states = await read_all(settings.kafka.bootstrap_servers, settings.topics.session_state)
    latest = decode_state(next(r.value for r in reversed(states) if r.value is not None))
    assert (latest.source, latest.status, latest.active_connections) == ("video", "ended", 0)


async def test_shuffled_and_retried_video_callbacks_give_the_same_summary(
    settings: ProcessorSettings,
) -> None:
    settings = replace(settings, video_participant_key="data.userId")
    deliveries = video_meeting()
    rng = random.Random(7)
    # Retries anywhere after their original; each connection's own callbacks keep their
    # order (the archive's and the session's callbacks move freely).
    shuffled = list(deliveries)
    for _ in range(6):
        original = rng.randrange(len(shuffled))
        shuffled.insert(rng.randint(original + 1, len(shuffled)), shuffled[original])
    shuffled.insert(0, shuffled.pop(shuffled.index(deliveries[-1])))  # the end comes first
    await feed(settings, raw(shuffled))
    async with running(settings):

        async def settled() -> bool:
            latest = (await final_summary(settings)).summary
            return latest.participant_seconds == 29 + 60 + 94

        await wait_until(settled, what="the summary revised by the late callbacks", within=60)
    revisions = [
        e.summary.revision
        for e in await derived(settings, settings.topics.sessions)
        if isinstance(e, SessionEndedEvent)
    ]
    assert revisions == list(range(1, len(revisions) + 1))  # the end came first: revised since
    summary = (await final_summary(settings)).summary
    assert (summary.unique_participants, summary.total_joins, summary.peak_concurrency) == (2, 3, 2)
    assert (summary.screen_share_s, summary.recorded_seconds) == (30, 80)
