"""A processor whose start fails stops every client it had started: no connection or
background task outlives the failed ``run`` (a real process would exit and drop them, but a
service embedded in a longer-lived process, or restarted in one, must not leak them)."""

from __future__ import annotations

import asyncio
from dataclasses import replace

import pytest
from aiokafka.errors import KafkaConnectionError

from processor.runtime import ProcessorService
from processor.settings import Guarantee
from tests.processor.runtime.fakes import FakeKafka, fake_settings


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
