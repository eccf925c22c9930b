"""Restart, idle expiry, graceful stop and crashes against a real broker."""

from __future__ import annotations

import contextlib
import signal
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiokafka import AIOKafkaProducer

from processor.runtime.committer import transactional_id
from processor.settings import ProcessorSettings
from schemas import SessionEndedEvent, decode_event, decode_state
from tests.kafka_helpers import unique_name, wait_until
from tests.processor.runtime.conftest import PARTITIONS, feed, read_all, running
from tests.processor.runtime.processor_process import ProcessorProcess
from tests.processor.runtime.scripted_meeting import recent_ms, scripted_meeting


async def events_of(settings: ProcessorSettings, topic: str) -> list[Any]:
    return [decode_event(r.value) for r in await read_all(settings.kafka.bootstrap_servers, topic)]


async def summaries(settings: ProcessorSettings) -> dict[str, SessionEndedEvent]:
    """The latest session.ended of every session."""
    latest: dict[str, SessionEndedEvent] = {}
    for event in await events_of(settings, settings.topics.sessions):
        if isinstance(event, SessionEndedEvent) and event.session_id is not None:
            latest[event.session_id] = event
    return latest


async def test_a_restarted_processor_resumes_from_restored_state(
    settings: ProcessorSettings,
) -> None:
    session_id = unique_name("2_MX40-restart")
    meeting = scripted_meeting(session_id, unique_name("room"))[:-1]
    before, after = meeting[:4], meeting[4:]  # started and three joins, then the rest

    await feed(settings, before)
    async with running(settings):

        async def joined_three() -> bool:
            states = await read_all(settings.kafka.bootstrap_servers, settings.topics.session_state)
            return bool(states) and decode_state(states[-1].value).active_count == 3

        await wait_until(joined_three, what="the first processor to commit three joins")

    await feed(settings, after)
    async with running(settings) as second:
        await wait_until(
            lambda: session_id in _sync_keys(second), what="the session restored", within=30
        )

        async def ended() -> bool:
            return session_id in await summaries(settings)

        await wait_until(ended, what="session.ended after the restart")

    summary = (await summaries(settings))[session_id].summary
    # Only possible if the joins seen by the first processor came back from the changelog.
    assert (summary.unique_participants, summary.total_joins, summary.peak_concurrency) == (3, 3, 3)
    assert summary.participant_seconds == 99 + 60 + 97
    joined = [e for e in await events_of(settings, settings.topics.participants)]
    assert Counter(type(e).__name__ for e in joined) == {
        "ParticipantJoinedEvent": 3,
        "ParticipantLeftEvent": 3,
        "ParticipantAttendanceEvent": 3,
    }


def _sync_keys(service: Any) -> set[str]:
    return {
        session
        for partition in service.assigned_partitions
        for session in service.sessions_of(partition).sessions
    }


async def test_an_idle_session_is_closed_by_timeout_without_further_input(
    settings: ProcessorSettings,
) -> None:
    session_id = unique_name("2_MX40-idle")
    now = recent_ms(minutes_ago=0)
    meeting = scripted_meeting(session_id, unique_name("room"), t0=now - 5_000)[:4]
    await feed(settings, meeting)
    quick = replace(settings, session_idle_timeout_s=2.0)
    async with running(quick):

        async def timed_out() -> bool:
            return session_id in await summaries(settings)

        await wait_until(timed_out, what="the idle session to time out", within=30)

    ended = (await summaries(settings))[session_id]
    assert ended.summary.ended_by == "timeout"
    lefts = [
        e
        for e in await events_of(settings, settings.topics.participants)
        if type(e).__name__ == "ParticipantLeftEvent"
    ]
    assert sorted(e.left_reason for e in lefts) == ["timeout", "timeout", "timeout"]
    states = await read_all(settings.kafka.bootstrap_servers, settings.topics.session_state)
    assert decode_state(states[-1].value).status == "timed_out"


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


@contextlib.asynccontextmanager
async def processes(
    settings: ProcessorSettings, tmp_path: Path, http: aiohttp.ClientSession, count: int
) -> AsyncIterator[list[ProcessorProcess]]:
    started = [ProcessorProcess(settings, tmp_path / f"processor-{n}.log") for n in range(count)]
    try:
        for process in started:
            await process.start(http)
        yield started
    finally:
        for process in started:
            process.kill()


