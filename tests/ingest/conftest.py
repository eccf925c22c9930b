"""Fixtures for ingest tests: a unique raw topic, the app under test, a raw-topic reader, and
one real ingest process for the hostile-input tests."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager
from dataclasses import replace
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer
from aiokafka import AIOKafkaConsumer

from ingest.app import init_app
from ingest.settings import IngestSettings
from schemas.topics import RAW
from servicekit.kafka import KafkaSettings
from tests.ingest.hostile import HostileTarget, assert_quiet_log, spawned_target
from tests.kafka_helpers import ConsumerRecord, consume_until, create_topic, unique_name

ClientFactory = Callable[..., Awaitable[TestClient[Any, Any]]]


@pytest.fixture
def topic_prefix() -> str:
    """Names this test's topics (``<prefix>callbacks.raw``, ...)."""
    return unique_name("ingest") + "."


@pytest.fixture
async def raw_topic(kafka_bootstrap: str, topic_prefix: str) -> str:
    return await create_topic(kafka_bootstrap, RAW.name_under(topic_prefix), partitions=4)


@pytest.fixture
def ingest_settings(kafka_bootstrap: str, topic_prefix: str, raw_topic: str) -> IngestSettings:
    return IngestSettings(
        kafka=KafkaSettings(bootstrap_servers=kafka_bootstrap, topic_prefix=topic_prefix),
        produce_timeout_s=5.0,
        readiness_interval_s=0.2,
    )


@pytest.fixture
async def make_client(ingest_settings: IngestSettings) -> AsyncIterator[ClientFactory]:
    """``await make_client(**setting_overrides)``: the real app on a real port, real producer."""
    clients: list[TestClient[Any, Any]] = []

    async def make(**overrides: Any) -> TestClient[Any, Any]:
        client = TestClient(
            TestServer(init_app(replace(ingest_settings, **overrides))),
            headers={"Content-Type": "application/json"},  # as Vonage sends
        )
        await client.start_server()
        clients.append(client)
        return client

    yield make
    for client in clients:
        await client.close()


@pytest.fixture
async def client(make_client: ClientFactory) -> TestClient[Any, Any]:
    return await make_client()


@asynccontextmanager
async def raw_reader(bootstrap: str, topic: str) -> AsyncIterator[AIOKafkaConsumer]:
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        isolation_level="read_committed",
    )
    await consumer.start()
    try:
        yield consumer
    finally:
        await consumer.stop()


async def read_raw(
    bootstrap: str, topic: str, *, until_body: bytes, within: float = 30.0
) -> list[ConsumerRecord]:
    """Every record of ``topic`` up to and including one whose value is ``until_body``."""
    async with raw_reader(bootstrap, topic) as consumer:
        return await consume_until(
            consumer,
            lambda records: any(r.value == until_body for r in records),
            what=f"the record {until_body[:60]!r}",
            within=within,
        )


async def read_stored(
    bootstrap: str, topic: str, *, body: bytes, within: float = 30.0
) -> ConsumerRecord:
    """The record of ``topic`` whose value is ``body``.

    Records of other partitions may arrive after it, so it is not simply the last one read.
    """
    records = await read_raw(bootstrap, topic, until_body=body, within=within)
    return next(record for record in records if record.value == body)


def header_map(record: ConsumerRecord) -> dict[str, bytes]:
    return dict(record.headers)


@pytest.fixture(scope="module")
def hostile_service(
    kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[HostileTarget]:
    with spawned_target(kafka_bootstrap, tmp_path_factory.mktemp("hostile")) as target:
        yield target


@pytest.fixture
def target(hostile_service: HostileTarget) -> Iterator[HostileTarget]:
    """The shared service; after the test, its log must hold no traceback and no error."""
    hostile_service.log_offset = len(hostile_service.service.log())
    yield hostile_service
    assert_quiet_log(hostile_service.new_log())
