"""The processor against a real broker: a scripted meeting yields exactly the expected
records on every topic; duplicates and shuffles change nothing; poison goes to the DLQ."""

from __future__ import annotations

import random
from collections import Counter
from dataclasses import replace
from typing import Any

import msgspec
import orjson
import pytest

from processor.settings import Guarantee, ProcessorSettings
from schemas import (
    SessionEndedEvent,
    decode_event,
    decode_state,
)
from tests.kafka_helpers import unique_name, wait_until
from tests.processor.runtime.conftest import RawCallback, feed, read_all, running
from tests.processor.runtime.scripted_meeting import recent_ms, scripted_meeting


async def derived(settings: ProcessorSettings, topic: str) -> list[Any]:
    return [decode_event(r.value) for r in await read_all(settings.kafka.bootstrap_servers, topic)]


async def wait_for_summary(settings: ProcessorSettings, session_id: str) -> SessionEndedEvent:
    found: list[SessionEndedEvent] = []

    async def ended() -> bool:
        events = await derived(settings, settings.topics.sessions)
        found[:] = [
            e for e in events if isinstance(e, SessionEndedEvent) and e.session_id == session_id
        ]
        return bool(found)

    await wait_until(ended, what=f"session.ended of {session_id}", within=60)
    return found[-1]


@pytest.mark.parametrize("guarantee", list(Guarantee))
async def test_a_scripted_meeting_yields_exactly_the_expected_records(
    settings: ProcessorSettings, guarantee: Guarantee
) -> None:
    settings = replace(settings, guarantee=guarantee)
    session_id, room_id = unique_name("2_MX40-session"), unique_name("room")
    await feed(settings, scripted_meeting(session_id, room_id))
    async with running(settings):
        await wait_for_summary(settings, session_id)

        async def room_expired() -> bool:
            return bool(await read_all(settings.kafka.bootstrap_servers, settings.topics.rooms))

        await wait_until(room_expired, what="room.expired")

    sessions = await derived(settings, settings.topics.sessions)
    assert [type(e).__name__ for e in sessions] == ["SessionStartedEvent", "SessionEndedEvent"]
    summary = sessions[-1].summary
    assert summary.duration_s == 100.0
    assert (summary.unique_participants, summary.total_joins, summary.peak_concurrency) == (3, 3, 3)
    # Ada 99 s, Alan 60 s, Grace 97 s of the 100 s session.
    assert summary.participant_seconds == 99 + 60 + 97
    assert (summary.recordings, summary.recorded_seconds) == (1, 60.0)
    assert (summary.ended_by, summary.revision) == ("callback", 1)

    participants = await derived(settings, settings.topics.participants)
    kinds = Counter(type(e).__name__ for e in participants)
    assert kinds == {
        "ParticipantJoinedEvent": 3,
        "ParticipantLeftEvent": 3,
        "ParticipantAttendanceEvent": 3,
    }
    reasons = sorted(
        (e.name, e.left_reason, e.duration_s)
        for e in participants
        if type(e).__name__ == "ParticipantLeftEvent"
    )
    assert reasons == [
        ("Ada", "session_ended", 99.0),
        ("Alan", "left", 60.0),
        ("Grace", "session_ended", 97.0),
    ]

    recordings = await derived(settings, settings.topics.recordings)
    assert [type(e).__name__ for e in recordings] == [
        "RecordingStartedEvent",
        "RecordingEndedEvent",
        "RecordingReadyEvent",
    ]
    assert recordings[-1].url == "https://example.invalid/rec.mp4"
    rooms = await derived(settings, settings.topics.rooms)
    assert [(type(e).__name__, e.room_id) for e in rooms] == [("RoomExpiredEvent", room_id)]

    states = await read_all(settings.kafka.bootstrap_servers, settings.topics.session_state)
    assert {r.key for r in states} == {session_id.encode()}
    final = decode_state(states[-1].value)
    assert (final.status, final.active_count, final.recording_active) == ("ended", 0, False)
    # Snapshots are coalesced per commit, never one per callback.
    assert len(states) < 9
    # Everything keyed by session id sits on one partition, the state on the same one.
    raw_partition = {r.partition for r in states}
    assert len(raw_partition) == 1
    assert await read_all(settings.kafka.bootstrap_servers, settings.topics.dlq) == []