async def test_sigterm_commits_and_exits_zero(
    settings: ProcessorSettings, tmp_path: Path, http: aiohttp.ClientSession
) -> None:
    session_id = unique_name("2_MX40-sigterm")
    await feed(settings, scripted_meeting(session_id, unique_name("room"))[:-1])
    async with processes(settings, tmp_path, http, 1) as [process]:

        async def done() -> bool:
            return session_id in await summaries(settings)

        await wait_until(done, what="the meeting to be processed")
        async with http.get(f"{process.url}/metrics") as response:
            metrics = await response.text()
        assert 'processor_records_total{outcome="applied"} 9.0' in metrics
        process.signal(signal.SIGTERM)
        assert await process.wait_exit() == 0, process.log()
    assert "processor stopped after 9 records" in process.log()


KILL_POINTS = [1, 10, 19]
"""How many sessions have their session.started committed when a processor is killed (the
first half of the stream holds 20 sessions)."""


async def assert_each_meeting_once(settings: ProcessorSettings, sessions: list[str]) -> None:
    """Every scripted meeting (without its room expiry) of ``sessions`` has its right summary,
    and each derived event was published exactly once."""
    ended = await summaries(settings)
    for session in sessions:
        summary = ended[session].summary
        assert (summary.unique_participants, summary.total_joins) == (3, 3), session
        assert summary.participant_seconds == 99 + 60 + 97, session
        assert (summary.recordings, summary.recorded_seconds) == (1, 60.0), session
    per_meeting = {"sessions": 2, "participants": 9, "recordings": 3}
    for topic in (
        settings.topics.sessions,
        settings.topics.participants,
        settings.topics.recordings,
    ):
        events = await events_of(settings, topic)
        ids = Counter(e.event_id for e in events)
        assert [i for i, n in ids.items() if n > 1] == [], f"duplicates on {topic}"
        assert len(events) == per_meeting[topic.rsplit(".", 1)[1]] * len(sessions), topic


@pytest.mark.parametrize("killed_after", KILL_POINTS)
async def test_killing_a_processor_mid_stream_loses_and_duplicates_nothing(
    settings: ProcessorSettings, tmp_path: Path, http: aiohttp.ClientSession, killed_after: int
) -> None:
    settings = replace(settings, consumer_session_timeout_ms=6000)
    sessions = [unique_name("2_MX40-kill") for _ in range(40)]
    records = [r for s in sessions for r in scripted_meeting(s, unique_name("room"))[:-1]]
    half = len(records) // 2
    async with processes(settings, tmp_path, http, 2) as [victim, survivor]:
        await feed(settings, records[:half])

        async def started_enough() -> bool:
            events = await events_of(settings, settings.topics.sessions)
            return sum(type(e).__name__ == "SessionStartedEvent" for e in events) >= killed_after

        await wait_until(started_enough, what=f"{killed_after} sessions started")
        victim.kill()  # SIGKILL, whatever it was doing
        await feed(settings, records[half:])

        async def all_ended() -> bool:
            return set(sessions) <= set(await summaries(settings))

        await wait_until(all_ended, what="every session to end", within=120)
        assert survivor.process is not None
        assert survivor.process.poll() is None

    await assert_each_meeting_once(settings, sessions)


async def test_health_endpoints(
    settings: ProcessorSettings, tmp_path: Path, http: aiohttp.ClientSession
) -> None:
    """Ready (what ``processes`` waits for) means owning, restored, what the group assigned:
    a lone processor is ready only once it has restored all four partitions."""
    async with processes(settings, tmp_path, http, 1) as [process]:
        async with http.get(f"{process.url}/healthz") as response:
            assert response.status == 200
        async with http.get(f"{process.url}/readyz") as response:
            body = await response.json()
        assert body == {"status": "ready", "partitions": [0, 1, 2, 3], "restoring": [],
                        "failed": []}  # fmt: skip
        async with http.get(f"{process.url}/metrics") as response:
            metrics = await response.text()
        assert "processor_assigned_partitions 4.0" in metrics
        assert "processor_restore_seconds_count" in metrics


