"""HTTP load generation for the benchmarks: maximum rate (wrk when installed, else aiohttp) and
an open-loop fixed rate with latency percentiles.

The open loop schedules each request at its own time and measures latency from that scheduled
time, so a stalled server is charged for the requests it made wait (no coordinated omission).
"""

from __future__ import annotations

import asyncio
import re
import shutil
import statistics
import subprocess
import tempfile
import time
import urllib.parse
from dataclasses import dataclass
from pathlib import Path

import aiohttp

JSON_HEADERS = {"Content-Type": "application/json"}
_POOL = 64
"""Connections of the open-loop generator: enough that none waits at the target rates."""


@dataclass(frozen=True, slots=True)
class Throughput:
    requests_per_second: float
    errors: int
    tool: str


@dataclass(frozen=True, slots=True)
class Latency:
    rate: float
    achieved_rate: float
    p50_ms: float
    p99_ms: float
    errors: int


def max_throughput(url: str, body: bytes, *, connections: int, seconds: float) -> Throughput:
    if shutil.which("wrk"):
        return _wrk(url, body, connections=connections, seconds=seconds)
    return asyncio.run(_closed_loop(url, body, connections=connections, seconds=seconds))


def _wrk(url: str, body: bytes, *, connections: int, seconds: float) -> Throughput:
    with tempfile.TemporaryDirectory() as scratch:
        script = Path(scratch) / "post.lua"
        lua_body = body.decode().replace("\\", "\\\\").replace('"', '\\"')
        script.write_text(
            'wrk.method = "POST"\n'
            f'wrk.body = "{lua_body}"\n'
            'wrk.headers["Content-Type"] = "application/json"\n'
        )
        result = subprocess.run(
            ["wrk", "-t1", f"-c{connections}", f"-d{seconds:.0f}s", "-s", str(script), url],
            capture_output=True,
            text=True,
            check=True,
        )
    rate = re.search(r"Requests/sec:\s+([\d.]+)", result.stdout)
    if rate is None:
        raise RuntimeError(f"unexpected wrk output:\n{result.stdout}")
    non_2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", result.stdout)
    socket_errors = re.search(r"Socket errors:.*", result.stdout)
    errors = int(non_2xx.group(1)) if non_2xx else 0
    if socket_errors:
        errors += sum(int(n) for n in re.findall(r"\d+", socket_errors.group(0)))
    return Throughput(float(rate.group(1)), errors, "wrk")


async def _closed_loop(url: str, body: bytes, *, connections: int, seconds: float) -> Throughput:
    completed = 0
    errors = 0
    deadline = time.monotonic() + seconds
    connector = aiohttp.TCPConnector(limit=connections)
    async with aiohttp.ClientSession(connector=connector, headers=JSON_HEADERS) as session:

        async def worker() -> None:
            nonlocal completed, errors
            while time.monotonic() < deadline:
                async with session.post(url, data=body) as response:
                    await response.read()
                    if response.status == 204:
                        completed += 1
                    else:
                        errors += 1

        began = time.monotonic()
        await asyncio.gather(*(worker() for _ in range(connections)))
        elapsed = time.monotonic() - began
    return Throughput(completed / elapsed, errors, "aiohttp client")


async def open_loop_latency(url: str, body: bytes, *, rate: float, seconds: float) -> Latency:
    """Send at ``rate`` requests/s for ``seconds``; latency from each request's scheduled time.

    Raw keep-alive HTTP/1.1 over a pool of connections with a pre-built request, so the
    generator costs a few microseconds per request and does not become the bottleneck.
    """
    parsed = urllib.parse.urlsplit(url)
    host, port = parsed.hostname or "127.0.0.1", parsed.port or 80
    request = (
        f"POST {parsed.path} HTTP/1.1\r\nHost: {host}:{port}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    ).encode() + body
    idle: asyncio.Queue[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = asyncio.Queue()
    for _ in range(_POOL):
        idle.put_nowait(await asyncio.open_connection(host, port))
    latencies: list[float] = []
    errors = 0

    async def one(scheduled: float) -> None:
        nonlocal errors
        reader, writer = await idle.get()
        writer.write(request)
        head = await reader.readuntil(b"\r\n\r\n")
        latencies.append((time.monotonic() - scheduled) * 1000)
        if not head.startswith(b"HTTP/1.1 204"):
            errors += 1
            length = re.search(rb"Content-Length: (\d+)", head, re.IGNORECASE)
            if length:
                await reader.readexactly(int(length.group(1)))
        idle.put_nowait((reader, writer))

    total = int(rate * seconds)
    in_flight: set[asyncio.Task[None]] = set()
    began = time.monotonic()
    for number in range(total):  # a dispatcher that starts each request at its time
        scheduled = began + number / rate
        delay = scheduled - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        task = asyncio.create_task(one(scheduled))
        in_flight.add(task)
        task.add_done_callback(in_flight.discard)
    await asyncio.gather(*in_flight)
    elapsed = time.monotonic() - began
    while not idle.empty():
        _, writer = idle.get_nowait()
        writer.close()
    ordered = sorted(latencies)
    return Latency(
        rate=rate,
        achieved_rate=len(latencies) / elapsed,
        p50_ms=statistics.median(ordered),
        p99_ms=ordered[int(len(ordered) * 0.99) - 1],
        errors=errors,
    )
