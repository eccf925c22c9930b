"""docker-compose.yml run for real: a meeting end to end, three processors sharing the partitions,
a graceful stop that loses no acknowledged callback, and nothing left behind.

The tests share one stack (``stack`` in conftest.py) and run in this order; each leaves it in the
state the next one starts from.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import uuid
from pathlib import Path

import aiohttp
import pytest
from aiokafka import AIOKafkaConsumer

from schemas.topics import RAW, SESSIONS
from tests.containers.conftest import Stack
from tests.kafka_helpers import wait_until

pytestmark = pytest.mark.containers

BIN = Path(sys.executable).parent
INGEST = "http://127.0.0.1:8080"
HOST_BOOTSTRAP = "127.0.0.1:9092"
PARTITIONS = 12  # TOPIC_PARTITIONS in docker-compose.yml


def simulate(seed: int, sessions: int) -> None:
    result = subprocess.run(
        [str(BIN / "meetings-simulate"), "--url", INGEST, "--sessions", str(sessions),
         "--seed", str(seed), "--quiet"],
        capture_output=True, text=True, timeout=180, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    assert "every callback was accepted" in result.stdout, result.stdout


def tail_sessions(records: int) -> list[str]:
    """The first ``records`` values of the sessions topic, read by ``meetings-tail`` on the host
    through the broker's host listener (as docs/deployment.md shows)."""
    result = subprocess.run(
        [str(BIN / "meetings-tail"), SESSIONS.name, "--bootstrap", HOST_BOOTSTRAP,
         "--json", "--max", str(records), "--timeout", "120"],
        capture_output=True, text=True, timeout=180, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout.splitlines()


async def sessions_seen(sessions: int, within: float = 120.0) -> dict[str, set[str]]:
    """Read the sessions topic (read_committed) until ``sessions`` sessions have started and
    ended; every event exactly once (a later ``session.ended`` revision has its own id)."""
    consumer = AIOKafkaConsumer(
        SESSIONS.name,
        bootstrap_servers=HOST_BOOTSTRAP,
        isolation_level="read_committed",
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    seen: dict[str, set[str]] = {"session.started": set(), "session.ended": set()}
    event_ids: list[str] = []
    await consumer.start()
    try:

        async def complete() -> bool:
            for records in (await consumer.getmany(timeout_ms=500)).values():
                for record in records:
                    event = json.loads(record.value)
                    event_ids.append(event["event_id"])
                    seen[event["type"]].add(event["session_id"])
            return all(len(ids) >= sessions for ids in seen.values())

        await wait_until(complete, what=f"{sessions} sessions started and ended", within=within)
    finally:
        await consumer.stop()
    assert len(event_ids) == len(set(event_ids)), "a derived event was published twice"
    return seen


def owned_partitions(stack: Stack, replicas: int) -> list[list[int]]:
    """Each processor container's partitions, from its own /readyz."""
    probe = (
        "import json, urllib.request; "
        "print(json.dumps(json.load(urllib.request.urlopen('http://127.0.0.1:8081/readyz', "
        "timeout=3))['partitions']))"
    )
    owned = []
    for index in range(1, replicas + 1):
        result = stack.compose.run(
            "exec", "-T", "--index", str(index), "processor", "python", "-c", probe, check=False
        )
        owned.append(json.loads(result.stdout) if result.returncode == 0 else [])
    return owned


async def test_meetings_go_through_and_host_tools_reach_the_broker(stack: Stack) -> None:
    simulate(seed=1, sessions=5)
    seen = await sessions_seen(5)
    assert {kind: len(ids) for kind, ids in seen.items()} == {
        "session.started": 5,
        "session.ended": 5,
    }
    tailed = [json.loads(line) for line in tail_sessions(5)]
    assert len(tailed) == 5
    assert {event["session_id"] for event in tailed} <= seen["session.started"]


async def test_three_processors_own_all_partitions_and_the_next_meeting_comes_through(
    stack: Stack,
) -> None:
    stack.compose.run("up", "--detach", "--no-build", "--no-recreate", "--scale", "processor=3")
    await asyncio.to_thread(stack.wait_healthy, stack.healthy(processors=3))

    async def shared_out() -> bool:
        owned = await asyncio.to_thread(owned_partitions, stack, 3)
        flat = sorted(p for partitions in owned for p in partitions)
        return all(owned) and flat == list(range(PARTITIONS))

    await wait_until(shared_out, what="three processors owning all partitions", within=120)
    owned = owned_partitions(stack, 3)
    assert sorted(len(partitions) for partitions in owned) == [4, 4, 4], owned

    simulate(seed=2, sessions=5)
    seen = await sessions_seen(10)
    assert {kind: len(ids) for kind, ids in seen.items()} == {
        "session.started": 10,
        "session.ended": 10,
    }


async def test_compose_stop_loses_no_acknowledged_callback(stack: Stack) -> None:
    acknowledged: list[str] = []
    stopping = asyncio.Event()

    async def send_until_refused(http: aiohttp.ClientSession) -> None:
        while not stopping.is_set():
            session_id = f"stop-{uuid.uuid4().hex}"
            body = {"event": "session:started", "session_id": session_id, "room_id": "r-stop",
                    "started_at": "2021-11-02T15:53:28.753Z"}  # fmt: skip
            try:
                async with http.post(f"{INGEST}/callbacks", json=body) as response:
                    if 200 <= response.status < 300:
                        acknowledged.append(session_id)
            except (aiohttp.ClientError, TimeoutError):
                # Refused or unanswered while the listener closes: a sender retries.
                await asyncio.sleep(0.05)

    timeout = aiohttp.ClientTimeout(total=10)
    async with aiohttp.ClientSession(timeout=timeout) as http:
        senders = [asyncio.create_task(send_until_refused(http)) for _ in range(4)]
        await wait_until(lambda: len(acknowledged) >= 200, what="load before the stop", within=60)
        # The services first, so they drain into a broker that is still there (compose v1 on
        # podman does not always wait for them before stopping what they depend on).
        # Without --timeout: each service's stop_grace_period applies.
        await asyncio.to_thread(stack.compose.run, "stop", "ingest", "processor")
        await asyncio.to_thread(stack.compose.run, "stop", "--timeout", "30")
        stopping.set()
        await asyncio.gather(*senders)
    # Ingest and the processors drained and exited 0 (a kill after the grace period gives 137).
    states = stack.states()
    assert states["ingest"] == ["exited:0"], states
    assert states["processor"] == ["exited:0"] * 3, states

    # The brokers' data outlives their containers' stop: start them alone, read the raw topic.
    stack.compose.run("start", *stack.brokers)
    await asyncio.to_thread(stack.wait_healthy, dict.fromkeys(stack.brokers, 1))
    wanted = set(acknowledged)
    consumer = AIOKafkaConsumer(
        RAW.name,
        bootstrap_servers=HOST_BOOTSTRAP,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    await consumer.start()
    try:
        stored: set[str] = set()

        async def all_stored() -> bool:
            batches = await consumer.getmany(timeout_ms=500)
            for records in batches.values():
                for record in records:
                    stored.add(json.loads(record.value).get("session_id", ""))
            return wanted <= stored

        await wait_until(all_stored, what=f"{len(wanted)} acknowledged callbacks", within=120)
    finally:
        await consumer.stop()


def test_down_leaves_no_container_network_or_volume(stack: Stack) -> None:
    stack.compose.run("down", "--volumes", "--remove-orphans", "--timeout", "30")
    assert stack.engine.leftovers(stack.compose.project) == {
        "containers": [],
        "networks": [],
        "volumes": [],
    }
