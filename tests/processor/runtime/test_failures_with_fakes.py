"""Failures the processor cannot get past are loud (fake Kafka): a partition it cannot restore
turns readiness off, is named with its cause in the log and the metrics, its producer is closed,
the other partitions go on, and after the grace period the process gives up. And readiness
means owning, restored, what the group assigned."""

from __future__ import annotations

import asyncio
import logging

import pytest
from prometheus_client import REGISTRY

from processor.metrics import PARTITION_FAILED
from processor.runtime import PartitionFailedError
from processor.runtime.changelog_read import RestoreError
from processor.runtime.committer import transactional_id
from processor.settings import ProcessorSettings
from tests.kafka_helpers import wait_until
from tests.processor.runtime.fakes import FakeKafka, fake_settings, running_on
from tests.processor.runtime.meeting import recent_ms
from tests.processor.runtime.scenario import feed, meetings, sessions_on, summaries


def failed_metric(partition: int, cause: str) -> float | None:
    return REGISTRY.get_sample_value(
        "processor_partition_failed", {"partition": str(partition), "cause": cause}
    )


@pytest.fixture(autouse=True)
def fresh_failure_metric() -> None:
    PARTITION_FAILED.clear()


async def fails_loudly(
    kafka: FakeKafka, settings: ProcessorSettings, cause: str, caplog: pytest.LogCaptureFixture
) -> str:
    """Run until partition 1 fails and the processor gives up; partition 0 keeps working
    meanwhile. Returns why partition 1 failed."""
    [canary] = sessions_on(kafka, 0, 1)
    async with running_on(kafka, settings) as run:
        run.failure_expected = True
        await wait_until(lambda: 1 in run.service.failed_partitions, what="partition 1 failed")
        assert not run.service.ready
        assert failed_metric(1, cause) == 1
        feed(kafka, settings, meetings([canary], t0=recent_ms()))
        await wait_until(lambda: canary in summaries(kafka, settings), what="the canary to end")
        reason = run.service.failed_partitions[1]
        with pytest.raises(PartitionFailedError, match=r"partition 1: "):
            await asyncio.wait_for(asyncio.shield(run.task), settings.fatal_exit_delay_s + 5)
    tid = transactional_id(settings, 1)
    assert [p.stopped for p in kafka.producers if p.transactional_id == tid] != []
    assert all(p.stopped for p in kafka.producers if p.transactional_id == tid)
    logged = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert any(m.startswith(f"partition 1 cannot be processed ({cause})") for m in logged)
    return reason


async def test_an_undecodable_state_record_fails_its_partition_loudly(
    caplog: pytest.LogCaptureFixture,
) -> None:
    kafka = FakeKafka()
    settings = fake_settings(fatal_exit_delay_s=0.5)
    kafka.append(settings.topics.changelog, b"2_MX40-broken", b"\x00garbage", partition=1)
    reason = await fails_loudly(kafka, settings, "restore", caplog)
    assert "undecodable changelog key b'2_MX40-broken'" in reason


async def test_a_restore_that_hangs_fails_its_partition_after_the_time_limit(
    caplog: pytest.LogCaptureFixture,
) -> None:
    kafka = FakeKafka()
    settings = fake_settings(fatal_exit_delay_s=0.5, restore_timeout_s=0.3)
    kafka.restore_gates[1] = asyncio.Event()  # never set
    reason = await fails_loudly(kafka, settings, "restore_timeout", caplog)
    assert reason == "not restored within 0.3 s (was reading its sessions back)"


async def test_a_producer_that_cannot_be_created_fails_its_partition_loudly(
    caplog: pytest.LogCaptureFixture,
) -> None:
    kafka = FakeKafka()
    settings = fake_settings(fatal_exit_delay_s=0.5)
    kafka.fail_producer_start = lambda tid: tid == transactional_id(settings, 1)
    reason = await fails_loudly(kafka, settings, "producer", caplog)
    assert reason.startswith("starting its producer: KafkaConnectionError")


async def test_a_restore_error_is_reported_with_its_cause(
    caplog: pytest.LogCaptureFixture,
) -> None:
    kafka = FakeKafka()
    settings = fake_settings(fatal_exit_delay_s=0.5)
    kafka.fail_restore[1] = RestoreError(1, "the state topic is gone")
    assert await fails_loudly(kafka, settings, "restore", caplog) == "the state topic is gone"


async def test_stopping_during_the_grace_period_exits_cleanly() -> None:
    kafka = FakeKafka()
    settings = fake_settings(fatal_exit_delay_s=60)
    kafka.fail_restore[1] = RestoreError(1, "broken")
    async with running_on(kafka, settings) as run:
        await wait_until(lambda: 1 in run.service.failed_partitions, what="partition 1 failed")
    assert kafka.consumers[0].stopped


async def test_ready_only_once_the_assigned_partitions_are_restored() -> None:
    kafka = FakeKafka(assign_at_start=False)
    settings = fake_settings()
    gate = kafka.restore_gates[0] = asyncio.Event()
    async with running_on(kafka, settings) as run:
        await wait_until(lambda: bool(kafka.consumers), what="the consumer")
        assert not run.service.ready  # consuming, but the group has assigned nothing yet
        kafka.consumers[0].rebalance([0, 1])
        await wait_until(lambda: run.service.assigned_partitions == [0, 1], what="assigned")
        await wait_until(lambda: run.service.restoring_partitions == [0], what="1 restored")
        assert not run.service.ready
        gate.set()
        await wait_until(lambda: run.service.ready, what="ready")
        assert run.service.restoring_partitions == []


async def test_a_member_assigned_nothing_is_ready() -> None:
    kafka = FakeKafka(assign_at_start=False)
    async with running_on(kafka, fake_settings()) as run:
        await wait_until(lambda: bool(kafka.consumers), what="the consumer")
        kafka.consumers[0].rebalance([])
        await wait_until(lambda: run.service.ready, what="ready with no partitions")
        assert run.service.assigned_partitions == []
