"""Stints and sessions of any size against a real broker: rejoins, crossed deliveries, replays
from offset 0, and a 50,000-participant session restored after a restart."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import replace
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.structs import TopicPartition

from processor.provisioning import ensure_topics
from processor.runtime import ProcessorService
from processor.settings import ProcessorSettings
from schemas import (
    ParticipantAttendanceEvent,
    ParticipantJoinedEvent,
    ParticipantLeftEvent,
    SessionEndedEvent,
    decode_event,
    decode_state,
)
from schemas.timestamps import format_epoch_ms
from servicekit.kafka import KafkaSettings
from tests.kafka_helpers import ConsumerRecord, unique_name, wait_until
from tests.processor.runtime.conftest import PARTITIONS, RawCallback, feed, read_all, running
from tests.processor.runtime.scripted_meeting import recent_ms

MEGABYTE = 1024 * 1024


def _record(body: dict[str, object], at_ms: int) -> RawCallback:
    key = body["session_id"]
    assert isinstance(key, str)
    return RawCallback(body=orjson.dumps(body), key=key.encode(), received_at_ms=at_ms)


def started(session_id: str, t0: int) -> RawCallback:
    body = {"event": "session:started", "session_id": session_id, "room_id": "room"}
    return _record({**body, "started_at": _iso(t0)}, t0)


def ended(session_id: str, t0: int, at_ms: int) -> RawCallback:
    body = {"event": "session:ended", "session_id": session_id, "room_id": "room"}
    return _record({**body, "started_at": _iso(t0), "ended_at": _iso(at_ms)}, at_ms)


def person(session_id: str, participant_id: str, event: str, at_ms: int) -> RawCallback:
    body = {
        "event": f"session:participant:{event}",
        "participant_id": participant_id,
        "session_id": session_id,
        "room_id": "room",
        "name": participant_id.title(),
        "is_host": False,
    }
    return _record(body, at_ms)


def _iso(epoch_ms: int) -> str:
    return format_epoch_ms(epoch_ms)


async def events_of(settings: ProcessorSettings, topic: str) -> list[Any]:
    return [decode_event(r.value) for r in await read_all(settings.kafka.bootstrap_servers, topic)]


async def final_summary(settings: ProcessorSettings, session_id: str) -> SessionEndedEvent:
    found: list[SessionEndedEvent] = []

    async def summarised() -> bool:
        found[:] = [
            e
            for e in await events_of(settings, settings.topics.sessions)
            if isinstance(e, SessionEndedEvent) and e.session_id == session_id
        ]
        return bool(found)

    await wait_until(summarised, what=f"session.ended of {session_id}", within=60)
    return found[-1]


async def test_a_rejoining_participant_has_two_stints_in_every_output(
    settings: ProcessorSettings,
) -> None:
    session_id, t0 = unique_name("2_MX40-rejoin"), recent_ms()
    await feed(
        settings,
        [
            started(session_id, t0),
            person(session_id, "ada", "joined", t0 + 1_000),
            person(session_id, "ada", "left", t0 + 11_000),
            person(session_id, "ada", "joined", t0 + 21_000),
            person(session_id, "ada", "joined", t0 + 21_500),  # a retry while present
            person(session_id, "ada", "left", t0 + 41_000),
            ended(session_id, t0, t0 + 60_000),
        ],
    )
    async with running(settings):
        summary = (await final_summary(settings, session_id)).summary

    assert (summary.unique_participants, summary.total_joins) == (1, 2)
    assert summary.participant_seconds == 10 + 20
    events = await events_of(settings, settings.topics.participants)
    assert [(type(e).__name__, e.stint) for e in events if not _is_report(e)] == [
        ("ParticipantJoinedEvent", 1),
        ("ParticipantLeftEvent", 1),
        ("ParticipantJoinedEvent", 2),
        ("ParticipantLeftEvent", 2),
    ]
    [report] = [e for e in events if _is_report(e)]
    assert (report.stints, report.attended_s, report.revision) == (2, 30.0, 1)


def _is_report(event: object) -> bool:
    return isinstance(event, ParticipantAttendanceEvent)


async def test_a_left_delivered_before_its_join_is_one_empty_stint_and_nobody_stays(
    settings: ProcessorSettings,
) -> None:
    session_id, t0 = unique_name("2_MX40-crossed"), recent_ms()
    await feed(
        settings,
        [
            started(session_id, t0),
            person(session_id, "alan", "left", t0 + 5_000),
            person(session_id, "alan", "joined", t0 + 5_200),
            person(session_id, "grace", "joined", t0 + 6_000),
        ],
    )
    async with running(settings):

        async def both_seen() -> bool:
            states = await read_all(settings.kafka.bootstrap_servers, settings.topics.session_state)
            return bool(states) and decode_state(states[-1].value).unique_participants == 2

        await wait_until(both_seen, what="both participants in the state")
        state = decode_state(
            (await read_all(settings.kafka.bootstrap_servers, settings.topics.session_state))[
                -1
            ].value
        )
        assert [p.participant_id for p in state.active_participants] == ["grace"]
        assert (state.active_count, state.total_joins) == (1, 2)

        await feed(settings, [ended(session_id, t0, t0 + 60_000)])
        summary = (await final_summary(settings, session_id)).summary

    assert (summary.total_joins, summary.participant_seconds) == (2, 54.0)
    alan = [
        e
        for e in await events_of(settings, settings.topics.participants)
        if e.participant_id == "alan"
    ]
    assert [type(e) for e in alan] == [
        ParticipantJoinedEvent,
        ParticipantLeftEvent,
        ParticipantAttendanceEvent,
    ]
    left_event, report = alan[1], alan[2]
    assert isinstance(left_event, ParticipantLeftEvent)
    assert (left_event.left_reason, left_event.duration_s) == ("left", 0.0)
    assert (report.stints, report.attended_s) == (1, 0.0)


async def _copy_raw(source: ProcessorSettings, target: ProcessorSettings) -> None:
    """The raw topic's records, partition by partition and in order, into another raw topic."""
    records = await read_all(source.kafka.bootstrap_servers, source.topics.raw)
    producer = AIOKafkaProducer(
        bootstrap_servers=target.kafka.bootstrap_servers, enable_idempotence=True
    )
    await producer.start()
    try:
        for record in records:
            await producer.send(
                target.topics.raw,
                value=record.value,
                key=record.key,
                partition=record.partition,
                timestamp_ms=record.timestamp,
                headers=list(record.headers),
            )
        await producer.flush()
    finally:
        await producer.stop()


