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
from collections.abc import Callable, Coroutine, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

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


def max_throughput(
    url: str,
    body: bytes,
    *,
    connections: int,
    seconds: float,
    headers: Mapping[str, str] | None = None,
) -> Throughput:
    """Requests/s of POSTs of ``body`` (with ``headers`` besides the JSON content type) over
    ``connections`` keep-alive connections for ``seconds``."""
    extra = dict(headers or {})
    if shutil.which("wrk"):
        return _wrk(url, body, connections=connections, seconds=seconds, headers=extra)
    return asyncio.run(
        _closed_loop(url, body, connections=connections, seconds=seconds, headers=extra)
    )


def _lua_string(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _wrk(
    url: str, body: bytes, *, connections: int, seconds: float, headers: Mapping[str, str]
) -> Throughput:
    with tempfile.TemporaryDirectory() as scratch:
        script = Path(scratch) / "post.lua"
        lines = [
            'wrk.method = "POST"',
            f"wrk.body = {_lua_string(body.decode())}",
            'wrk.headers["Content-Type"] = "application/json"',
            *(f"wrk.headers[{_lua_string(k)}] = {_lua_string(v)}" for k, v in headers.items()),
        ]
        script.write_text("\n".join(lines) + "\n")
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


async def _closed_loop(
    url: str, body: bytes, *, connections: int, seconds: float, headers: Mapping[str, str]
) -> Throughput:
    completed = 0
    errors = 0
    deadline = time.monotonic() + seconds
    connector = aiohttp.TCPConnector(limit=connections)
    sent = {**JSON_HEADERS, **headers}
    async with aiohttp.ClientSession(connector=connector, headers=sent) as session:

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


class RawPool:
    """Keep-alive HTTP/1.1 connections for pre-built requests: a few microseconds a request,
    so an open-loop generator does not become the bottleneck."""

    def __init__(self, url: str) -> None:
        parsed = urllib.parse.urlsplit(url)
        self.host, self.port = parsed.hostname or "127.0.0.1", parsed.port or 80
        self.path = parsed.path
        self._idle: asyncio.Queue[tuple[asyncio.StreamReader, asyncio.StreamWriter]]
        self._idle = asyncio.Queue()

    def post(self, body: bytes, headers: Mapping[str, str] | None = None) -> bytes:
        """The bytes of a JSON POST of ``body`` (with ``headers``) to the pool's URL."""
        extra = "".join(f"{name}: {value}\r\n" for name, value in (headers or {}).items())
        return (
            f"POST {self.path} HTTP/1.1\r\nHost: {self.host}:{self.port}\r\n{extra}"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
        ).encode() + body

    async def open(self, size: int = _POOL) -> None:
        for _ in range(size):
            self._idle.put_nowait(await asyncio.open_connection(self.host, self.port))

    async def exchange(self, request: bytes, on_written: Callable[[], None] | None = None) -> bool:
        """Send ``request`` on an idle connection; True when the answer was a 204."""
        reader, writer = await self._idle.get()
        if on_written is not None:
            on_written()
        writer.write(request)
        head = await reader.readuntil(b"\r\n\r\n")
        accepted = head.startswith(b"HTTP/1.1 204")
        if not accepted:
            length = re.search(rb"Content-Length: (\d+)", head, re.IGNORECASE)
            if length:
                await reader.readexactly(int(length.group(1)))
        self._idle.put_nowait((reader, writer))
        return accepted

    def close(self) -> None:
        while not self._idle.empty():
            _, writer = self._idle.get_nowait()
            writer.close()


async def dispatch_at_rate(
    total: int, rate: float, began: float, start: Callable[[int, float], Coroutine[Any, Any, None]]
) -> float:
    """Start request ``n`` at ``began + n / rate`` (monotonic clock), whatever the earlier ones
    are doing; returns the seconds until the last one finished."""
    in_flight: set[asyncio.Task[None]] = set()
    for number in range(total):
        scheduled = began + number / rate
        delay = scheduled - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        task = asyncio.create_task(start(number, scheduled))
        in_flight.add(task)
        task.add_done_callback(in_flight.discard)
    await asyncio.gather(*in_flight)
    return time.monotonic() - began


async def open_loop_latency(
    url: str,
    body: bytes,
    *,
    rate: float,
    seconds: float,
    headers: Mapping[str, str] | None = None,
) -> Latency:
    """Send at ``rate`` requests/s for ``seconds``; latency from each request's scheduled time."""
    pool = RawPool(url)
    request = pool.post(body, headers)
    await pool.open()
    latencies: list[float] = []
    errors = 0

    async def one(_number: int, scheduled: float) -> None:
        nonlocal errors
        accepted = await pool.exchange(request)
        latencies.append((time.monotonic() - scheduled) * 1000)
        errors += not accepted

    try:
        elapsed = await dispatch_at_rate(int(rate * seconds), rate, time.monotonic(), one)
    finally:
        pool.close()
    ordered = sorted(latencies)
    return Latency(
        rate=rate,
        achieved_rate=len(latencies) / elapsed,
        p50_ms=statistics.median(ordered),
        p99_ms=ordered[int(len(ordered) * 0.99) - 1],
        errors=errors,
    )
