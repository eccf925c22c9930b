"""No input and no fault freezes a partition, loses a record or fails silently: failed commits
mid-stream, a raw record too large for its DLQ copy, a record the engine fails on half-way,
commits that hang on one partition, and a restart long after the callbacks were received.

Each scenario is written once and runs on the fake Kafka (milliseconds) and on the real broker
(``backend`` fixture; ``-m "not kafka"`` runs the fake variant alone)."""

from __future__ import annotations

import pytest
from aiokafka.errors import KafkaError

import processor.runtime.partition as partition_module
from processor.engine import Session, apply
from processor.engine.apply import Applied
from processor.engine.facts import Arrived, Fact
from processor.runtime.committer import transactional_id
from processor.runtime.dlq import DLQ_MAX_RECORD_BYTES
from schemas import SessionEndedEvent
from schemas.codec import decode_state
from tests.kafka_helpers import wait_until
from tests.processor.runtime.backends import (
    Backend,
    all_ended,
    dlq_sources,
    duplicates,
    events,
    summaries,
)
from tests.processor.runtime.conftest import RawCallback
from tests.processor.runtime.scripted_meeting import PARTICIPANT_SECONDS, meetings, recent_ms


def poison(key: bytes, at_ms: int, n: int) -> RawCallback:
    return RawCallback(f"{{not json {n}".encode(), key, at_ms)


async def test_failed_commits_mid_stream_skip_no_offset(backend: Backend) -> None:
    """Two commits of partition 0 fail mid-stream, poison records in its stream; after the
    first, records keep arriving while partition 0 is rebuilt (its committed offset is slow to
    come) and partition 1 goes on meanwhile. Every record is processed once: each poison record
    has exactly one DLQ copy and every meeting is complete."""
    backend.configure(commit_max_records=20)
    settings = backend.settings
    t0 = recent_ms()
    sessions, others = backend.sessions_on(0, 6), backend.sessions_on(1, 2)
    stream = meetings(sessions, t0=t0)
    stream = [r for i, record in enumerate(stream)
              for r in ([record, poison(record.key or b"", t0, i)] if i % 4 == 0 else [record])
              ]  # fmt: skip
    p0 = transactional_id(settings, 0)
    gate = backend.committed_offsets_gate()
    attempts = 0

    def fail_first_and_third(tid: str) -> Exception | None:
        nonlocal attempts
        if tid != p0:
            return None
        attempts += 1
        if attempts == 1:
            gate.clear()  # the rebuild will wait for its committed offset
        return KafkaError("injected commit failure") if attempts in (1, 3) else None

    async def p0_committed(offset: int) -> bool:
        return await backend.committed(0) == offset

    async with backend.running() as run:
        await backend.feed(stream[:10])
        await wait_until(lambda: p0_committed(10), what="the first commit")
        backend.fail_commits(fail_first_and_third)  # partition 0's next commits
        await backend.feed(stream[10:20])
        await wait_until(lambda: backend.aborts >= 1, what="the failed commit")
        await wait_until(
            lambda: run.service.restoring_partitions == [0], what="partition 0 rebuilt"
        )
        # The rest arrives while partition 0 is rebuilt, and partition 1 goes on meanwhile.
        await backend.feed(stream[20:] + meetings(others, t0=t0))
        await all_ended(backend, others, what="partition 1 meanwhile")
        assert run.service.restoring_partitions == [0]
        gate.set()
        end = await backend.end(0)
        await wait_until(lambda: p0_committed(end), what="partition 0 caught up")

    assert attempts >= 4  # both failures happened, and commits went on after them
    raw = await backend.records(settings.topics.raw)
    poison_offsets = sorted(r.offset for r in raw if r.value and r.value.startswith(b"{not"))
    assert len(poison_offsets) == 14
    assert sorted(await dlq_sources(backend)) == [(0, offset) for offset in poison_offsets]
    ended = await summaries(backend)
    assert {s: ended[s].summary.participant_seconds for s in sessions} == dict.fromkeys(
        sessions, PARTICIPANT_SECONDS
    )
    assert await duplicates(backend) == []


HUGE = 1_048_400
"""A raw record the broker accepts (its default ``message.max.bytes`` is 1,048,588 for the
whole batch): its DLQ copy with the ``dlq-*`` headers would not fit."""


async def test_a_record_too_large_for_its_dlq_copy_is_truncated_and_the_partition_goes_on(
    backend: Backend,
) -> None:
    [big_key, canary] = backend.sessions_on(0, 2)
    t0 = recent_ms()
    huge = RawCallback(b"x" * HUGE, big_key.encode(), t0)
    async with backend.running():
        await backend.feed([huge, *meetings([canary], t0=t0)])
        await all_ended(backend, [canary], what="the canary to end")

    [copy] = await backend.records(backend.settings.topics.dlq)
    headers = dict(copy.headers)
    assert headers["dlq-truncated"] == str(HUGE).encode()
    assert headers["dlq-reason"] == b"invalid_json"
    assert 0 < len(copy.value or b"") < HUGE
    assert copy.value == b"x" * len(copy.value or b"")
    size = len(copy.key or b"") + len(copy.value or b"")
    assert size + sum(len(k) + len(v) for k, v in copy.headers) <= DLQ_MAX_RECORD_BYTES


