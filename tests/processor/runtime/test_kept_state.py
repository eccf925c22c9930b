"""Partitions kept across rebalances, on the fake Kafka: a partition that stays with its
processor is not read again, one that moved away and came back reads only what the other owner
wrote, and state that cannot be trusted is read whole (contract: change costs what changed)."""

from __future__ import annotations

import asyncio

from aiokafka.structs import TopicPartition

from processor.engine import all_records
from processor.runtime import ProcessorService
from processor.runtime.changelog_read import decode_sessions
from processor.runtime.clients import GroupSnapshot
from processor.runtime.committer import transactional_id
from processor.runtime.kept import KeptPartition, KeptPartitions
from processor.runtime.partition import ROLL_MARKER
from processor.runtime.rebalance import RebalanceReport, RestoreKind
from processor.runtime.warmup import expected_share
from processor.settings import ProcessorSettings
from tests.kafka_helpers import wait_until
from tests.processor.runtime.conftest import RawCallback
from tests.processor.runtime.fakes import FakeConsumer, FakeKafka, fake_settings, running_on
from tests.processor.runtime.on_fake_kafka import (
    PARTICIPANT_SECONDS,
    duplicates,
    feed,
    meetings,
    sessions_on,
    summaries,
)
from tests.processor.runtime.scripted_meeting import recent_ms

PER_MEETING = 9
"""Records of a scripted meeting without its room expiry; the first 5 leave three people in
and a recording running, the next 2 see Alan leave and the recording end."""


def settled(report: RebalanceReport | None, partitions: list[int]) -> RebalanceReport:
    assert report is not None
    assert report.closed, "the rebalance is not done"
    assert sorted(report.kept | report.gained) == partitions
    return report


def rebalance_done(
    service: ProcessorService, partitions: list[int], *, kept: set[int] | None = None
) -> bool:
    """The latest rebalance assigned ``partitions`` (keeping ``kept``) and is done."""
    report = service.last_rebalance
    return (
        report is not None
        and report.closed
        and sorted(report.kept | report.gained) == partitions
        and (kept is None or report.kept == kept)
        and service.ready
    )


def committed_all(kafka: FakeKafka, settings: ProcessorSettings, partitions: list[int]) -> bool:
    return all(
        kafka.committed.get(TopicPartition(settings.topics.raw, p), 0)
        == kafka.end(TopicPartition(settings.topics.raw, p))
        for p in partitions
    )


def slice_meetings(session_ids: list[str], t0: int, start: int, stop: int) -> list[RawCallback]:
    """Records ``start`` to ``stop`` of each session's scripted meeting."""
    records = meetings(session_ids, t0=t0)
    return [
        records[m * PER_MEETING + i] for m in range(len(session_ids)) for i in range(start, stop)
    ]


async def test_a_partition_that_stays_is_not_read_again() -> None:
    kafka = FakeKafka()
    settings = fake_settings()
    t0 = recent_ms()
    sessions = sessions_on(kafka, 0, 3) + sessions_on(kafka, 1, 3)
    async with running_on(kafka, settings) as run:
        await wait_until(lambda: rebalance_done(run.service, [0, 1]), what="first assignment")
        feed(kafka, settings, slice_meetings(sessions, t0, 0, 5))
        await wait_until(lambda: committed_all(kafka, settings, [0, 1]), what="first half")
        reads_before = len(kafka.changelog_reads)
        consumer: FakeConsumer = kafka.consumers[0]
        consumer.rebalance([0, 1])  # eager: both revoked, both assigned back
        feed(kafka, settings, slice_meetings(sessions, t0, 5, PER_MEETING))
        await wait_until(
            lambda: rebalance_done(run.service, [0, 1], kept={0, 1}), what="the rebalance"
        )
        report = settled(run.service.last_rebalance, [0, 1])
        await wait_until(lambda: committed_all(kafka, settings, [0, 1]), what="the rest")
    assert report.kept == {0, 1}
    assert not report.gained
    assert not report.lost
    assert {p: (r.kind, r.records) for p, r in report.restored.items()} == {
        0: (RestoreKind.DELTA, 0),
        1: (RestoreKind.DELTA, 0),
    }
    # Each delta read started where the processor's own last commit of the partition ended.
    assert all(start is not None for _, start in kafka.changelog_reads[reads_before:])
    done = summaries(kafka, settings)
    assert sorted(done) == sorted(sessions)
    assert {s.summary.participant_seconds for s in done.values()} == {PARTICIPANT_SECONDS}
    assert duplicates(kafka, settings) == []


