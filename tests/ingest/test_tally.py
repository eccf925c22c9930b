"""Metric tallies: counted on the request path, handed to prometheus-client in bulk."""

from __future__ import annotations

import asyncio

from prometheus_client import CollectorRegistry, Counter, Gauge

from ingest.metrics import tally
from tests.kafka_helpers import wait_until


def _value(registry: CollectorRegistry, name: str) -> float | None:
    return registry.get_sample_value(name)


def test_a_counter_sees_its_tally_only_when_flushed() -> None:
    registry = CollectorRegistry()
    counter = Counter("tally_test_events", "test", registry=registry)
    pending = tally.counter_tally(counter)
    assert tally.counter_tally(counter) is pending  # one tally per counter, shared
    pending.pending += 3
    assert _value(registry, "tally_test_events_total") == 0
    tally.flush()
    assert (_value(registry, "tally_test_events_total"), pending.pending) == (3, 0)
    tally.flush()  # nothing more to hand over
    assert _value(registry, "tally_test_events_total") == 3


def test_a_gauge_takes_the_level_at_each_flush() -> None:
    registry = CollectorRegistry()
    gauge = Gauge("tally_test_level", "test", registry=registry)
    level = tally.level_tally(gauge)
    level.value += 2
    tally.flush()
    assert _value(registry, "tally_test_level") == 2
    level.value -= 2
    tally.flush()
    assert _value(registry, "tally_test_level") == 0


async def test_the_flusher_flushes_periodically_and_once_more_when_cancelled() -> None:
    registry = CollectorRegistry()
    counter = Counter("tally_test_flushed", "test", registry=registry)
    pending = tally.counter_tally(counter)
    flusher = asyncio.create_task(tally.flushing(interval_s=0.01))
    pending.pending += 1
    await wait_until(
        lambda: _value(registry, "tally_test_flushed_total") == 1, what="a periodic flush"
    )
    pending.pending += 1  # counted after the last periodic flush, handed over on cancel
    flusher.cancel()
    await asyncio.gather(flusher, return_exceptions=True)
    assert _value(registry, "tally_test_flushed_total") == 2