@pytest.fixture
def engine_fails_on_poison_joins(monkeypatch: pytest.MonkeyPatch) -> None:
    """The engine fails on a join of someone called "Poison", after it has recorded it."""

    def half_way(session: Session | None, facts: list[Fact], received: int) -> Applied:
        applied = apply(session, facts, received)
        if any(isinstance(fact, Arrived) and fact.person.name == "Poison" for fact in facts):
            raise RuntimeError("failed half-way")
        return applied

    monkeypatch.setattr(partition_module, "apply", half_way)


@pytest.mark.usefixtures("engine_fails_on_poison_joins")
async def test_a_record_that_fails_half_way_leaves_its_session_as_it_was(
    backend: Backend,
) -> None:
    settings = backend.settings
    [session, canary] = backend.sessions_on(0, 2)
    t0 = recent_ms()
    meeting = meetings([session], t0=t0)
    body = meeting[1].body.replace(b'"Ada"', b'"Poison"').replace(b"-ada", b"-poison")
    bad = RawCallback(body, meeting[1].key, meeting[1].received_at_ms)
    async with backend.running() as run:
        await backend.feed([*meeting[:4], bad, *meeting[4:], *meetings([canary], t0=t0)])
        await all_ended(backend, [session, canary], what="the session and the canary to end")
        state = run.service.sessions_of(0)
        assert state is not None
        assert all(p.name != "Poison" for p in state.sessions[session].participants.values()), (
            "the failed record's half-applied change stayed"
        )

    assert await dlq_sources(backend) == [(0, 4)]
    [copy] = await backend.records(settings.topics.dlq)
    assert copy.value == body
    assert dict(copy.headers)["dlq-reason"] == b"processing_error"
    assert b"failed half-way" in dict(copy.headers)["dlq-error"]
    summary = (await summaries(backend))[session].summary
    assert (summary.unique_participants, summary.participant_seconds) == (3, PARTICIPANT_SECONDS)
    states = [
        decode_state(r.value)
        for r in await backend.records(settings.topics.session_state)
        if r.key == session.encode() and r.value is not None
    ]
    assert states != []
    assert all(s.unique_participants <= 3 for s in states)  # never committed half-applied
    participants = await backend.records(settings.topics.participants)
    assert not any(b"Poison" in (r.value or b"") for r in participants)
    assert await duplicates(backend) == []


async def test_a_partition_whose_commits_hang_does_not_stall_the_others(
    backend: Backend,
) -> None:
    backend.configure(commit_max_records=2)
    slow, fast = backend.sessions_on(0, 3), backend.sessions_on(1, 3)
    t0 = recent_ms()
    gate = backend.commit_gate(transactional_id(backend.settings, 0))
    gate.clear()
    async with backend.running() as run:
        await backend.feed(meetings(slow + fast, t0=t0))
        await all_ended(
            backend, fast, what="partition 1's meetings to end while partition 0 cannot commit"
        )
        state = run.service.sessions_of(0)
        assert state is not None
        assert state.pending_records <= 2 * 2 + 2  # paused, not reading its whole backlog
        assert await backend.committed(0) is None
        gate.set()
        await all_ended(backend, slow, what="partition 0 to catch up once its commits land")
    assert await duplicates(backend) == []


async def test_a_restart_long_after_the_callbacks_replays_on_stream_time_then_expires_idle(
    backend: Backend,
) -> None:
    """Restarting ten minutes after a meeting's callbacks were received (idle timeout: one
    minute; one record per poll): the meeting is replayed on its own clock and ends by its own
    callback, not by timeout; a meeting left without an end times out once the partition has
    caught up, on the wall clock."""
    backend.configure(commit_max_records=1, session_idle_timeout_s=60.0)
    [complete, unfinished] = backend.sessions_on(0, 2)
    t0 = recent_ms(minutes_ago=10)
    await backend.feed(meetings([complete], t0=t0) + meetings([unfinished], t0=t0)[:4])
    async with backend.running():
        await all_ended(backend, [complete, unfinished], what="both meetings to end")
    ends = [
        (e.summary.ended_by, e.summary.revision)
        for e in await events(backend, backend.settings.topics.sessions)
        if isinstance(e, SessionEndedEvent) and e.session_id == complete
    ]
    assert ends == [("callback", 1)]
    assert (await summaries(backend))[unfinished].summary.ended_by == "timeout"