async def test_replaying_the_raw_topic_from_offset_0_yields_byte_identical_events(
    settings: ProcessorSettings,
) -> None:
    t0 = recent_ms()
    callbacks = []
    for number in range(8):
        session_id = unique_name(f"2_MX40-replay{number}")
        callbacks += [
            started(session_id, t0),
            person(session_id, "ada", "left", t0 + 900),  # crossed
            person(session_id, "ada", "joined", t0 + 1_000),
            person(session_id, "alan", "joined", t0 + 1_000),
            person(session_id, "alan", "left", t0 + 9_000),
            person(session_id, "alan", "joined", t0 + 19_000),  # rejoin
            person(session_id, "grace", "joined", t0 + 20_000),
            ended(session_id, t0, t0 + 50_000),
            person(session_id, "grace", "left", t0 + 40_000),  # late: a revision
            person(session_id, "alan", "joined", t0 + 52_000),  # a retry after the end
        ]
    await feed(settings, callbacks)
    replayed = replace(
        settings,
        kafka=KafkaSettings(
            bootstrap_servers=settings.kafka.bootstrap_servers,
            topic_prefix=unique_name("replay") + ".",
        ),
        group_id=unique_name("replay"),
        create_topics=True,
    )
    await ensure_topics(replayed)
    await _copy_raw(settings, replayed)

    for run in (settings, replayed):
        await _process_all(run, len(callbacks))
    for topic in ("sessions", "participants"):
        first = await _values_by_partition(settings, getattr(settings.topics, topic))
        second = await _values_by_partition(replayed, getattr(replayed.topics, topic))
        assert first == second, topic
    participants = await _values_by_partition(settings, settings.topics.participants)
    assert sum(len(values) for values in participants.values()) == 8 * (
        8 + 3 + 3
    )  # 4 stints begun and ended, 2 revisions
    # How many snapshots a session gets depends on commit timing; its latest one does not.
    assert await _latest_states(settings) == await _latest_states(replayed)


async def _process_all(settings: ProcessorSettings, records: int) -> None:
    async with running(settings) as service:
        await wait_until(
            lambda: service.processed_records >= records,
            what="every callback processed",
            within=60,
        )