async def test_a_processor_joining_mid_stream_takes_partitions_without_loss_or_duplicates(
    settings: ProcessorSettings,
) -> None:
    """A rebalance while the first processor has uncommitted work: it commits what it has
    and hands partitions over; the newcomer restores them and carries on."""
    sessions = [unique_name("2_MX40-rebalance") for _ in range(24)]
    records = [r for s in sessions for r in scripted_meeting(s, unique_name("room"))[:-1]]
    half = len(records) // 2
    async with running(settings) as first:
        await feed(settings, records[:half])
        await wait_until(
            lambda: first.processed_records >= half // 2, what="the first processor under way"
        )
        async with running(settings) as second:

            async def split() -> bool:
                mine, theirs = set(first.assigned_partitions), set(second.assigned_partitions)
                return bool(mine) and bool(theirs) and not mine & theirs

            await wait_until(split, what="the partitions to be shared", within=60)
            await feed(settings, records[half:])

            async def all_ended() -> bool:
                return set(sessions) <= set(await summaries(settings))

            await wait_until(all_ended, what="every session to end", within=60)

    ended = await summaries(settings)
    for session in sessions:
        summary = ended[session].summary
        assert (summary.unique_participants, summary.participant_seconds) == (3, 256), session
    for topic in (settings.topics.participants, settings.topics.recordings):
        events = await events_of(settings, topic)
        ids = [e.event_id for e in events]
        assert len(ids) == len(set(ids)), f"duplicates on {topic}"
    sessions_events = await events_of(settings, settings.topics.sessions)
    assert Counter(type(e).__name__ for e in sessions_events) == {
        "SessionStartedEvent": len(sessions),
        "SessionEndedEvent": len(sessions),
    }


async def test_finished_sessions_leave_memory_and_are_tombstoned_after_retention(
    settings: ProcessorSettings,
) -> None:
    session_id = unique_name("2_MX40-retention")
    await feed(settings, scripted_meeting(session_id, unique_name("room"))[:-1])
    async with running(settings):  # default retention: an hour

        async def ended() -> bool:
            return session_id in await summaries(settings)

        await wait_until(ended, what="the session to end")

    # The callbacks were received ten minutes ago: past a five-minute retention. The restarted
    # processor restores the finished session, then drops it.
    async with running(replace(settings, session_retention_s=300)) as service:

        async def tombstoned() -> bool:
            states = await read_all(settings.kafka.bootstrap_servers, settings.topics.session_state)
            return any(r.key == session_id.encode() and r.value is None for r in states)

        await wait_until(tombstoned, what="the finished session's tombstone")
        assert session_id not in _sync_keys(service)

    states = await read_all(settings.kafka.bootstrap_servers, settings.topics.session_state)
    mine = [r for r in states if r.key == session_id.encode()]
    assert mine[-1].value is None  # the tombstone is the session's latest record
    assert decode_state(mine[-2].value).status == "ended"  # after its final state


async def test_a_fenced_processor_rebuilds_its_partitions_and_carries_on(
    settings: ProcessorSettings,
) -> None:
    """Another producer takes the processor's transactional ids (a zombie, or an operator's
    mistake): its next commits fail, it replaces its producers, restores the partitions from
    its changelog, rewinds to the committed offsets, and the output stays exactly-once."""
    sessions = [unique_name("2_MX40-fenced") for _ in range(12)]
    records = [r for s in sessions for r in scripted_meeting(s, unique_name("room"))[:-1]]
    half = len(records) // 2
    async with running(settings) as service:
        await feed(settings, records[:half])

        async def committed_some() -> bool:
            states = await read_all(settings.kafka.bootstrap_servers, settings.topics.session_state)
            return len(states) > 0

        await wait_until(committed_some, what="first commits")
        for partition in range(PARTITIONS):
            rogue = AIOKafkaProducer(
                bootstrap_servers=settings.kafka.bootstrap_servers,
                transactional_id=transactional_id(settings, partition),
            )
            await rogue.start()  # InitProducerId fences the processor's producer
            await rogue.stop()
        await feed(settings, records[half:])

        async def all_ended() -> bool:
            return set(sessions) <= set(await summaries(settings))

        await wait_until(all_ended, what="every session to end after the fencing", within=90)
        assert service.processed_records > len(records)  # some records were applied twice

    ended = await summaries(settings)
    for session in sessions:
        assert ended[session].summary.participant_seconds == 256, session
    for topic in (settings.topics.participants, settings.topics.recordings):
        ids = [e.event_id for e in await events_of(settings, topic)]
        assert len(ids) == len(set(ids)), f"duplicates on {topic}"
