"""Ingest throughput and latency against the framework's ceiling, measured in one run.

1. Maximum requests/s of a bare aiohttp handler (reads the body, answers 204) and of ingest
   with durable Kafka acknowledgement (``acks=all``), one process each, same load generator.
2. Ingest's latency (p50, p99) at half its own maximum rate, open loop.
3. Ingest with several worker processes on one port.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator

import orjson

from bench.http_load import max_throughput, open_loop_latency
from bench.report import emit
from schemas.topics import RAW
from tools.devkafka import EmbeddedKafka, free_port
from tools.devkafka.admin import create_topic

BODY = orjson.dumps(
    {
        "event": "session:participant:joined",
        "participant_id": "b424e1c4-e988-4ce2-8ab9-e3efea7de542",
        "session_id": "2_MX40NjMzOTg5Mn5-MTYzNTg2ODQwODY4NH41cXIzMDdSa1BZa05BUDFpYnhxcTV4MCt-fg",
        "room_id": "b307d837-c0ce-4619-8c5c-70e418ef9693",
        "name": "New Joiner",
        "type": "Guest",
        "is_host": True,
    }
)
CONNECTIONS = 32
SECONDS = 8.0


@contextlib.contextmanager
def kafka() -> Iterator[str]:
    external = os.environ.get("KAFKA_BOOTSTRAP_SERVERS")
    if external:
        yield external
        return
    with EmbeddedKafka() as broker:
        yield broker.bootstrap_servers


@contextlib.contextmanager
def serving(command: list[str], port: int, environ: dict[str, str]) -> Iterator[str]:
    process = subprocess.Popen(command, env={**os.environ, **environ}, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_for_port(port, process)
        yield f"{url}/callbacks"
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()


def _wait_for_port(port: int, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{process.args!r} exited with {process.returncode}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
            time.sleep(0.5)  # let the producer connect before load starts
            return
        time.sleep(0.05)
    raise RuntimeError(f"nothing listened on port {port}")


def ingest_command(
    bootstrap: str, prefix: str, port: int, workers: int
) -> tuple[list[str], dict[str, str]]:
    return [sys.executable, "-m", "ingest"], {
        "KAFKA_BOOTSTRAP_SERVERS": bootstrap,
        "MEETINGS_TOPIC_PREFIX": prefix,
        "INGEST_HOST": "127.0.0.1",
        "INGEST_PORT": str(port),
        "INGEST_WORKERS": str(workers),
        "INGEST_LOG_LEVEL": "warning",
    }


def run() -> None:
    emit(f"ingest: POST of a {len(BODY)}-byte callback, {CONNECTIONS} connections, {SECONDS:.0f} s")
    with kafka() as bootstrap:
        prefix = f"bench-{os.getpid()}."
        asyncio.run(create_topic(bootstrap, RAW.name_under(prefix), partitions=4))
        port = free_port()
        with serving([sys.executable, "-m", "bench.bare_server", str(port)], port, {}) as url:
            bare = max_throughput(url, BODY, connections=CONNECTIONS, seconds=SECONDS)
        port = free_port()
        command, environ = ingest_command(bootstrap, prefix, port, workers=1)
        with serving(command, port, environ) as url:
            ingest = max_throughput(url, BODY, connections=CONNECTIONS, seconds=SECONDS)
            latency = asyncio.run(
                open_loop_latency(url, BODY, rate=ingest.requests_per_second / 2, seconds=SECONDS)
            )
        port = free_port()
        command, environ = ingest_command(bootstrap, prefix, port, workers=2)
        with serving(command, port, environ) as url:
            scaled = max_throughput(url, BODY, connections=CONNECTIONS, seconds=SECONDS)

    ratio = ingest.requests_per_second / bare.requests_per_second
    scaling = scaled.requests_per_second / ingest.requests_per_second
    emit(f"  load generator: {bare.tool}")
    emit(f"  bare aiohttp handler (ceiling)       {bare.requests_per_second:>10,.0f} req/s")
    emit(f"  ingest, acks=all, 1 worker           {ingest.requests_per_second:>10,.0f} req/s")
    emit(f"  ingest / bare ratio: {ratio:.2f}x (goal >= 0.50)")
    emit(
        f"  ingest at {latency.rate:,.0f} req/s (half its max; achieved "
        f"{latency.achieved_rate:,.0f}): p50 {latency.p50_ms:.1f} ms, "
        f"p99 {latency.p99_ms:.1f} ms (goal p99 < 25 ms)"
    )
    emit(f"  ingest, acks=all, 2 workers          {scaled.requests_per_second:>10,.0f} req/s")
    emit(f"  2 workers / 1 worker: {scaling:.2f}x")
    errors = bare.errors + ingest.errors + latency.errors + scaled.errors
    if errors:
        emit(f"  WARNING: {errors} requests were not answered 204")


if __name__ == "__main__":
    run()
