"""Broker down: 503 within the produce timeout, recovery without restarting ingest, and no
request that got a 2xx is missing from the topic."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import aiohttp
import orjson
import pytest

from ingest.settings import IngestSettings
from schemas.topics import RAW
from servicekit.kafka import KafkaSettings
from tests.ingest.conftest import ClientFactory, raw_reader
from tests.kafka_helpers import consume_until, create_topic, wait_until
from tools.devkafka import EmbeddedKafka, free_port


async def test_unreachable_kafka_gives_503_with_retry_after_in_time(
    make_client: ClientFactory,
) -> None:
    client = await make_client(
        kafka=KafkaSettings(bootstrap_servers=f"127.0.0.1:{free_port()}"),
        produce_timeout_s=0.5,
        retry_after_s=7,
    )
    began = time.monotonic()
    response = await client.post("/callbacks", data=b'{"event": "session:started"}')
    elapsed = time.monotonic() - began
    assert response.status == 503
    assert response.headers["Retry-After"] == "7"
    assert (await response.json())["error"] == "unavailable"
    assert elapsed < 0.5 + 1.0  # the produce timeout, plus slack for a loaded machine
    ready = await client.get("/readyz")
    assert ready.status == 503
    assert (await ready.json())["status"] == "kafka_unavailable"


async def test_missing_raw_topic_makes_ingest_unready(
    make_client: ClientFactory, kafka_bootstrap: str, caplog: pytest.LogCaptureFixture
) -> None:
    healthy = await make_client()
    missing = await make_client(
        kafka=KafkaSettings(bootstrap_servers=kafka_bootstrap, topic_prefix="does-not-exist.")
    )

    async def ready(client: aiohttp.ClientSession) -> bool:
        return (await client.get("/readyz")).status == 200

    await wait_until(lambda: ready(healthy), what="the control instance to be ready")
    await wait_until(
        lambda: f"{RAW.name_under('does-not-exist.')} does not exist" in caplog.text,
        what="the readiness probe to look for the topic",
    )
    assert not await ready(missing)


@pytest.fixture
def own_broker(tmp_path: Path) -> Iterator[EmbeddedKafka]:
    """A broker this test may stop and start again (the session broker stays untouched)."""
    broker = EmbeddedKafka(workdir=tmp_path / "kafka")
    with broker:
        yield broker


class Sender:
    """Keeps POSTing distinct callbacks from several concurrent loops, remembering outcomes."""

    def __init__(self, client: aiohttp.ClientSession, concurrency: int = 4) -> None:
        self._client = client
        self._concurrency = concurrency
        self._next = 0
        self.accepted: list[bytes] = []
        self.unavailable = 0
        self.other: list[int] = []
        self._tasks: list[asyncio.Task[None]] = []
        self._stop = False

    async def _loop(self) -> None:
        while not self._stop:
            self._next += 1
            body = orjson.dumps(
                {"event": "session:participant:joined", "session_id": f"s-{self._next % 16}",
                 "participant_id": f"p-{self._next}", "room_id": "r", "seq": self._next}
            )  # fmt: skip
            response = await self._client.post("/callbacks", data=body)
            if response.status == 204:
                self.accepted.append(body)
            elif response.status == 503:
                self.unavailable += 1
                assert response.headers["Retry-After"]
                await asyncio.sleep(0.05)  # a polite client backs off before retrying
            else:
                self.other.append(response.status)

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[Sender]:
        self._tasks = [asyncio.create_task(self._loop()) for _ in range(self._concurrency)]
        try:
            yield self
        finally:
            self._stop = True
            await asyncio.gather(*self._tasks)


async def test_requests_through_a_broker_restart_lose_nothing(
    make_client: ClientFactory, own_broker: EmbeddedKafka
) -> None:
    bootstrap = own_broker.bootstrap_servers
    topic = await create_topic(bootstrap, RAW.name, partitions=4)
    client = await make_client(
        kafka=KafkaSettings(bootstrap_servers=bootstrap), produce_timeout_s=1.0
    )

    async def ready() -> bool:
        return (await client.get("/readyz")).status == 200

    sender = Sender(client)
    async with sender.running():
        await wait_until(lambda: len(sender.accepted) >= 50, what="50 accepted callbacks")
        await asyncio.to_thread(own_broker.stop)
        await wait_until(lambda: sender.unavailable >= 5, what="503s while Kafka is down")
        assert not await ready()
        accepted_during_outage = len(sender.accepted)
        await asyncio.to_thread(own_broker.start)
        await wait_until(
            lambda: len(sender.accepted) >= accepted_during_outage + 50,
            what="callbacks accepted again after the broker returned",
            within=60,
        )
        await wait_until(ready, what="readiness to recover", within=30)

    assert sender.other == []
    async with raw_reader(bootstrap, topic) as consumer:
        expected = set(sender.accepted)
        stored = await consume_until(
            consumer,
            lambda records: expected <= {r.value for r in records},
            what=f"all {len(expected)} acknowledged callbacks",
        )
    assert expected <= {record.value for record in stored}


def test_settings_defaults_match_the_spec() -> None:
    defaults = IngestSettings()
    assert (defaults.host, defaults.port) == ("0.0.0.0", 8080)
    assert defaults.kafka.bootstrap_servers == "127.0.0.1:9092"
    assert defaults.max_body_bytes == 64 * 1024
    assert defaults.raw_topic == RAW.name_under("meetings.")