async def test_a_partition_that_moved_away_and_back_reads_what_the_other_owner_wrote() -> None:
    """A owns both partitions; partition 1 moves to B, which applies Alan's leaving and the
    recording's end; it comes back to A, which reads B's changelog records over the sessions
    it kept, and ends the meetings. Attendance only adds up if A saw what B wrote."""
    kafka = FakeKafka(assign_at_start=False)
    settings = fake_settings()
    t0 = recent_ms()
    sessions = sessions_on(kafka, 1, 4)
    changelog_1 = TopicPartition(settings.topics.changelog, 1)
    async with running_on(kafka, settings) as a, running_on(kafka, settings) as b:
        await wait_until(lambda: len(kafka.consumers) == 2, what="two consumers")
        consumer_a, consumer_b = kafka.consumers
        consumer_a.rebalance([0, 1])
        consumer_b.rebalance([])
        await wait_until(lambda: rebalance_done(a.service, [0, 1]), what="A owns both")
        feed(kafka, settings, slice_meetings(sessions, t0, 0, 5))
        await wait_until(lambda: committed_all(kafka, settings, [1]), what="A's part")

        consumer_a.rebalance([0])
        await wait_until(lambda: rebalance_done(a.service, [0]), what="A lost partition 1")
        consumer_b.rebalance([1])
        await wait_until(lambda: rebalance_done(b.service, [1]), what="B has partition 1")
        assert settled(b.service.last_rebalance, [1]).restored[1].kind is RestoreKind.FULL
        b_began = kafka.end(changelog_1)
        feed(kafka, settings, slice_meetings(sessions, t0, 5, 7))
        await wait_until(lambda: committed_all(kafka, settings, [1]), what="B's part")
        written_by_b = kafka.end(changelog_1) - b_began
        assert written_by_b > 0

        consumer_b.rebalance([])
        await wait_until(lambda: rebalance_done(b.service, []), what="B released partition 1")
        consumer_a.rebalance([0, 1])
        await wait_until(
            lambda: rebalance_done(a.service, [0, 1], kept={0}), what="A has partition 1 back"
        )
        report = settled(a.service.last_rebalance, [0, 1])
        assert report.gained == {1}
        assert report.kept == {0}
        back = report.restored[1]
        assert back.kind is RestoreKind.DELTA
        assert 0 < back.records <= written_by_b  # B's writes (its transaction markers aside)
        # What A holds for partition 1 is what a full restore of the changelog gives.
        state = a.service.sessions_of(1)
        assert state is not None
        latest: dict[bytes, bytes] = {}
        for record in kafka.records(settings.topics.changelog):
            if record.partition == 1 and record.key is not None:
                if record.value is None:
                    latest.pop(record.key, None)
                else:
                    latest[record.key] = record.value
        full = {s.session_id: sorted(all_records(s)) for s in decode_sessions(1, latest)}
        assert {sid: sorted(all_records(s)) for sid, s in state.sessions.items()} == full

        feed(kafka, settings, slice_meetings(sessions, t0, 7, PER_MEETING))
        await wait_until(lambda: committed_all(kafka, settings, [1]), what="A's end")
    done = summaries(kafka, settings)
    assert sorted(done) == sorted(sessions)
    assert {s.summary.participant_seconds for s in done.values()} == {PARTICIPANT_SECONDS}
    assert {s.summary.recorded_seconds for s in done.values()} == {60}
    assert duplicates(kafka, settings) == []


