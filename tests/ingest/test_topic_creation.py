"""Ingest never causes the raw topic to be created (contract §3), even by a broker that would.

The broker here runs with ``auto.create.topics.enable=true``: a metadata request naming a
missing topic creates it (with ``num.partitions=1``), which the control test proves. While the
raw topic is missing, ingest answers 503 and readiness is off; once the topic is created on
purpose, ingest accepts callbacks into it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import aiohttp
import orjson
import pytest
from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient

from ingest.server import IngestServer
from ingest.settings import IngestSettings
from schemas.topics import RAW
from servicekit.kafka import KafkaSettings
from tests.ingest.conftest import read_raw
from tests.kafka_helpers import create_topic, unique_name, wait_until
from tools.devkafka import EmbeddedKafka

BODY = orjson.dumps({"event": "session:started", "session_id": "s-1", "room_id": "r-1"})
PROBE_INTERVAL_S = 0.2
OBSERVATION_S = 3.0
"""How long the topic must stay absent: about 15 readiness probes and 15 refused callbacks."""


@pytest.fixture(scope="module")
def auto_creating_broker() -> Iterator[str]:
    with EmbeddedKafka(extra_properties={"auto.create.topics.enable": "true"}) as broker:
        yield broker.bootstrap_servers


async def topic_partitions(bootstrap: str, topic: str) -> int | None:
    """The topic's partition count, or ``None`` when the broker does not have it."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        if topic not in await admin.list_topics():
            return None
        [description] = await admin.describe_topics([topic])
        return len(description["partitions"])
    finally:
        await admin.close()


async def stays_absent(bootstrap: str, topic: str) -> bool:
    """True when ``topic`` did not appear within the observation window."""
    try:
        await wait_until(
            lambda: _exists(bootstrap, topic), what=f"{topic} to appear", within=OBSERVATION_S
        )
    except AssertionError:
        return True
    return False


async def _exists(bootstrap: str, topic: str) -> bool:
    return await topic_partitions(bootstrap, topic) is not None


async def test_control_a_plain_producer_does_create_the_topic(auto_creating_broker: str) -> None:
    """Without ingest's precaution, one send is enough: the test below could fail."""
    topic = unique_name("raw-control")
    producer = AIOKafkaProducer(bootstrap_servers=auto_creating_broker)
    await producer.start()
    try:
        await producer.send_and_wait(topic, BODY)
    finally:
        await producer.stop()
    assert await topic_partitions(auto_creating_broker, topic) == 1


@pytest.fixture
async def client(auto_creating_broker: str) -> AsyncIterator[tuple[aiohttp.ClientSession, str]]:
    prefix = unique_name("auto") + "."
    topic = RAW.name_under(prefix)
    settings = IngestSettings(
        kafka=KafkaSettings(bootstrap_servers=auto_creating_broker, topic_prefix=prefix),
        produce_timeout_s=0.3,  # how long a callback waits for a missing topic to appear
        readiness_interval_s=PROBE_INTERVAL_S,
        retry_after_s=7,
        host="127.0.0.1",
        port=0,
    )
    server = IngestServer(settings, max_connections=1024)  # production's, on Kafka
    await server.start()
    try:
        async with aiohttp.ClientSession(f"http://127.0.0.1:{server.port}") as http:
            yield http, topic
    finally:
        await server.stop()


async def test_a_missing_raw_topic_is_503_and_is_never_created(
    client: tuple[aiohttp.ClientSession, str], auto_creating_broker: str
) -> None:
    http, topic = client
    readiness = await http.get("/readyz")
    assert (readiness.status, await readiness.json()) == (503, {"status": "raw_topic_missing"})

    for _ in range(15):
        response = await http.post(
            "/callbacks", data=BODY, headers={"Content-Type": "application/json"}
        )
        assert response.status == 503
        assert response.headers["Retry-After"] == "7"
        payload = await response.json()
        assert payload["error"] == "unavailable"
        assert topic in payload["detail"]
    assert await stays_absent(auto_creating_broker, topic)
    assert (await http.get("/readyz")).status == 503

    # Created on purpose, with its own partition count: ingest picks it up by itself.
    await create_topic(auto_creating_broker, topic, partitions=3)

    async def ready() -> bool:
        return (await http.get("/readyz")).status == 200

    await wait_until(ready, what="readiness once the topic exists")

    async def stored() -> bool:  # a sender retries a 503 (the produce timeout here is short)
        response = await http.post(
            "/callbacks", data=BODY, headers={"Content-Type": "application/json"}
        )
        assert response.status in (204, 503)
        return response.status == 204

    await wait_until(stored, what="a 204 once the topic exists")
    await read_raw(auto_creating_broker, topic, until_body=BODY)
    assert await topic_partitions(auto_creating_broker, topic) == 3
