"""The runtime's fault paths on the fake Kafka: failed commits, records arriving during a
rebuild, a record too large for its DLQ copy, a record the engine fails on half-way, a slow
partition, and idle expiry while a partition catches up."""

from __future__ import annotations

import asyncio

import pytest
from aiokafka.errors import KafkaError
from aiokafka.structs import TopicPartition

import processor.runtime.partition as partition_module
from processor.engine import Session, SessionCallback, apply
from processor.engine.apply import Applied
from processor.runtime.committer import transactional_id
from processor.runtime.dlq import DLQ_MAX_RECORD_BYTES
from schemas.callbacks import ParticipantJoinedCallback
from schemas.codec import decode_state
from tests.kafka_helpers import wait_until
from tests.processor.runtime.conftest import RawCallback
from tests.processor.runtime.fakes import FakeKafka, ManualClock, fake_settings, running_on
from tests.processor.runtime.meeting import recent_ms
from tests.processor.runtime.scenario import (
    PARTICIPANT_SECONDS,
    dlq_offsets,
    duplicates,
    feed,
    meetings,
    sessions_on,
    summaries,
)


def poison(key: bytes, at_ms: int, n: int) -> RawCallback:
    return RawCallback(f"{{not json {n}".encode(), key, at_ms)


async def test_a_failed_commit_mid_stream_skips_no_offset() -> None:
    """Two commits of partition 0 fail; records keep arriving while it is rebuilt (its
    committed offset is slow to come). Every record is processed once: each poison record
    has exactly one DLQ copy and every meeting is complete."""
    kafka = FakeKafka()
    settings = fake_settings(commit_max_records=20)
    t0 = recent_ms()
    sessions, others = sessions_on(kafka, 0, 6), sessions_on(kafka, 1, 2)
    stream = meetings(sessions, t0=t0)
    stream = [r for i, record in enumerate(stream)
              for r in ([record, poison(record.key or b"", t0, i)] if i % 4 == 0 else [record])
              ]  # fmt: skip
    raw0 = TopicPartition(settings.topics.raw, 0)
    p0 = transactional_id(settings, 0)
    attempts = 0

    def fail_second_and_fourth(tid: str) -> Exception | None:
        nonlocal attempts
        if tid != p0:
            return None
        attempts += 1
        if attempts == 2:
            gate.clear()  # the rebuild will wait for its committed offset
        return KafkaError("injected commit failure") if attempts in (2, 4) else None

    kafka.fail_commit = fail_second_and_fourth
    kafka.committed_gate = gate = asyncio.Event()
    gate.set()
    async with running_on(kafka, settings) as run:
        feed(kafka, settings, stream[:10])
        await wait_until(lambda: kafka.committed.get(raw0) == 10, what="the first commit")
        feed(kafka, settings, stream[10:20])
        await wait_until(lambda: kafka.aborts == 1, what="the failed commit")
        assert run.service.restoring_partitions == [0]
        # The rest arrives while partition 0 is rebuilt, and partition 1 goes on meanwhile.
        feed(kafka, settings, stream[20:] + meetings(others, t0=t0))
        await wait_until(
            lambda: set(others) <= set(summaries(kafka, settings)), what="partition 1 meanwhile"
        )
        gate.set()
        await wait_until(
            lambda: kafka.committed.get(raw0) == kafka.end(raw0), what="partition 0 caught up"
        )

    assert attempts >= 5  # both failures happened, and commits went on after them
    raw = kafka.records(settings.topics.raw)
    poison_offsets = sorted(r.offset for r in raw if r.value and r.value.startswith(b"{not"))
    assert sorted(offset for _, offset in dlq_offsets(kafka, settings)) == poison_offsets
    ended = summaries(kafka, settings)
    assert {s: ended[s].summary.participant_seconds for s in sessions} == dict.fromkeys(
        sessions, PARTICIPANT_SECONDS
    )
    assert duplicates(kafka, settings) == []


async def test_a_record_too_large_for_its_dlq_copy_is_truncated_and_the_partition_goes_on() -> None:
    kafka = FakeKafka()
    settings = fake_settings()
    [big_key, canary] = sessions_on(kafka, 0, 2)
    t0 = recent_ms()
    huge = RawCallback(b"x" * 1_048_000, big_key.encode(), t0)  # the broker took it
    async with running_on(kafka, settings):
        feed(kafka, settings, [huge, *meetings([canary], t0=t0)])
        await wait_until(lambda: canary in summaries(kafka, settings), what="the canary to end")

    [copy] = kafka.records(settings.topics.dlq)
    headers = dict(copy.headers)
    assert headers["dlq-truncated"] == b"1048000"
    assert headers["dlq-reason"] == b"invalid_json"
    assert copy.value == b"x" * len(copy.value or b"")
    size = len(copy.key or b"") + len(copy.value or b"")
    assert size + sum(len(k) + len(v) for k, v in copy.headers) <= DLQ_MAX_RECORD_BYTES


