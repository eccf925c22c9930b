"""SIGTERM under concurrent load: every 2xx is in the topic, the process drains and exits 0;
and several workers share one port."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import orjson
import pytest

from tests.ingest.conftest import raw_reader
from tests.ingest.service import IngestService
from tests.kafka_helpers import consume_until, wait_until


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(headers={"Content-Type": "application/json"}) as session:
        yield session


@contextlib.asynccontextmanager
async def running_service(
    environ: dict[str, str], tmp_path: Path, http: aiohttp.ClientSession
) -> AsyncIterator[IngestService]:
    service = IngestService(environ, tmp_path / "ingest.log")
    try:
        await service.start(http)
        yield service
    finally:
        service.kill()


class Load:
    """Concurrent senders that stop when the service no longer accepts connections."""

    def __init__(self, http: aiohttp.ClientSession, url: str, senders: int) -> None:
        self._http = http
        self._url = url
        self.accepted: list[bytes] = []
        self.refused: list[int] = []
        self._counter = 0
        self._tasks = [asyncio.create_task(self._send()) for _ in range(senders)]

    async def _send(self) -> None:
        while True:
            self._counter += 1
            body = orjson.dumps(
                {"event": "session:participant:left", "session_id": f"s-{self._counter % 8}",
                 "participant_id": f"p-{self._counter}", "room_id": "r"}
            )  # fmt: skip
            try:
                async with self._http.post(f"{self._url}/callbacks", data=body) as response:
                    if response.status == 204:
                        self.accepted.append(body)
                    else:
                        assert response.status == 503, response.status
                        assert response.headers["Retry-After"]
                        self.refused.append(response.status)
            except aiohttp.ClientError:
                return  # the listener closed: a sender would now retry elsewhere

    async def finished(self) -> None:
        await asyncio.gather(*self._tasks)


async def test_sigterm_under_load_drains_and_loses_nothing(
    kafka_bootstrap: str,
    topic_prefix: str,
    raw_topic: str,
    tmp_path: Path,
    http: aiohttp.ClientSession,
) -> None:
    environ = {
        "KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap,
        "MEETINGS_TOPIC_PREFIX": topic_prefix,
        "INGEST_DRAIN_DELAY_S": "1",
    }
    async with running_service(environ, tmp_path, http) as service:
        load = Load(http, service.url, senders=16)
        await wait_until(lambda: len(load.accepted) >= 200, what="200 accepted callbacks")
        service.terminate()

        async def readiness_dropped() -> bool:
            async with http.get(f"{service.url}/readyz") as response:
                return response.status == 503

        # During the drain delay the listener is still open but says "not ready".
        await wait_until(readiness_dropped, what="readiness to drop after SIGTERM", within=5)
        exit_code = await service.wait_exit()
        await load.finished()
        log = service.log()

    assert exit_code == 0, log
    assert '"msg":"ingest stopped"' in log
    assert load.refused, "requests during the drain should have been refused with 503"
    async with raw_reader(kafka_bootstrap, raw_topic) as consumer:
        expected = set(load.accepted)
        stored = await consume_until(
            consumer,
            lambda records: expected <= {r.value for r in records},
            what=f"all {len(expected)} acknowledged callbacks",
        )
    assert expected <= {record.value for record in stored}


def children_of(pid: int) -> set[int]:
    children: set[int] = set()
    for task in Path(f"/proc/{pid}/task").iterdir():
        text = (task / "children").read_text().split()
        children.update(int(child) for child in text)
    return children


def is_alive(pid: int) -> bool:
    return Path(f"/proc/{pid}").exists()


async def test_several_workers_share_the_port_and_stop_together(
    kafka_bootstrap: str,
    topic_prefix: str,
    raw_topic: str,
    tmp_path: Path,
    http: aiohttp.ClientSession,
) -> None:
    environ = {
        "KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap,
        "MEETINGS_TOPIC_PREFIX": topic_prefix,
        "INGEST_WORKERS": "3",
    }
    async with running_service(environ, tmp_path, http) as service:
        assert service.process is not None
        workers = children_of(service.process.pid)
        assert len(workers) == 3
        for number in range(30):
            body = orjson.dumps({"event": "session:started", "session_id": f"s-{number}"})
            async with http.post(f"{service.url}/callbacks", data=body) as response:
                assert response.status == 204

        async def all_workers_counted() -> bool:
            async with http.get(f"{service.url}/metrics") as response:
                text = await response.text()
            return 'ingest_requests_total{route="/callbacks",status="204"} 30.0' in text

        # Whichever worker answers the scrape reports the sum over all of them.
        await wait_until(all_workers_counted, what="metrics summed over workers", within=5)
        service.terminate()
        exit_code = await service.wait_exit()
        log = service.log()
    assert exit_code == 0, log
    for worker in workers:
        assert not is_alive(worker), f"worker {worker} outlived the supervisor"
