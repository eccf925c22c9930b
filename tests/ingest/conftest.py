"""Fixtures for ingest tests.

Broker-free (most tests): ``ingest`` / ``make_ingest``, the production server in this process
with the in-memory ``FakePublisher`` and a fake clock (``tests/ingest/inprocess.py``), and
``http``, an aiohttp client session pointed at it.

With the real broker (durable publication, outages, topic creation, storage): a unique raw
topic, ``make_client`` (the production server in this process on the Kafka publisher), a
raw-topic reader, and one real ingest process for the hostile-input tests that store."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import replace
from typing import Any

import aiohttp
import pytest
from aiokafka import AIOKafkaConsumer

from ingest.server import IngestServer
from ingest.settings import IngestSettings
from schemas.topics import RAW
from servicekit.kafka import KafkaSettings
from tests.ingest.fake_publisher import FakePublisher
from tests.ingest.inprocess import InProcessIngest, fake_settings, running_ingest
from tests.kafka_helpers import ConsumerRecord, consume_until, create_topic, unique_name

ClientFactory = Callable[..., Awaitable[aiohttp.ClientSession]]
IngestFactory = Callable[..., Awaitable[InProcessIngest]]
JSON_HEADERS = {"Content-Type": "application/json"}  # as Vonage sends


@pytest.fixture
async def make_ingest() -> AsyncIterator[IngestFactory]:
    """``await make_ingest(publisher=..., max_connections=..., **setting_overrides)``: the
    production server in this process on a fake publisher; no authentication unless the
    overrides configure it."""
    async with contextlib.AsyncExitStack() as stack:

        async def make(
            *, publisher: FakePublisher | None = None, max_connections: int = 1024, **overrides: Any
        ) -> InProcessIngest:
            settings = fake_settings(**{"auth_token": None, "jwt_secret": None, **overrides})
            return await stack.enter_async_context(
                running_ingest(settings, publisher=publisher, max_connections=max_connections)
            )

        yield make


@pytest.fixture
async def make_http(make_ingest: IngestFactory) -> AsyncIterator[ClientFactory]:
    """``await make_http(publisher=..., **setting_overrides)``: a client session (relative
    URLs, JSON as Vonage sends) of a new in-process ingest on a fake publisher."""
    async with contextlib.AsyncExitStack() as stack:

        async def make(**overrides: Any) -> aiohttp.ClientSession:
            ingest = await make_ingest(**overrides)
            return await stack.enter_async_context(
                aiohttp.ClientSession(ingest.url, headers=JSON_HEADERS)
            )

        yield make


@pytest.fixture
async def ingest(make_ingest: IngestFactory) -> InProcessIngest:
    return await make_ingest()


@pytest.fixture
async def http(ingest: InProcessIngest) -> AsyncIterator[aiohttp.ClientSession]:
    """A client session for ``ingest`` (relative URLs), sending JSON as Vonage does."""
    async with aiohttp.ClientSession(ingest.url, headers=JSON_HEADERS) as session:
        yield session


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
    """``await make_client(**setting_overrides)``: a client session of the production server
    in this process on the real Kafka publisher."""
    async with contextlib.AsyncExitStack() as stack:

        async def make(**overrides: Any) -> aiohttp.ClientSession:
            settings = replace(ingest_settings, host="127.0.0.1", port=0, **overrides)
            server = IngestServer(settings, max_connections=1024)
            await server.start()
            stack.push_async_callback(server.stop)
            return await stack.enter_async_context(
                aiohttp.ClientSession(f"http://127.0.0.1:{server.port}", headers=JSON_HEADERS)
            )

        yield make


@pytest.fixture
async def client(make_client: ClientFactory) -> aiohttp.ClientSession:
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
