"""Scaling the processor group out and in under load, against a real broker: nothing is lost or
duplicated, partitions move only as far as balance requires, and the partitions a processor
keeps (or gets back) are restored from what it kept plus what others wrote (contract: change
costs what changed)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from processor.runtime import ProcessorService
from processor.runtime.rebalance import RestoreKind
from processor.settings import ProcessorSettings
from tests.kafka_helpers import unique_name, wait_until
from tests.processor.runtime.conftest import PARTITIONS, RawCallback, feed, running
from tests.processor.runtime.scripted_meeting import recent_ms, scripted_meeting
from tests.processor.runtime.test_restart_stop_crash import assert_each_meeting_once, summaries


async def feeding(
    settings: ProcessorSettings, records: list[RawCallback], *, chunks: int
) -> AsyncIterator[None]:
    """Feeds ``records`` in ``chunks`` spread over the scaling (paced, not synchronised)."""
    size = -(-len(records) // chunks)
    for start in range(0, len(records), size):
        await feed(settings, records[start : start + size])
        await asyncio.sleep(0.2)  # pacing of the load, not a wait for anything
        yield


def shares(services: list[ProcessorService]) -> bool:
    """Every partition owned by exactly one of ``services``, all of them restored."""
    owned = [set(s.assigned_partitions) for s in services]
    return (
        all(s.ready for s in services)
        and sum(len(o) for o in owned) == PARTITIONS
        and set().union(*owned) == set(range(PARTITIONS))
    )


async def test_scaling_one_to_three_to_one_under_load_loses_and_duplicates_nothing(
    settings: ProcessorSettings,
) -> None:
    sessions = [unique_name("2_MX40-scale") for _ in range(48)]
    t0 = recent_ms()
    records = [r for s in sessions for r in scripted_meeting(s, unique_name("room"), t0=t0)[:-1]]
    load = feeding(settings, records, chunks=12)
    async with running(settings) as first:
        await anext(load)
        await wait_until(lambda: shares([first]), what="the first processor owns all")
        alone = set(first.assigned_partitions)
        async with contextlib.AsyncExitStack() as more:
            second = await more.enter_async_context(running(settings))
            await anext(load)
            await wait_until(lambda: shares([first, second]), what="two share", within=60)
            # The second read its share ahead of joining: only what the first wrote meanwhile
            # is read once it is given the partitions.
            joined = second.last_rebalance
            assert joined is not None
            assert joined.gained == {2, 3}
            assert {r.kind for r in joined.restored.values()} == {RestoreKind.DELTA}
            third = await more.enter_async_context(running(settings))
            await anext(load)
            await wait_until(
                lambda: shares([first, second, third]), what="three share the partitions", within=60
            )
            kept_by_first = set(first.assigned_partitions)
            assert kept_by_first < alone  # it kept some of its own, gave the rest away
            assert len(kept_by_first) in (1, 2)  # balanced: 4 partitions over 3
            for _ in range(4):
                await anext(load)
        # Two left: the first gets their partitions back.
        await wait_until(lambda: shares([first]), what="the first owns all again", within=60)
        report = first.last_rebalance
        assert report is not None
        # The third's leaving may have handed it some partitions already, never fewer.
        assert report.kept >= kept_by_first
        assert set(report.restored) == set(range(PARTITIONS))
        # What it kept needs nothing read back; what it gets back is read as a delta when it
        # still holds the sessions it had before (KEPT_STATE_MAX_SESSIONS allows it here).
        assert {p: r.kind for p, r in report.restored.items()} == dict.fromkeys(
            range(PARTITIONS), RestoreKind.DELTA
        )
        assert all(report.restored[p].records == 0 for p in kept_by_first)
        async for _ in load:
            pass

        async def all_ended() -> bool:
            return set(sessions) <= set(await summaries(settings))

        await wait_until(all_ended, what="every session to end", within=90)

    await assert_each_meeting_once(settings, sessions)
