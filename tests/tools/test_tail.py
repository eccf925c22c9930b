"""``meetings-tail``: one readable line per record of any pipeline topic, or the exact values."""

from __future__ import annotations

import asyncio
import signal
import sys
from collections.abc import Sequence
from pathlib import Path

import msgspec
import pytest
from aiokafka import AIOKafkaProducer

from schemas import (
    ActiveParticipant,
    ParticipantJoinedEvent,
    SessionEndedEvent,
    SessionStartedEvent,
    SessionState,
    SessionSummary,
    encode,
)
from schemas.topics import (
    HEADER_DLQ_ERROR,
    HEADER_DLQ_REASON,
    HEADER_SOURCE_OFFSET,
    HEADER_SOURCE_PARTITION,
    HEADER_SOURCE_TOPIC,
    RAW,
)
from tests.conftest import TopicFactory
from tests.kafka_helpers import wait_until
from tools.tail import main

SESSION = "2_MX40NjMzOTg5Mn5-fjE2MzU4NzA0ODI2NjN-Rk9vTjJ3cXlhRk1YcmJ0-fg"
ROOM = "7d0e1b36-1c8b-4bd1-a0a4-0ad6a5b5c0de"
PARTICIPANT = "c1f3a9e2-5b7d-4e8f-9a0b-1c2d3e4f5a6b"

STARTED = SessionStartedEvent(
    event_id="e-1",
    occurred_at="2021-11-02T16:25:09.120Z",
    session_id=SESSION,
    room_id=ROOM,
    started_at="2021-11-02T16:25:09.120Z",
)
JOINED = ParticipantJoinedEvent(
    event_id="e-2",
    occurred_at="2021-11-02T16:26:00.000Z",
    session_id=SESSION,
    room_id=ROOM,
    participant_id=PARTICIPANT,
    name="Ada Lovelace",
    is_host=True,
    joined_at="2021-11-02T16:26:00.000Z",
)
ENDED = SessionEndedEvent(
    event_id="e-3",
    occurred_at="2021-11-02T16:41:02.120Z",
    session_id=SESSION,
    room_id=ROOM,
    summary=SessionSummary(
        started_at="2021-11-02T16:25:09.120Z",
        ended_at="2021-11-02T16:41:02.120Z",
        duration_s=953.0,
        unique_participants=3,
        peak_concurrency=3,
        total_joins=4,
        participant_seconds=2100.5,
        recordings=1,
        recorded_seconds=600.0,
        ended_by="callback",
        revision=1,
    ),
)
EVENTS: Sequence[msgspec.Struct] = (STARTED, JOINED, ENDED)

Record = tuple[bytes | None, list[tuple[str, bytes]]]


async def produce(bootstrap: str, topic: str, records: Sequence[Record]) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, enable_idempotence=True)
    await producer.start()
    try:
        for value, headers in records:
            await producer.send_and_wait(topic, value, key=SESSION.encode(), headers=headers)
    finally:
        await producer.stop()


async def run_tail(*args: str) -> int:
    # main() runs its own event loop: give it a thread, as a separate process would have.
    return await asyncio.to_thread(main, list(args))


@pytest.fixture
async def events_topic(kafka_bootstrap: str, new_topic: TopicFactory) -> str:
    topic = await new_topic("tail")
    await produce(kafka_bootstrap, topic, [(encode(event), []) for event in EVENTS])
    return topic