async def _latest_states(settings: ProcessorSettings) -> dict[bytes | None, bytes | None]:
    states = await read_all(settings.kafka.bootstrap_servers, settings.topics.session_state)
    return {record.key: record.value for record in states}


async def _values_by_partition(settings: ProcessorSettings, topic: str) -> dict[int, list[bytes]]:
    by_partition: dict[int, list[bytes]] = defaultdict(list)
    for record in await read_all(settings.kafka.bootstrap_servers, topic):
        by_partition[record.partition].append(record.value)
    return dict(by_partition)


WEBINAR = 50_000
STAYING = 10_000


async def test_a_50000_participant_session_survives_a_restart_with_no_record_over_1_mb(
    settings: ProcessorSettings,
) -> None:
    session_id, t0 = unique_name("2_MX40-webinar"), recent_ms(30)
    ids = [f"attendee-{number:05}" for number in range(WEBINAR)]
    joins = [person(session_id, pid, "joined", t0 + 1_000 + n) for n, pid in enumerate(ids)]
    lefts = [
        person(session_id, pid, "left", t0 + 600_000 + n) for n, pid in enumerate(ids[STAYING:])
    ]
    before = [started(session_id, t0), *joins, *lefts]
    await feed(settings, before)
    async with running(settings) as first:
        await wait_until(
            lambda: first.processed_records >= len(before),
            what="the first processor to apply every callback",
            within=240,
        )

    async with running(settings) as second:
        restored = await _restored_session(second, session_id)
        # Checked before the end is fed: once applied, nobody is present any more.
        assert (restored.active_count, len(restored.participants)) == (STAYING, WEBINAR)
        await feed(settings, [ended(session_id, t0, t0 + 1_200_000)])
        summary = (await final_summary(settings, session_id)).summary

    assert (summary.unique_participants, summary.total_joins) == (WEBINAR, WEBINAR)
    assert summary.peak_concurrency == WEBINAR
    stayed_ms = sum(1_200_000 - 1_000 - n for n in range(STAYING))
    # attendee n (n >= STAYING) joined at 1_000 + n and left at 600_000 + (n - STAYING)
    left_ms = (WEBINAR - STAYING) * (600_000 - STAYING - 1_000)
    assert round(summary.participant_seconds * 1000) == stayed_ms + left_ms

    states = await read_all(settings.kafka.bootstrap_servers, settings.topics.session_state)
    mine = [decode_state(r.value) for r in states if r.key == session_id.encode()]
    active = [state for state in mine if state.status == "active"]
    assert active[-1].active_count == STAYING
    assert (len(active[-1].active_participants), active[-1].active_participants_truncated) == (
        settings.state_max_listed_participants,
        True,
    )
    assert mine[-1].status == "ended"
    for topic in (
        settings.topics.session_state,
        settings.topics.changelog,
        settings.topics.sessions,
        settings.topics.participants,
    ):
        largest = await _largest_record(settings, topic)
        assert 0 < largest < MEGABYTE, topic


async def _restored_session(service: ProcessorService, session_id: str) -> Any:
    found: list[Any] = []

    def restored() -> bool:
        for partition in service.assigned_partitions:
            state = service.sessions_of(partition)
            if state is not None and session_id in state.sessions:
                found[:] = [state.sessions[session_id]]
                return True
        return False

    await wait_until(restored, what="the webinar restored", within=120)
    return found[0]


async def _largest_record(settings: ProcessorSettings, topic: str) -> int:
    """The largest key + value on ``topic``, read without keeping the records."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=settings.kafka.bootstrap_servers,
        enable_auto_commit=False,
        isolation_level="read_committed",
        auto_offset_reset="earliest",
        max_partition_fetch_bytes=2 * MEGABYTE,
    )
    await consumer.start()
    try:
        assigned = [TopicPartition(topic, p) for p in range(PARTITIONS)]
        consumer.assign(assigned)
        ends = await consumer.end_offsets(assigned)
        await consumer.seek_to_beginning(*assigned)
        largest = 0
        remaining = {tp for tp in assigned if ends[tp] > 0}
        while remaining:
            batches = await consumer.getmany(*remaining, timeout_ms=500)
            for batch in batches.values():
                for record in batch:
                    largest = max(largest, _size(record))
            for tp in list(remaining):
                if await consumer.position(tp) >= ends[tp]:
                    remaining.discard(tp)
        return largest
    finally:
        await consumer.stop()


def _size(record: ConsumerRecord) -> int:
    return len(record.key or b"") + len(record.value or b"")