async def test_kept_state_older_than_half_the_tombstone_retention_is_read_whole() -> None:
    kafka = FakeKafka()
    settings = fake_settings(changelog_delete_retention_ms=0)  # kept state is never young enough
    sessions = sessions_on(kafka, 0, 2)
    async with running_on(kafka, settings) as run:
        await wait_until(lambda: rebalance_done(run.service, [0, 1]), what="first assignment")
        feed(kafka, settings, slice_meetings(sessions, recent_ms(), 0, 5))
        await wait_until(lambda: committed_all(kafka, settings, [0]), what="a commit")
        kafka.consumers[0].rebalance([0, 1])
        await wait_until(
            lambda: rebalance_done(run.service, [0, 1], kept={0, 1}), what="the rebalance"
        )
        report = settled(run.service.last_rebalance, [0, 1])
    assert report.restored[0].kind is RestoreKind.FULL
    assert report.restored[0].records > 0
    assert report.restored[0].sessions == 2


async def test_a_partition_whose_last_commit_failed_is_not_kept() -> None:
    """Partition 0's commit is in flight when the rebalance starts, and fails: what it holds
    is ahead of its changelog, so it is read whole when it comes back."""
    kafka = FakeKafka()
    settings = fake_settings()
    tid = transactional_id(settings, 0)
    gate = kafka.commit_gates[tid] = asyncio.Event()
    failures: list[Exception] = []
    kafka.fail_commit = lambda t: failures.pop() if failures and t == tid else None
    sessions = sessions_on(kafka, 0, 2)
    async with running_on(kafka, settings) as run:
        await wait_until(lambda: rebalance_done(run.service, [0, 1]), what="first assignment")
        feed(kafka, settings, slice_meetings(sessions, recent_ms(), 0, 5))
        await wait_until(
            lambda: any(p.transactional_id == tid and p.in_transaction for p in kafka.producers),
            what="partition 0's commit in flight",
        )
        kafka.consumers[0].rebalance([0, 1])
        # Revoking: the release of partition 0 waits for its commit in flight.
        await wait_until(lambda: not run.service.ready, what="the revocation under way")
        failures.append(RuntimeError("injected"))
        gate.set()
        await wait_until(
            lambda: rebalance_done(run.service, [0, 1], kept={0, 1}), what="the rebalance"
        )
        report = settled(run.service.last_rebalance, [0, 1])
        assert report.restored[0].kind is RestoreKind.FULL
        assert report.restored[1].kind is RestoreKind.DELTA
        await wait_until(lambda: committed_all(kafka, settings, [0]), what="replayed and committed")
    assert kafka.aborts == 1
    assert duplicates(kafka, settings) == []


def test_partitions_moved_away_are_kept_within_the_session_budget() -> None:
    def kept(sessions: int, released_at: float) -> KeptPartition:
        return KeptPartition(
            sessions={f"s{i}": None for i in range(sessions)},  # type: ignore[misc]
            changelog_end=1,
            released_at=released_at,
        )

    store = KeptPartitions(max_sessions=5, max_age_s=100)
    store.keep(0, kept(3, released_at=1))
    store.keep(1, kept(3, released_at=2))
    store.keep(2, kept(10, released_at=3))
    store.trim(owned=[2], now=10)  # 2 is owned again: not counted; 0 (oldest) goes
    assert store.take(0, now=10) is None
    assert store.take(1, now=10) is not None
    assert store.take(2, now=10) is not None

    store.keep(3, kept(1, released_at=1))
    assert store.take(3, now=102) is None  # older than the maximum age
    store.keep(4, kept(1, released_at=1))
    store.trim(owned=[4], now=102)
    assert len(store) == 0


