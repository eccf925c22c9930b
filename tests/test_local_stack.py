"""The newcomer's flow, automated: `make run` (tools.devkafka.stack), `meetings-simulate`, then
`meetings-tail` of the sessions topic; Ctrl-C leaves nothing running."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import pytest

from schemas.topics import SESSIONS
from tests.kafka_helpers import wait_until
from tools.devkafka import free_port

BIN = Path(sys.executable).parent


def descendants(pid: int) -> set[int]:
    """Every process below ``pid`` right now (children, their children, ...)."""
    found: set[int] = set()
    pending = [pid]
    while pending:
        parent = pending.pop()
        tasks = Path(f"/proc/{parent}/task")
        if not tasks.exists():
            continue
        for task in tasks.iterdir():
            try:
                children = (task / "children").read_text().split()
            except FileNotFoundError:
                continue
            for child in map(int, children):
                if child not in found:
                    found.add(child)
                    pending.append(child)
    return found


def alive(pid: int) -> bool:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return False
    return "State:\tZ" not in status  # a zombie has exited


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[tuple[subprocess.Popen[bytes], dict[str, int], Path]]:
    ports = {"kafka": free_port(), "ingest": free_port(), "processor": free_port()}
    log = tmp_path / "stack.log"
    with log.open("wb") as output:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "tools.devkafka.stack",
                "--kafka-port",
                str(ports["kafka"]),
                "--ingest-port",
                str(ports["ingest"]),
                "--processor-port",
                str(ports["processor"]),
            ],
            stdout=output,
            stderr=subprocess.STDOUT,
            # `make run` on a machine without a cluster: the stack's own broker on that port,
            # even when the suite itself was pointed at another (KAFKA_BOOTSTRAP_SERVERS).
            env={k: v for k, v in os.environ.items() if k != "KAFKA_BOOTSTRAP_SERVERS"},
        )
    try:
        yield process, ports, log
    finally:
        for pid in descendants(process.pid):  # only if the test failed half-way
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        if process.poll() is None:
            process.kill()
            process.wait()


async def run_command(*args: str, within: float) -> tuple[int, str]:
    process = await asyncio.create_subprocess_exec(
        *args, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT
    )
    output, _ = await asyncio.wait_for(process.communicate(), within)
    assert process.returncode is not None
    return process.returncode, output.decode(errors="replace")


async def test_run_simulate_tail_and_stop_leaving_nothing_behind(
    stack: tuple[subprocess.Popen[bytes], dict[str, int], Path],
) -> None:
    process, ports, log = stack
    ingest = f"http://127.0.0.1:{ports['ingest']}"
    async with aiohttp.ClientSession() as http:

        async def ready(url: str) -> bool:
            if process.poll() is not None:
                raise AssertionError(f"the stack exited early:\n{log.read_text()}")
            try:
                async with http.get(url) as response:
                    return response.status == 200
            except aiohttp.ClientConnectionError:
                return False

        await wait_until(lambda: ready(f"{ingest}/readyz"), what="ingest ready", within=120)
        await wait_until(
            lambda: ready(f"http://127.0.0.1:{ports['processor']}/readyz"),
            what="processor ready",
            within=60,
        )

    await wait_until(
        lambda: "The pipeline is running" in log.read_text(), what="the banner", within=60
    )
    start_up = log.read_text().split("The pipeline is running")[0].splitlines()
    # A clean start says what started and nothing alarming: no warning or error lines, and
    # none of the Kafka clients' routine chatter.
    alarming = [
        line for line in start_up if '"level":"warning"' in line or '"level":"error"' in line
    ]
    assert alarming == [], "\n".join(start_up)
    assert len(start_up) <= 15, "\n".join(start_up)

    code, simulated = await run_command(
        str(BIN / "meetings-simulate"), "--url", ingest, "--sessions", "10", "--seed", "1",
        "--quiet", within=120,
    )  # fmt: skip
    assert code == 0, simulated
    assert "every callback was accepted" in simulated

    code, tailed = await run_command(
        str(BIN / "meetings-tail"), SESSIONS.name, "--bootstrap",
        f"127.0.0.1:{ports['kafka']}", "--max", "20", "--timeout", "90", within=120,
    )  # fmt: skip
    assert code == 0, tailed
    lines = tailed.splitlines()
    assert sum(" session.started " in line for line in lines) == 10, tailed
    assert sum(" session.ended " in line for line in lines) == 10, tailed

    below = descendants(process.pid)
    assert len(below) >= 3  # the broker, ingest and the processor
    process.send_signal(signal.SIGINT)  # what Ctrl-C in the terminal sends
    assert await asyncio.to_thread(process.wait, 90) == 0, log.read_text()
    assert [pid for pid in below if alive(pid)] == []
