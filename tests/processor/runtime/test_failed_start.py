"""No client outlives the processor: a start that fails stops what it had started, and a
rebalance completed while leaving the group starts nothing (a real process would exit and drop
them, but a service embedded in a longer-lived process, or restarted in one, must not leak
connections or background tasks)."""

from __future__ import annotations

import asyncio
from dataclasses import replace

import pytest
from aiokafka.errors import KafkaConnectionError

from processor.runtime import ProcessorService
from processor.settings import Guarantee
from tests.kafka_helpers import wait_until
from tests.processor.runtime.fakes import FakeKafka, fake_settings, running_on


@pytest.mark.parametrize("guarantee", list(Guarantee))
async def test_a_consumer_that_cannot_start_leaves_no_client_open(guarantee: Guarantee) -> None:
    kafka = FakeKafka()
    settings = fake_settings(guarantee=guarantee)
    consumer = kafka.consumer(settings.topics.raw)

    async def unreachable() -> None:
        raise KafkaConnectionError("no broker reachable")

    consumer.start = unreachable  # type: ignore[method-assign]
    clients = replace(kafka.clients(settings), consumer=lambda: consumer)
    service = ProcessorService(settings, clients)

    with pytest.raises(KafkaConnectionError, match="no broker reachable"):
        await asyncio.wait_for(service.run(asyncio.Event()), 10)

    assert consumer.stopped
    assert all(producer.stopped for producer in kafka.producers)
    if guarantee is Guarantee.AT_LEAST_ONCE:
        assert len(kafka.producers) == 1, "the shared producer was started first"
    assert not service.ready


async def test_partitions_assigned_while_leaving_the_group_are_released_too() -> None:
    """aiokafka finishes a rebalance under way inside ``consumer.stop()``: partitions it
    assigns then get no restore, and no producer outlives the processor."""
    kafka = FakeKafka()
    settings = fake_settings()
    async with running_on(kafka, settings) as run:
        await wait_until(lambda: run.service.ready, what="the processor ready")
        [consumer] = kafka.consumers
        consumer.rebalance_while_leaving(range(kafka.partitions))
    assert consumer.stopped
    assert kafka.producers
    assert [p.transactional_id for p in kafka.producers if not p.stopped] == []
    assert run.service.assigned_partitions == []