async def test_a_quiet_changelog_partition_gets_its_segment_rolled_once() -> None:
    """Compaction never cleans the active segment: once ``CHANGELOG_SEGMENT_MS`` passed since a
    partition's last session write, one roll marker goes out; a restore reads past it."""
    kafka = FakeKafka()
    settings = fake_settings(changelog_segment_ms=1000)
    changelog_0 = TopicPartition(settings.topics.changelog, 0)

    def markers() -> int:
        return sum(r.key == ROLL_MARKER and kafka.visible(r) for r in kafka.logs[changelog_0])

    async with running_on(kafka, settings) as run:
        await wait_until(lambda: rebalance_done(run.service, [0, 1]), what="first assignment")
        feed(kafka, settings, slice_meetings(sessions_on(kafka, 0, 2), recent_ms(), 0, 5))
        await wait_until(lambda: committed_all(kafka, settings, [0]), what="a commit")
        assert markers() == 0
        await wait_until(lambda: markers() == 1, what="the roll marker", within=10)
        kafka.consumers[0].rebalance([0, 1])
        await wait_until(
            lambda: rebalance_done(run.service, [0, 1], kept={0, 1}), what="the rebalance"
        )
        report = settled(run.service.last_rebalance, [0, 1])
        assert (report.restored[0].kind, report.restored[0].records) == (RestoreKind.DELTA, 0)
        assert markers() == 1  # nothing was written since: no second marker
    (marker,) = [r for r in kafka.logs[changelog_0] if r.key == ROLL_MARKER]
    assert marker.value is None
    # A full read takes the marker for the deletion of nothing it is.
    restored = decode_sessions(
        0,
        {
            r.key: r.value
            for r in kafka.logs[changelog_0]
            if kafka.visible(r) and r.key is not None and r.value is not None
        },
    )
    assert len(restored) == 2


def test_a_newcomer_expects_what_the_sticky_assignment_will_give_it() -> None:
    owners = {"a": frozenset(range(12))}
    assert expected_share("raw", 12, owners) == [6, 7, 8, 9, 10, 11]
    owners = {"a": frozenset(range(6)), "b": frozenset(range(6, 12))}
    assert expected_share("raw", 12, owners) == [4, 5, 10, 11]
    assert expected_share("raw", 4, {}) == [0, 1, 2, 3]  # an empty group: everything


async def test_a_joining_processor_reads_its_share_ahead_and_restores_only_the_delta() -> None:
    """A owns both partitions; B, about to join, reads partition 1 (its expected share) while A
    goes on; A writes more to partition 1 meanwhile; once B is given partition 1, it reads only
    what A wrote since its read ahead."""
    kafka = FakeKafka(assign_at_start=False)
    settings = fake_settings()
    sessions = sessions_on(kafka, 1, 3)
    t0 = recent_ms()
    async with running_on(kafka, settings) as a:
        await wait_until(lambda: len(kafka.consumers) == 1, what="A's consumer")
        kafka.consumers[0].rebalance([0, 1])
        await wait_until(lambda: rebalance_done(a.service, [0, 1]), what="A owns both")
        feed(kafka, settings, slice_meetings(sessions, t0, 0, 5))
        await wait_until(lambda: committed_all(kafka, settings, [1]), what="A's first part")

        kafka.group = GroupSnapshot(partitions=2, owners={"a": frozenset({0, 1})})
        async with running_on(kafka, settings) as b:
            await wait_until(lambda: len(kafka.consumers) == 2, what="B's consumer")
            assert kafka.changelog_reads[-1] == (1, None)  # read ahead, before joining
            feed(kafka, settings, slice_meetings(sessions, t0, 5, 7))
            await wait_until(lambda: committed_all(kafka, settings, [1]), what="A's second part")
            consumer_a, consumer_b = kafka.consumers
            consumer_a.rebalance([0])
            await wait_until(lambda: rebalance_done(a.service, [0]), what="A gave up 1")
            consumer_b.rebalance([1])
            await wait_until(lambda: rebalance_done(b.service, [1]), what="B has 1")
            report = settled(b.service.last_rebalance, [1])
            assert report.gained == {1}
            assert report.restored[1].kind is RestoreKind.DELTA
            assert report.restored[1].records > 0  # what A wrote after the read ahead
            feed(kafka, settings, slice_meetings(sessions, t0, 7, PER_MEETING))
            await wait_until(lambda: committed_all(kafka, settings, [1]), what="B's part")
    done = summaries(kafka, settings)
    assert sorted(done) == sorted(sessions)
    assert {s.summary.participant_seconds for s in done.values()} == {PARTICIPANT_SECONDS}
    assert duplicates(kafka, settings) == []
