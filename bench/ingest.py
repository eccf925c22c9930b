"""Ingest throughput and latency against the framework's ceiling, measured in one run.

1. Maximum requests/s of a bare aiohttp handler (reads the body, answers 204) and of ingest
   with durable Kafka acknowledgement (``acks=all``), one process each, same load generator,
   in interleaved rounds; the ratio is of the median rounds.
2. Ingest's latency (p50, p99) at half its own maximum rate, open loop.
3. Ingest with several worker processes on one port.
4. What the hostile-input hardening costs per request, against ingest's own time per request
   (goal: at most 5%): the request checks against the previous checks (in-process), and the
   bare handler served through ingest's connection protocol against the plain one (HTTP).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import orjson

from bench.broker import BOOTSTRAP_VARIABLE, kafka
from bench.goals import Goal, at_least, at_most, below
from bench.http_load import Throughput, max_throughput, open_loop_latency
from bench.ingest_checks import nanoseconds_per_call
from bench.report import emit
from schemas.topics import RAW
from tools.devkafka import free_port
from tools.devkafka.admin import create_topic
from tools.simulator.signing import VonageSigner

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
ROUNDS = 3
WARM_UP_SECONDS = 10.0
"""Load before ingest's first measurement, not counted: a broker started by the bench has not yet
compiled its produce path (the JVM's JIT), which the bare handler does not need."""


@contextlib.contextmanager
def serving(command: list[str], port: int, environ: dict[str, str]) -> Iterator[str]:
    with serving_process(command, port, environ) as (url, _):
        yield url


@contextlib.contextmanager
def serving_process(
    command: list[str], port: int, environ: dict[str, str]
) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    process = subprocess.Popen(command, env={**os.environ, **environ}, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_for_port(port, process)
        yield f"{url}/callbacks", process
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


SIGNATURE_SECRET = "bench-signature-secret-0123456789abcdef"
"""``INGEST_JWT_SECRET`` of the signed ingest: 32 bytes or more, as production should use."""
SIGNED = {
    "Authorization": VonageSigner(SIGNATURE_SECRET, "bench", "bench-application").authorization(
        BODY
    )
}
"""One signed callback's header, sent with every request: ingest keeps no record of tokens
seen, so verifying the same token costs what verifying a fresh one does (decoding, HS256 over
the token, SHA-256 of the body against ``payload_hash``)."""


def ingest_command(
    bootstrap: str, prefix: str, port: int, workers: int, *, signature_secret: str | None = None
) -> tuple[list[str], dict[str, str]]:
    """``python -m ingest`` and its environment; with ``signature_secret``, signed callbacks
    are required on ``/callbacks``, their ``payload_hash`` too (as production runs it)."""
    environ = {
        BOOTSTRAP_VARIABLE: bootstrap,
        "MEETINGS_TOPIC_PREFIX": prefix,
        "INGEST_HOST": "127.0.0.1",
        "INGEST_PORT": str(port),
        "INGEST_WORKERS": str(workers),
        "INGEST_LOG_LEVEL": "warning",
    }
    if signature_secret is not None:
        environ |= {"INGEST_JWT_SECRET": signature_secret, "INGEST_JWT_PAYLOAD_HASH": "required"}
    return [sys.executable, "-m", "ingest"], environ


def run() -> list[Goal]:
    emit(
        f"ingest: POST of a {len(BODY)}-byte callback, {CONNECTIONS} connections, "
        f"{SECONDS:.0f} s per measurement, median of {ROUNDS} interleaved rounds "
        f"(ingest after {WARM_UP_SECONDS:.0f} s of warm-up); ingest verifies a signed callback "
        "(HS256 JWT with payload_hash), and is measured unsigned beside"
    )
    with kafka() as bootstrap:
        prefix = f"bench-{os.getpid()}."
        asyncio.run(create_topic(bootstrap, RAW.name_under(prefix), partitions=4))
        signed_port, unsigned_port = free_port(), free_port()
        signed_command, signed_environ = ingest_command(
            bootstrap, prefix, signed_port, workers=1, signature_secret=SIGNATURE_SECRET
        )
        unsigned_command, unsigned_environ = ingest_command(
            bootstrap, prefix, unsigned_port, workers=1
        )
        plain: list[CpuCost] = []
        hardened: list[CpuCost] = []
        signed: list[CpuCost] = []
        unsigned: list[CpuCost] = []
        with (
            serving_process(signed_command, signed_port, signed_environ) as signed_server,
            serving_process(unsigned_command, unsigned_port, unsigned_environ) as unsigned_server,
        ):
            (signed_url, signed_process), (unsigned_url, unsigned_process) = (
                signed_server,
                unsigned_server,
            )
            for url, headers in ((signed_url, SIGNED), (unsigned_url, {})):
                max_throughput(
                    url, BODY, connections=CONNECTIONS, seconds=WARM_UP_SECONDS / 2, headers=headers
                )
            # The contenders take turns, so a machine that speeds up or slows down during the
            # run moves them all alike.
            for _ in range(ROUNDS):
                plain.append(cpu_cost("bench.bare_server", seconds=SECONDS))
                hardened.append(cpu_cost("bench.hardened_server", seconds=SECONDS))
                signed.append(serving_cost(signed_url, signed_process.pid, SECONDS, SIGNED))
                unsigned.append(serving_cost(unsigned_url, unsigned_process.pid, SECONDS, {}))
            best = _median(signed)
            latency = asyncio.run(
                open_loop_latency(
                    signed_url,
                    BODY,
                    rate=best.throughput.requests_per_second / 2,
                    seconds=SECONDS,
                    headers=SIGNED,
                )
            )
        port = free_port()
        command, environ = ingest_command(
            bootstrap, prefix, port, workers=2, signature_secret=SIGNATURE_SECRET
        )
        with serving(command, port, environ) as url:
            # The broker is warm by now.
            max_throughput(url, BODY, connections=CONNECTIONS, seconds=2.0, headers=SIGNED)
            scaled = max_throughput(
                url, BODY, connections=CONNECTIONS, seconds=SECONDS, headers=SIGNED
            )

    bare, one = _median(plain).throughput, best.throughput
    bare_rate = bare.requests_per_second
    ratio = one.requests_per_second / bare_rate
    unsigned_rate = _median(unsigned).throughput.requests_per_second
    scaling = scaled.requests_per_second / one.requests_per_second
    emit(f"  load generator: {bare.tool}")
    emit(f"  bare aiohttp handler (ceiling)       {bare_rate:>10,.0f} req/s" + _spread(plain))
    emit(
        f"  ingest, signed, acks=all, 1 worker   {one.requests_per_second:>10,.0f} req/s"
        + _spread(signed)
    )
    emit(
        f"  ingest, unsigned, acks=all, 1 worker {unsigned_rate:>10,.0f} req/s" + _spread(unsigned)
    )
    emit(
        f"  ingest / bare ratio: signed {ratio:.2f}x (goal >= 0.50), "
        f"unsigned {unsigned_rate / bare_rate:.2f}x"
    )
    emit(
        f"  signature verification: {best.cpu_us_per_request:.0f} us of CPU per request signed, "
        f"{_median(unsigned).cpu_us_per_request:.0f} us unsigned"
    )
    emit(
        f"  ingest, signed, at {latency.rate:,.0f} req/s (half its max; achieved "
        f"{latency.achieved_rate:,.0f}): p50 {latency.p50_ms:.1f} ms, "
        f"p99 {latency.p99_ms:.1f} ms (goal p99 < 25 ms)"
    )
    emit(f"  ingest, signed, acks=all, 2 workers  {scaled.requests_per_second:>10,.0f} req/s")
    emit(f"  2 workers / 1 worker: {scaling:.2f}x")
    hardening = report_hardening(best.cpu_us_per_request, plain, hardened)
    errors = latency.errors + scaled.errors
    errors += sum(cost.throughput.errors for cost in plain + hardened + signed + unsigned)
    if errors:
        emit(f"  WARNING: {errors} requests were not answered 204")
    return [
        at_least("ingest, signed callbacks / bare aiohttp", ratio, 0.50),
        below("ingest p99 at half its max rate", latency.p99_ms, 25, unit="ms"),
        at_most("hostile-input hardening, share of ingest's CPU", hardening * 100, 5, unit="%"),
    ]


def _median(costs: list[CpuCost]) -> CpuCost:
    """The round of median throughput."""
    return sorted(costs, key=lambda cost: cost.throughput.requests_per_second)[len(costs) // 2]


def _spread(costs: list[CpuCost]) -> str:
    rates = [cost.throughput.requests_per_second for cost in costs]
    return f" ({len(rates)} rounds: {min(rates):,.0f}-{max(rates):,.0f})"


@dataclass(frozen=True, slots=True)
class CpuCost:
    throughput: Throughput
    cpu_us_per_request: float
    """Server CPU (user + system) per request: far steadier than req/s on a shared machine."""


def cpu_cost(module: str, *, seconds: float) -> CpuCost:
    port = free_port()
    with serving_process([sys.executable, "-m", module, str(port)], port, {}) as (url, process):
        return serving_cost(url, process.pid, seconds)


def serving_cost(
    url: str, pid: int, seconds: float, headers: Mapping[str, str] | None = None
) -> CpuCost:
    """Max throughput of the server ``pid`` listening at ``url``, and its CPU per request."""
    before = _cpu_seconds(pid)
    throughput = max_throughput(
        url, BODY, connections=CONNECTIONS, seconds=seconds, headers=headers
    )
    used = _cpu_seconds(pid) - before
    return CpuCost(throughput, used / (throughput.requests_per_second * seconds) * 1e6)


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime


def report_hardening(ingest_cpu_us: float, plain: list[CpuCost], hardened: list[CpuCost]) -> float:
    """The protocol's cost is the hardened bare handler's CPU per request minus the plain one's;
    the checks' cost is measured in-process; both against ingest's own CPU per request."""
    plain_us = statistics.fmean(cost.cpu_us_per_request for cost in plain)
    hardened_us = statistics.fmean(cost.cpu_us_per_request for cost in hardened)
    emit(
        f"  bare handler CPU per request: plain {plain_us:.1f} us, through ingest's protocol "
        f"{hardened_us:.1f} us (runs: "
        + ", ".join(f"{cost.cpu_us_per_request:.1f}" for cost in plain + hardened)
        + ")"
    )
    unicode_body = BODY.replace(b"New Joiner", "Zoë Ñandú".encode())
    checks_us = 0.0
    for label, body in (("ASCII body", BODY), ("non-ASCII body", unicode_body)):
        previous_ns, current_ns = nanoseconds_per_call(body)
        emit(
            f"  request checks, {label}: previous {previous_ns / 1000:.2f} us, "
            f"current {current_ns / 1000:.2f} us per request"
        )
        checks_us = max(checks_us, (current_ns - previous_ns) / 1000)
    added_us = max(hardened_us - plain_us, 0.0) + checks_us
    emit(
        f"  hardening adds {added_us:.1f} us of CPU to ingest's {ingest_cpu_us:.0f} us per "
        f"request: {added_us / ingest_cpu_us:.1%} of its throughput (goal <= 5%)"
    )
    return added_us / ingest_cpu_us


if __name__ == "__main__":
    run()