async def test_derived_events_are_shown_one_readable_line_each(
    kafka_bootstrap: str, events_topic: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code = await run_tail(
        events_topic, "--bootstrap", kafka_bootstrap, "--max", "3", "--timeout", "20"
    )

    assert code == 0
    assert capsys.readouterr().out.splitlines() == [
        "2021-11-02T16:25:09.120Z session.started    session=2_MX..k1YcmJ0-fg room=7d0e1b36 "
        "source=meetings",
        "2021-11-02T16:26:00.000Z participant.joined session=2_MX..k1YcmJ0-fg participant=c1f3a9e2 "
        'name="Ada Lovelace" host source=meetings',
        "2021-11-02T16:41:02.120Z session.ended      session=2_MX..k1YcmJ0-fg duration=953s "
        "participants=3 peak=3 joins=4 attended=2100s recordings=1 ended_by=callback rev=1 "
        "source=meetings",
    ]


async def test_json_prints_the_exact_values(
    kafka_bootstrap: str, events_topic: str, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["--bootstrap", kafka_bootstrap, "--max", "3", "--timeout", "20", "--json"]
    code = await run_tail(events_topic, *args)

    assert code == 0
    assert capsys.readouterr().out == "".join(encode(e).decode() + "\n" for e in EVENTS)


async def test_full_ids_are_shown_on_request(
    kafka_bootstrap: str, events_topic: str, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["--bootstrap", kafka_bootstrap, "--max", "1", "--timeout", "20", "--full-ids"]
    assert await run_tail(events_topic, *args) == 0
    assert f"session={SESSION} room={ROOM} source=meetings" in capsys.readouterr().out


async def test_state_tombstones_and_dlq_records_get_lines_of_their_own(
    kafka_bootstrap: str, new_topic: TopicFactory, capsys: pytest.CaptureFixture[str]
) -> None:
    state = SessionState(
        session_id=SESSION,
        room_id=ROOM,
        status="active",
        started_at="2021-11-02T16:25:09.120Z",
        ended_at=None,
        duration_s=None,
        active_participants=[
            ActiveParticipant(
                participant_id=PARTICIPANT,
                name=None,
                is_host=True,
                joined_at="2021-11-02T16:26:00.000Z",
            )
        ],
        active_count=1,
        peak_concurrency=2,
        unique_participants=2,
        total_joins=2,
        recordings=[],
        recording_active=False,
        last_event_at="2021-11-02T16:30:00.000Z",
        version=5,
    )
    dlq_headers = [
        (HEADER_DLQ_REASON, b"unknown_event"),
        (HEADER_DLQ_ERROR, b"unknown event 'session:paused'"),
        (HEADER_SOURCE_TOPIC, RAW.name.encode()),
        (HEADER_SOURCE_PARTITION, b"3"),
        (HEADER_SOURCE_OFFSET, b"1234"),
    ]
    topic = await new_topic("tail")
    await produce(
        kafka_bootstrap,
        topic,
        [(encode(state), []), (None, []), (b'{"event":"session:paused"}', dlq_headers)],
    )

    args = ["--bootstrap", kafka_bootstrap, "--max", "3", "--timeout", "20"]
    assert await run_tail(topic, *args) == 0

    state_line, tombstone, dlq = capsys.readouterr().out.splitlines()
    assert state_line == (
        "2021-11-02T16:30:00.000Z state              session=2_MX..k1YcmJ0-fg status=active "
        "active=1 peak=2 unique=2 joins=2 recordings=0 v=5"
    )
    assert tombstone.endswith(" tombstone          key=2_MX..k1YcmJ0-fg")
    assert dlq.endswith(
        f" dlq                reason=unknown_event source={RAW.name}[3]@1234 "
        "key=2_MX..k1YcmJ0-fg error=\"unknown event 'session:paused'\""
    )


async def test_from_end_shows_only_new_records(
    kafka_bootstrap: str, events_topic: str, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["--bootstrap", kafka_bootstrap, "--from-end", "--max", "1", "--timeout", "30"]
    tail = asyncio.create_task(run_tail(events_topic, *args))

    async def a_new_record_was_shown() -> bool:
        # The tail's start position is unknown from outside: keep adding records until one shows.
        await produce(kafka_bootstrap, events_topic, [(encode(ENDED), [])])
        return tail.done()

    await wait_until(a_new_record_was_shown, what="the tail to show a new record", interval=0.2)
    assert await tail == 0
    assert " session.ended " in capsys.readouterr().out


async def test_ctrl_c_ends_a_follow_cleanly(
    kafka_bootstrap: str, events_topic: str, tmp_path: Path
) -> None:
    out_path, err_path = tmp_path / "tail.out", tmp_path / "tail.err"
    with out_path.open("wb") as out, err_path.open("wb") as err:
        process = await asyncio.create_subprocess_exec(
            *(sys.executable, "-m", "tools.tail", events_topic, "--bootstrap", kafka_bootstrap),
            stdout=out,
            stderr=err,
        )
    try:
        await wait_until(
            lambda: len(out_path.read_text().splitlines()) == len(EVENTS),
            what="the tail to show the topic",
        )
        process.send_signal(signal.SIGINT)
        code = await asyncio.wait_for(process.wait(), 30)
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    assert code == 0
    assert err_path.read_text() == ""


async def test_timeout_before_max_records_exits_1(
    kafka_bootstrap: str, events_topic: str, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["--bootstrap", kafka_bootstrap, "--max", "10", "--timeout", "2"]
    assert await run_tail(events_topic, *args) == 1
    assert len(capsys.readouterr().out.splitlines()) == 3


async def test_a_missing_topic_is_a_clear_error(
    kafka_bootstrap: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code = await run_tail("meetings.no-such-topic", "--bootstrap", kafka_bootstrap, "--max", "1")

    assert code == 2
    assert "topic 'meetings.no-such-topic' does not exist" in capsys.readouterr().err


def test_an_invalid_topic_name_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["meetings sessions"]) == 2
    assert "'meetings sessions' is not a valid topic name" in capsys.readouterr().err