@pytest.fixture
def engine_fails_on_poison_joins(monkeypatch: pytest.MonkeyPatch) -> None:
    """The engine fails on a join of someone called "Poison" after it has recorded it."""

    def half_way(session: Session | None, callback: SessionCallback, received: int) -> Applied:
        applied = apply(session, callback, received)
        if isinstance(callback, ParticipantJoinedCallback) and callback.name == "Poison":
            raise RuntimeError("failed half-way")
        return applied

    monkeypatch.setattr(partition_module, "apply", half_way)


@pytest.mark.usefixtures("engine_fails_on_poison_joins")
async def test_a_record_that_fails_half_way_leaves_its_session_as_it_was() -> None:
    kafka = FakeKafka()
    settings = fake_settings()
    [session, canary] = sessions_on(kafka, 0, 2)
    t0 = recent_ms()
    meeting = meetings([session], t0=t0)
    body = meeting[1].body.replace(b'"Ada"', b'"Poison"').replace(b"-ada", b"-poison")
    bad = RawCallback(body, meeting[1].key, meeting[1].received_at_ms)
    async with running_on(kafka, settings) as run:
        feed(kafka, settings, [*meeting[:4], bad, *meeting[4:], *meetings([canary], t0=t0)])
        await wait_until(lambda: canary in summaries(kafka, settings), what="the canary to end")
        state = run.service.sessions_of(0)
        assert state is not None
        assert all(p.name != "Poison" for p in state.sessions[session].participants.values()), (
            "the failed record's half-applied change stayed"
        )

    [(partition, offset)] = dlq_offsets(kafka, settings)
    assert (partition, offset) == (0, 4)
    [copy] = kafka.records(settings.topics.dlq)
    assert dict(copy.headers)["dlq-reason"] == b"processing_error"
    assert b"failed half-way" in dict(copy.headers)["dlq-error"]
    summary = summaries(kafka, settings)[session].summary
    assert (summary.unique_participants, summary.participant_seconds) == (3, PARTICIPANT_SECONDS)
    states = [
        decode_state(r.value)
        for r in kafka.records(settings.topics.session_state)
        if r.key == session.encode() and r.value is not None
    ]
    assert all(s.unique_participants <= 3 for s in states)  # never committed half-applied
    assert duplicates(kafka, settings) == []


async def test_a_partition_whose_commits_hang_does_not_stall_the_others() -> None:
    kafka = FakeKafka()
    settings = fake_settings(commit_max_records=2)
    slow, fast = sessions_on(kafka, 0, 3), sessions_on(kafka, 1, 3)
    t0 = recent_ms()
    kafka.commit_gates[transactional_id(settings, 0)] = gate = asyncio.Event()
    async with running_on(kafka, settings) as run:
        feed(kafka, settings, meetings(slow + fast, t0=t0))
        await wait_until(
            lambda: set(fast) <= set(summaries(kafka, settings)),
            what="partition 1's meetings to end while partition 0 cannot commit",
        )
        raw0 = TopicPartition(settings.topics.raw, 0)
        state = run.service.sessions_of(0)
        assert state is not None
        assert state.pending_records <= 2 * 2 + 2  # paused, not reading its whole backlog
        assert kafka.committed.get(raw0) is None
        gate.set()
        await wait_until(
            lambda: set(slow) <= set(summaries(kafka, settings)),
            what="partition 0 to catch up once its commits land",
        )
    assert duplicates(kafka, settings) == []


async def test_idle_expiry_waits_for_the_backlog_then_uses_the_wall_clock() -> None:
    """Restarting seven hours after a meeting's callbacks were received (idle timeout: one
    minute): the meeting is replayed on stream time and ends by its own callback; a meeting
    left without an end times out once the partition has caught up."""
    kafka = FakeKafka()
    t0 = recent_ms()
    clock = ManualClock(t0 + 7 * 3600_000)
    settings = fake_settings(commit_max_records=1, session_idle_timeout_s=60.0)
    [complete, unfinished] = sessions_on(kafka, 0, 2)
    feed(kafka, settings, meetings([complete], t0=t0) + meetings([unfinished], t0=t0)[:4])
    async with running_on(kafka, settings, clock=clock):
        await wait_until(
            lambda: {complete, unfinished} <= set(summaries(kafka, settings)),
            what="both meetings to end",
        )
    ended = summaries(kafka, settings)
    assert (ended[complete].summary.ended_by, ended[complete].summary.revision) == ("callback", 1)
    assert ended[unfinished].summary.ended_by == "timeout"