def shuffled_keeping_each_participant_in_order(records: list[RawCallback]) -> list[RawCallback]:
    """Any order in which no participant's join passes its own later left (contract §5)."""

    def participant(record: RawCallback) -> str | None:
        body = orjson.loads(record.body)
        return body.get("participant_id") if "participant" in body["event"] else None

    shuffled = records[:]
    random.Random(7).shuffle(shuffled)
    own = {p: [r for r in records if participant(r) == p] for p in map(participant, records)}
    return [r if participant(r) is None else own[participant(r)].pop(0) for r in shuffled]


async def test_duplicated_and_shuffled_delivery_gives_the_same_summary_and_no_duplicates(
    settings: ProcessorSettings,
) -> None:
    in_order, scrambled = unique_name("2_MX40-a"), unique_name("2_MX40-b")
    room = unique_name("room")
    t0 = recent_ms()  # the same clock for both, so their summaries can be compared
    baseline = scripted_meeting(in_order, room, t0=t0)[:-1]
    reordered = shuffled_keeping_each_participant_in_order(
        scripted_meeting(scrambled, room, t0=t0)[:-1]
    )
    retried = [copy for record in reordered for copy in (record, record)]  # Vonage's retries
    await feed(settings, baseline + retried)
    async with running(settings):
        expected = await wait_for_summary(settings, in_order)
        await wait_for_summary(settings, scrambled)

        seen: list[Any] = []

        async def converged() -> bool:
            events = await derived(settings, settings.topics.sessions)
            seen[:] = [e.summary for e in events if type(e).__name__ == "SessionEndedEvent"
                       and e.session_id == scrambled]  # fmt: skip
            return bool(
                msgspec.structs.replace(seen[-1], revision=0)
                == msgspec.structs.replace(expected.summary, revision=0)
            )

        try:
            await wait_until(converged, what="the shuffled session's final summary")
        except AssertionError as exc:
            raise AssertionError(f"{exc}: expected {expected.summary}, got {seen}") from None

    topics = settings.topics
    for topic in (topics.sessions, topics.participants, topics.recordings):
        ids = [e.event_id for e in await derived(settings, topic)]
        assert len(ids) == len(set(ids)), f"duplicate derived events on {topic}"


async def test_poison_records_go_to_the_dlq_and_the_stream_goes_on(
    settings: ProcessorSettings,
) -> None:
    session_id = unique_name("2_MX40-poison")
    good = scripted_meeting(session_id, unique_name("room"))
    at = good[0].received_at_ms
    poison = [
        RawCallback(b"{not json", session_id.encode(), at),
        RawCallback(b"[1, 2, 3]", session_id.encode(), at),
        RawCallback(b'{"event": "session:paused", "session_id": "x"}', b"x", at),
        RawCallback(b'{"event": "session:started", "session_id": 5}', b"5", at),
    ]
    await feed(settings, [good[0], *poison, *good[1:-1]])
    async with running(settings):
        await wait_for_summary(settings, session_id)

        async def all_dead_lettered() -> bool:
            dlq = await read_all(settings.kafka.bootstrap_servers, settings.topics.dlq)
            return len(dlq) >= 4

        await wait_until(all_dead_lettered, what="four DLQ records")

    dlq = await read_all(settings.kafka.bootstrap_servers, settings.topics.dlq)
    by_value = {r.value: dict(r.headers) for r in dlq}
    expected = {
        b"{not json": b"invalid_json",
        b"[1, 2, 3]": b"not_an_object",
        b'{"event": "session:paused", "session_id": "x"}': b"unknown_event",
        b'{"event": "session:started", "session_id": 5}': b"invalid_callback",
    }
    assert {value: headers["dlq-reason"] for value, headers in by_value.items()} == expected
    for headers in by_value.values():
        assert headers["source-topic"] == settings.topics.raw.encode()
        assert int(headers["source-offset"]) >= 0
        assert headers["source-partition"].isdigit()
        assert headers["dlq-error"]
        assert headers["received-at"]  # the raw record's own headers are kept
