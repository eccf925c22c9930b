"""Failures the processor cannot get past are loud: a partition it cannot restore turns
readiness off, is named with its cause in the log and the metrics, its producer is closed, the
other partitions go on, and after the grace period the process gives up (a real process exits
with status 1, its ``/readyz`` and ``/metrics`` saying why). And readiness means owning,
restored, what the group assigned.

An undecodable state record runs on both backends; the faults only the fake can make (a hanging
or failing restore, a producer that cannot start, a group that has assigned nothing yet) run on
the fake; the process's exit status and HTTP endpoints need a real process, so a real broker."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import replace
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from prometheus_client import REGISTRY

from processor.metrics import PARTITION_FAILED
from processor.runtime import PartitionFailedError
from processor.runtime.changelog_read import RestoreError
from processor.runtime.committer import transactional_id
from processor.settings import ProcessorSettings
from tests.kafka_helpers import wait_until
from tests.processor.runtime.backends import Backend, FakeBackend, RealBackend, all_ended
from tests.processor.runtime.fakes import FakeKafka, fake_settings, running_on
from tests.processor.runtime.processor_process import ProcessorProcess
from tests.processor.runtime.scripted_meeting import meetings, recent_ms


def failed_metric(partition: int, cause: str) -> float | None:
    return REGISTRY.get_sample_value(
        "processor_partition_failed", {"partition": str(partition), "cause": cause}
    )


def ready_metric() -> float | None:
    return REGISTRY.get_sample_value("processor_ready")


@pytest.fixture(autouse=True)
def fresh_failure_metric() -> None:
    PARTITION_FAILED.clear()


async def fails_loudly(backend: Backend, cause: str, caplog: pytest.LogCaptureFixture) -> str:
    """Run until partition 1 fails and the processor gives up; partition 0 keeps working
    meanwhile. Returns why partition 1 failed."""
    backend.configure(fatal_exit_delay_s=0.5 * backend.slowness)
    settings = backend.settings
    [canary] = backend.sessions_on(0, 1)
    async with backend.running() as run:
        run.failure_expected = True
        await wait_until(lambda: 1 in run.service.failed_partitions, what="partition 1 failed")
        assert not run.service.ready
        assert failed_metric(1, cause) == 1
        await backend.feed(meetings([canary], t0=recent_ms()))
        await all_ended(backend, [canary], what="the canary to end")
        reason = run.service.failed_partitions[1]
        with pytest.raises(PartitionFailedError, match=r"partition 1: "):
            await asyncio.wait_for(asyncio.shield(run.task), settings.fatal_exit_delay_s + 5)
    stopped = backend.producers_stopped(transactional_id(settings, 1))
    assert stopped != []
    assert all(stopped)
    logged = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert any(m.startswith(f"partition 1 cannot be processed ({cause})") for m in logged)
    return reason


async def test_an_undecodable_state_record_fails_its_partition_loudly(
    backend: Backend, caplog: pytest.LogCaptureFixture
) -> None:
    await backend.append(
        backend.settings.topics.changelog, b"2_MX40-broken", b"\x00garbage", partition=1
    )
    reason = await fails_loudly(backend, "restore", caplog)
    assert "undecodable changelog key b'2_MX40-broken'" in reason


async def test_a_restore_that_hangs_fails_its_partition_after_the_time_limit(
    caplog: pytest.LogCaptureFixture,
) -> None:
    backend = FakeBackend()
    backend.configure(restore_timeout_s=0.3)
    backend.kafka.restore_gates[1] = asyncio.Event()  # never set
    reason = await fails_loudly(backend, "restore_timeout", caplog)
    assert reason == "not restored within 0.3 s (was reading its sessions back)"


async def test_a_producer_that_cannot_be_created_fails_its_partition_loudly(
    caplog: pytest.LogCaptureFixture,
) -> None:
    backend = FakeBackend()
    tid = transactional_id(backend.settings, 1)
    backend.kafka.fail_producer_start = lambda transactional_id: transactional_id == tid
    reason = await fails_loudly(backend, "producer", caplog)
    assert reason.startswith("starting its producer: KafkaConnectionError")


async def test_a_restore_error_is_reported_with_its_cause(
    caplog: pytest.LogCaptureFixture,
) -> None:
    backend = FakeBackend()
    backend.kafka.fail_restore[1] = RestoreError(1, "the changelog topic is gone")
    assert await fails_loudly(backend, "restore", caplog) == "the changelog topic is gone"


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
        await wait_until(lambda: ready_metric() == 0, what="processor_ready 0 while restoring")
        gate.set()
        await wait_until(lambda: run.service.ready, what="ready")
        assert run.service.restoring_partitions == []
        await wait_until(lambda: ready_metric() == 1, what="processor_ready 1")
    assert ready_metric() == 0  # stopped


async def test_a_member_assigned_nothing_is_ready() -> None:
    kafka = FakeKafka(assign_at_start=False)
    async with running_on(kafka, fake_settings()) as run:
        await wait_until(lambda: bool(kafka.consumers), what="the consumer")
        kafka.consumers[0].rebalance([])
        await wait_until(lambda: run.service.ready, what="ready with no partitions")
        assert run.service.assigned_partitions == []
        await wait_until(lambda: ready_metric() == 1, what="processor_ready 1, standing by")


async def test_a_process_that_cannot_restore_a_partition_says_so_over_http_then_exits_1(
    settings: ProcessorSettings, tmp_path: Path
) -> None:
    await RealBackend(settings).append(
        settings.topics.changelog, b"2_MX40-broken", b"\x00garbage", partition=1
    )
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
