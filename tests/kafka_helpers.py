"""Helpers for tests that talk to a real broker: unique names, topics, bounded waits."""

from __future__ import annotations

import asyncio
import contextlib
import io
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

from aiokafka import AIOKafkaConsumer

from tools.devkafka.admin import create_topic as create_topic  # re-exported for the tests

ConsumerRecord = Any  # aiokafka.structs.ConsumerRecord; aiokafka ships no type information

DEFAULT_TIMEOUT = 30.0


def unique_name(prefix: str) -> str:
    """A topic or group name no other test (or earlier run on the same cluster) uses."""
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


async def wait_until(
    condition: Callable[[], bool | Awaitable[bool]],
    *,
    what: str,
    within: float = DEFAULT_TIMEOUT,
    interval: float = 0.05,
) -> None:
    """Poll ``condition`` until it holds; fail with ``what`` after ``within`` seconds."""
    deadline = time.monotonic() + within
    while True:
        outcome = condition()
        if not isinstance(outcome, bool):
            outcome = await outcome
        if outcome:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {within:.0f} s waiting for {what}")
        await asyncio.sleep(interval)  # polling interval of a condition wait


async def consume_until(
    consumer: AIOKafkaConsumer,
    done: Callable[[list[ConsumerRecord]], bool],
    *,
    what: str,
    within: float = DEFAULT_TIMEOUT,
) -> list[ConsumerRecord]:
    """Collect records until ``done(records)`` holds; fail after ``within`` seconds."""
    records: list[ConsumerRecord] = []
    deadline = time.monotonic() + within
    while not done(records):
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise AssertionError(
                f"timed out after {within:.0f} s waiting for {what}; got {len(records)} records: "
                f"{[record.value for record in records][:20]}"
            )
        batches = await consumer.getmany(timeout_ms=int(min(remaining, 0.5) * 1000))
        for partition_records in batches.values():
            records.extend(partition_records)
    return records


async def consume_count(
    consumer: AIOKafkaConsumer, count: int, *, within: float = DEFAULT_TIMEOUT
) -> list[ConsumerRecord]:
    return await consume_until(
        consumer, lambda records: len(records) >= count, what=f"{count} records", within=within
    )


async def in_thread(
    main: object, args: list[str], environ: dict[str, str] | None = None, *, within: float = 180
) -> tuple[int, str, str]:
    """A command's ``main(args, environ)`` in a thread (it runs its own event loop): its
    status, stdout and stderr."""
    out, err = io.StringIO(), io.StringIO()

    def run() -> int:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            status: int = main(args, environ)  # type: ignore[operator]
            return status

    status = await asyncio.wait_for(asyncio.to_thread(run), within)
    return status, out.getvalue(), err.getvalue()
