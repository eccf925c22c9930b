"""No input and no fault freezes a partition, loses a record or fails silently, against a
real broker: failed commits mid-stream, a raw record of almost 1 MB, a record the engine fails
on half-way, idle expiry while catching up, and a partition that cannot be restored."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError
from aiokafka.structs import TopicPartition

import processor.runtime.partition as partition_module
from processor.engine import Session, SessionCallback, apply
from processor.engine.apply import Applied
from processor.runtime import kafka_clients
from processor.runtime.clients import Producer, RecordBatch
from processor.settings import ProcessorSettings
from schemas import SessionEndedEvent, decode_event
from schemas.callbacks import ParticipantJoinedCallback
from tests.kafka_helpers import unique_name, wait_until
from tests.processor.runtime.conftest import RawCallback, feed, read_all, running
from tests.processor.runtime.meeting import recent_ms, scripted_meeting
from tests.processor.runtime.service import ProcessorProcess

PARTICIPANT_SECONDS = 99 + 60 + 97


async def summaries(settings: ProcessorSettings) -> dict[str, SessionEndedEvent]:
    latest: dict[str, SessionEndedEvent] = {}
    for record in await read_all(settings.kafka.bootstrap_servers, settings.topics.sessions):
        event = decode_event(record.value)
        if isinstance(event, SessionEndedEvent) and event.session_id is not None:
            latest[event.session_id] = event
    return latest


async def all_ended(settings: ProcessorSettings, sessions: Sequence[str]) -> None:
    async def ended() -> bool:
        return set(sessions) <= set(await summaries(settings))

    await wait_until(ended, what=f"{len(sessions)} sessions to end", within=60)


async def no_duplicates(settings: ProcessorSettings) -> None:
    topics = settings.topics
    for topic in (topics.sessions, topics.participants, topics.recordings):
        records = await read_all(settings.kafka.bootstrap_servers, topic)
        ids = Counter(decode_event(r.value).event_id for r in records)
        assert [i for i, n in ids.items() if n > 1] == [], f"duplicates on {topic}"


def meetings(sessions: Sequence[str], t0: int) -> list[RawCallback]:
    return [r for s in sessions for r in scripted_meeting(s, f"room-{s}", t0=t0)[:-1]]


class FailingCommits:
    """A real transactional producer whose ``commit_transaction`` fails when ``fail()`` says
    so, before committing: the committer then aborts the real transaction."""

    def __init__(self, producer: Producer, fail: Callable[[], bool]) -> None:
        self._producer = producer
        self._fail = fail

    async def start(self) -> None:
        await self._producer.start()

    async def stop(self) -> None:
        await self._producer.stop()

    def create_batch(self) -> RecordBatch:
        return self._producer.create_batch()

    async def send_batch(
        self, batch: RecordBatch, topic: str, *, partition: int
    ) -> asyncio.Future[Any]:
        return await self._producer.send_batch(batch, topic, partition=partition)

    async def partitions_for(self, topic: str) -> set[int]:
        return await self._producer.partitions_for(topic)

    async def begin_transaction(self) -> None:
        await self._producer.begin_transaction()

    async def commit_transaction(self) -> None:
        if self._fail():
            raise KafkaError("injected commit failure")
        await self._producer.commit_transaction()

    async def abort_transaction(self) -> None:
        await self._producer.abort_transaction()

    async def send_offsets_to_transaction(
        self, offsets: dict[TopicPartition, int], group_id: str
    ) -> None:
        await self._producer.send_offsets_to_transaction(offsets, group_id)


async def test_failed_commits_mid_stream_skip_no_offset(settings: ProcessorSettings) -> None:
    """Every third commit of one partition fails, with poison records in its stream: every
    poison record gets exactly one DLQ copy and every meeting is complete, exactly once."""
    settings = replace(settings, commit_max_records=7)
    key = unique_name("2_MX40-failing")  # every record on one partition
    sessions = [f"{key}-{n}" for n in range(8)]
    t0 = recent_ms()
    stream: list[RawCallback] = []
    for n, record in enumerate(meetings(sessions, t0)):
        stream.append(RawCallback(record.body, key.encode(), record.received_at_ms))
        if n % 5 == 0:
            stream.append(RawCallback(f"{{poison {n}".encode(), key.encode(), t0))
    clients = kafka_clients(settings)
    attempts = Counter[str]()

    def producer(tid: str | None, client_id: str) -> Producer:
        real = clients.producer(tid, client_id)

        def every_third() -> bool:
            attempts[tid or ""] += 1
            return attempts[tid or ""] % 3 == 2

        return FailingCommits(real, every_third)

    async with running(settings, replace(clients, producer=producer)):
        for start in range(0, len(stream), 9):  # in pieces, so that commits fail mid-stream
            await feed(settings, stream[start : start + 9])
        await all_ended(settings, sessions)

        async def all_dead_lettered() -> bool:
            dlq = await read_all(settings.kafka.bootstrap_servers, settings.topics.dlq)
            return len(dlq) >= sum(1 for r in stream if r.body.startswith(b"{poison"))

        await wait_until(all_dead_lettered, what="every poison record dead-lettered")

    assert max(attempts.values()) >= 6  # failures happened, and commits went on after them
    raw = await read_all(settings.kafka.bootstrap_servers, settings.topics.raw)
    poison = sorted(r.offset for r in raw if r.value.startswith(b"{poison"))
    dlq = await read_all(settings.kafka.bootstrap_servers, settings.topics.dlq)
    assert sorted(int(dict(r.headers)["source-offset"]) for r in dlq) == poison
    ended = await summaries(settings)
    assert {s: ended[s].summary.participant_seconds for s in sessions} == dict.fromkeys(
        sessions, PARTICIPANT_SECONDS
    )
    await no_duplicates(settings)


async def feed_huge(settings: ProcessorSettings, key: bytes, value: bytes, at_ms: int) -> None:
    producer = AIOKafkaProducer(
        bootstrap_servers=settings.kafka.bootstrap_servers, max_request_size=2_000_000
    )
    await producer.start()
    try:
        headers = [("received-at", str(at_ms).encode())]
        await producer.send_and_wait(
            settings.topics.raw, value=value, key=key, timestamp_ms=at_ms, headers=headers
        )
    finally:
        await producer.stop()


HUGE = 1_048_400
"""A raw record the broker accepts (its default ``message.max.bytes`` is 1,048,588 for the
whole batch): its DLQ copy with the ``dlq-*`` headers would not fit."""


async def test_a_raw_record_of_almost_1_mb_does_not_freeze_its_partition(
    settings: ProcessorSettings,
) -> None:
    canary = unique_name("2_MX40-canary")
    t0 = recent_ms()
    await feed_huge(settings, canary.encode(), b"x" * HUGE, t0)
    await feed(settings, meetings([canary], t0))
    async with running(settings):
        await all_ended(settings, [canary])
    [copy] = await read_all(settings.kafka.bootstrap_servers, settings.topics.dlq)
    headers = dict(copy.headers)
    assert headers["dlq-truncated"] == str(HUGE).encode()
    assert headers["dlq-reason"] == b"invalid_json"
    assert 0 < len(copy.value) < HUGE


@pytest.fixture
def engine_fails_on_poison_joins(monkeypatch: pytest.MonkeyPatch) -> None:
    """The engine fails on a join of someone called "Poison", after it has recorded it."""

    def half_way(session: Session | None, callback: SessionCallback, received: int) -> Applied:
        applied = apply(session, callback, received)
        if isinstance(callback, ParticipantJoinedCallback) and callback.name == "Poison":
            raise RuntimeError("failed half-way")
        return applied

    monkeypatch.setattr(partition_module, "apply", half_way)


@pytest.mark.usefixtures("engine_fails_on_poison_joins")
async def test_a_record_that_fails_half_way_changes_nothing(settings: ProcessorSettings) -> None:
    session, canary = unique_name("2_MX40-half"), unique_name("2_MX40-canary")
    t0 = recent_ms()
    meeting = meetings([session], t0)
    body = meeting[1].body.replace(b'"Ada"', b'"Poison"').replace(b"-ada", b"-poison")
    bad = RawCallback(body, session.encode(), meeting[1].received_at_ms)
    canary_meeting = [RawCallback(r.body, session.encode(), r.received_at_ms)
                      for r in meetings([canary], t0)]  # fmt: skip
    await feed(settings, [*meeting[:4], bad, *meeting[4:], *canary_meeting])
    async with running(settings):
        await all_ended(settings, [session, canary])

    summary = (await summaries(settings))[session].summary
    assert (summary.unique_participants, summary.participant_seconds) == (3, PARTICIPANT_SECONDS)
    [copy] = await read_all(settings.kafka.bootstrap_servers, settings.topics.dlq)
    assert copy.value == body
    assert dict(copy.headers)["dlq-reason"] == b"processing_error"
    participants = await read_all(settings.kafka.bootstrap_servers, settings.topics.participants)
    assert not any(b"Poison" in r.value for r in participants)
    await no_duplicates(settings)


async def test_a_restart_after_hours_replays_on_stream_time(settings: ProcessorSettings) -> None:
    """Callbacks received ten minutes ago, an idle timeout of one minute, one record per
    poll: the meeting is replayed on its own clock and ends by its callback, not by timeout."""
    settings = replace(settings, commit_max_records=1, session_idle_timeout_s=60.0)
    session = unique_name("2_MX40-catchup")
    await feed(settings, meetings([session], recent_ms(minutes_ago=10)))
    async with running(settings):
        await all_ended(settings, [session])
    records = await read_all(settings.kafka.bootstrap_servers, settings.topics.sessions)
    ended = [e for e in map(decode_event, (r.value for r in records))
             if isinstance(e, SessionEndedEvent)]  # fmt: skip
    assert [(e.summary.ended_by, e.summary.revision) for e in ended] == [("callback", 1)]


async def test_a_partition_that_cannot_be_restored_is_loud_then_exits(
    settings: ProcessorSettings, tmp_path: Path
) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=settings.kafka.bootstrap_servers)
    await producer.start()
    try:
        await producer.send_and_wait(
            settings.topics.changelog, value=b"\x00garbage", key=b"2_MX40-broken", partition=1
        )
    finally:
        await producer.stop()
    process = ProcessorProcess(replace(settings, fatal_exit_delay_s=5.0), tmp_path / "p.log")
    process.spawn()
    try:
        async with aiohttp.ClientSession() as http:
            body: dict[str, Any] = {}

            async def failed() -> bool:
                try:
                    async with http.get(f"{process.url}/readyz") as response:
                        body.update(await response.json())
                        return response.status == 503 and bool(body["failed"])
                except aiohttp.ClientConnectionError:
                    return False

            await wait_until(failed, what="/readyz to report the failed partition")
            assert [f["partition"] for f in body["failed"]] == [1]
            assert "undecodable changelog key b'2_MX40-broken'" in body["failed"][0]["cause"]
            async with http.get(f"{process.url}/metrics") as response:
                metrics = await response.text()
            assert 'processor_partition_failed{cause="restore",partition="1"} 1.0' in metrics
        assert await process.wait_exit(within=60) == 1
    finally:
        process.kill()
    log = process.log()
    assert "partition 1 cannot be processed (restore)" in log
    assert "processor exiting: giving up after 5 s: partition 1: undecodable changelog" in log
