"""Per-request metric updates as plain integer arithmetic, published to prometheus-client in bulk.

Every ``Counter.inc`` and ``Gauge.inc`` takes a lock (and, with several workers, writes to a
memory-mapped file); the callback path would take four of them per request, a noticeable share
of ingest's CPU per callback. A tally is a Python int the request path adds to; ``flush`` hands
what has accumulated to the metric. It runs before every scrape this process answers
(``render_metrics``) and once a second (``flushing``), so this process's scrape is exact and
another worker's counts are at most a second late; the flusher flushes once more when it is
cancelled at shutdown, so nothing counted is lost.
"""

from __future__ import annotations

import asyncio

from prometheus_client import Counter, Gauge

FLUSH_INTERVAL_S = 1.0


class CounterTally:
    """Increments of one counter (or labelled child) not yet handed to it."""

    __slots__ = ("counter", "pending")

    def __init__(self, counter: Counter) -> None:
        self.counter = counter
        self.pending = 0

    def flush(self) -> None:
        if self.pending:
            pending, self.pending = self.pending, 0
            self.counter.inc(pending)


class LevelTally:
    """The current value of a gauge, set on it when it changed since the last flush."""

    __slots__ = ("_published", "gauge", "value")

    def __init__(self, gauge: Gauge) -> None:
        self.gauge = gauge
        self.value = 0
        self._published: int | None = None

    def flush(self) -> None:
        if self.value != self._published:
            self._published = self.value
            self.gauge.set(self.value)


_counter_tallies: dict[int, CounterTally] = {}
_level_tallies: list[LevelTally] = []


def counter_tally(counter: Counter) -> CounterTally:
    """The process's one tally of ``counter`` (the same object for every caller)."""
    tally = _counter_tallies.get(id(counter))
    if tally is None:
        tally = _counter_tallies[id(counter)] = CounterTally(counter)
    return tally


def level_tally(gauge: Gauge) -> LevelTally:
    tally = LevelTally(gauge)
    _level_tallies.append(tally)
    return tally


def flush() -> None:
    """Hand every tally's accumulated change to its metric."""
    for counter in list(_counter_tallies.values()):
        counter.flush()
    for level in _level_tallies:
        level.flush()


async def flushing(interval_s: float = FLUSH_INTERVAL_S) -> None:
    """Flush every ``interval_s`` until cancelled, and once more then."""
    try:
        while True:
            await asyncio.sleep(interval_s)
            flush()
    finally:
        flush()
