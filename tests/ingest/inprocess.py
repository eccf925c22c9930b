"""Ingest in this process, as production serves it: ``ingest.server.IngestServer`` (the
application on ``IngestRunner``, a real TCP site on ``127.0.0.1:0``), with the in-memory
``FakePublisher`` and a ``FakeClock`` for the read deadlines. Start-up and each exchange take
milliseconds, and no broker is needed."""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, replace
from typing import Any

from ingest.server import IngestServer
from ingest.settings import IngestSettings
from servicekit.env import Secret
from servicekit.kafka import KafkaSettings
from tests import kafka_helpers
from tests.ingest.fake_publisher import FakePublisher
from tests.ingest.raw_http import SECRET, TOKEN, RawResponse, exchange, request_bytes


class FakeClock:
    """The read deadlines' time: moves only when a test says so."""

    def __init__(self, now: float = 1_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@dataclass
class InProcessIngest:
    server: IngestServer
    publisher: FakePublisher
    clock: FakeClock

    @property
    def port(self) -> int:
        return self.server.port

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def sweep(self) -> int:
        """The read-timeout sweep, now (by the fake clock); how many requests were late."""
        return self.server.runner.sweep()

    def time_passes(self, seconds: float) -> int:
        """Advance the clock and sweep: what production's periodic sweep would then do."""
        self.clock.advance(seconds)
        return self.sweep()

    @property
    def open_connections(self) -> int:
        return len(self.server.runner.guard)

    async def metrics(self) -> str:
        response = await self.exchange(request_bytes(b"", target=b"/metrics", method=b"GET"))
        assert response is not None
        return response.body.decode()

    async def exchange(self, data: bytes, *, within: float = 5.0) -> RawResponse | None:
        return await exchange(self.port, data, within=within)


def fake_settings(**overrides: Any) -> IngestSettings:
    """Loopback, a free port; the shared token and signed callbacks configured unless
    overridden (``auth_token=None, jwt_secret=None`` for none)."""
    settings = IngestSettings(
        kafka=KafkaSettings(bootstrap_servers="fake-publisher:9092", topic_prefix="inprocess."),
        host="127.0.0.1",
        port=0,
        auth_token=Secret(TOKEN),
        jwt_secret=Secret(SECRET),
        readiness_interval_s=0.2,
    )
    return replace(settings, **overrides)


@contextlib.asynccontextmanager
async def running_ingest(
    settings: IngestSettings,
    *,
    publisher: FakePublisher | None = None,
    max_connections: int = 1024,
) -> AsyncIterator[InProcessIngest]:
    publisher = publisher or FakePublisher()
    clock = FakeClock()
    server = IngestServer(
        settings, max_connections=max_connections, publisher=publisher, clock=clock
    )
    await server.start()
    try:
        yield InProcessIngest(server, publisher, clock)
    finally:
        publisher.release()  # nothing left hanging past the test
        await server.stop()


async def wait_until(condition: Callable[[], bool], *, what: str, within: float = 5.0) -> None:
    """``tests.kafka_helpers.wait_until`` at the pace of an in-process server (milliseconds)."""
    await kafka_helpers.wait_until(condition, what=what, within=within, interval=0.005)


@contextlib.contextmanager
def threaded_ingest(settings: IngestSettings) -> Iterator[InProcessIngest]:
    """``running_ingest`` on an event loop of its own thread, for synchronous tests
    (hypothesis): the same server, reached over its port."""
    started: concurrent.futures.Future[InProcessIngest] = concurrent.futures.Future()
    loop = asyncio.new_event_loop()
    stop = asyncio.Event()

    async def run() -> None:
        try:
            async with running_ingest(settings) as ingest:
                started.set_result(ingest)
                await stop.wait()
        except BaseException as exc:
            if not started.done():
                started.set_exception(exc)
            raise

    thread = threading.Thread(target=loop.run_until_complete, args=(run(),), daemon=True)
    thread.start()
    try:
        yield started.result(timeout=10)
    finally:
        loop.call_soon_threadsafe(stop.set)
        thread.join(timeout=10)
        loop.close()
