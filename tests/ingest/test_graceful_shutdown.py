"""Graceful shutdown, broker-free (the production server in this process, fake publisher):
readiness drops and new callbacks are refused, the listener closes, in-flight callbacks finish
(acknowledged), and only then does the publisher stop. ``test_shutdown.py`` does the same with
SIGTERM to real processes on a real broker."""

from __future__ import annotations

import asyncio

import orjson

from tests.ingest.conftest import IngestFactory
from tests.ingest.fake_publisher import FakePublisher, Mode
from tests.ingest.raw_http import read_response, request_bytes

BODY = orjson.dumps({"event": "session:started", "session_id": "s-stop", "room_id": "r"})
REQUEST = request_bytes(BODY, [(b"Content-Type", b"application/json")])


async def test_draining_refuses_new_callbacks_and_readiness(make_ingest: IngestFactory) -> None:
    ingest = await make_ingest(retry_after_s=3)
    ingest.server.begin_shutdown()
    refused = await ingest.exchange(REQUEST)
    assert refused is not None
    assert refused.status == 503
    assert refused.headers["retry-after"] == "3"
    assert "shutting down" in refused.json()["detail"]
    readiness = await ingest.exchange(request_bytes(b"", target=b"/readyz", method=b"GET"))
    assert readiness is not None
    assert (readiness.status, readiness.json()["status"]) == (503, "shutting_down")
    assert ingest.publisher.records == []


async def test_in_flight_callbacks_finish_before_the_publisher_stops(
    make_ingest: IngestFactory,
) -> None:
    publisher = FakePublisher(mode=Mode.HANG)
    ingest = await make_ingest(publisher=publisher)
    port = ingest.port
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(REQUEST)
        await publisher.wait_for("waiting")
        stopping = asyncio.create_task(ingest.server.stop())
        # The listener closes while the callback is still in flight...
        async with asyncio.timeout(5):
            while True:
                try:
                    _, probe = await asyncio.open_connection("127.0.0.1", port)
                except OSError:  # refused (or reset while the listener closed)
                    break
                probe.close()
        assert not stopping.done()
        assert publisher.events == ["started"]
        # ...and once it is acknowledged it is answered, then the publisher stops.
        publisher.release()
        async with asyncio.timeout(5):
            response = await read_response(reader)
            await stopping
    finally:
        writer.close()
    assert response is not None
    assert response.status == 204
    assert publisher.events == ["started", "stored", "stopped"]
