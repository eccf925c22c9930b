"""The processor and the Quix Streams peer, exactly-once, side by side on the same input.

Each round runs both on fresh topics holding the same raw callbacks (``bench.meetings``, as the
processor's own throughput benchmark), one after the other; rounds interleave so that drift on a
shared machine hits both alike. The report gives each one's median records/s with its range and
the ratio of the medians against the product's goal. The processor is timed as
``bench.processor`` times it (``drained``: from a backlog appearing at once to its last
offset committed); the peer from its first record to its last offset committed (its clock
starts in its own process, per record, so it is not charged for joining its group either).

A run whose Quix Streams process fails (rarely, inside Quix: a changelog record handed to the
dataframe) is run once more on fresh topics, and the report says so; wrong output is never
run again.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import logging
import statistics
import time
from collections.abc import Sequence
from dataclasses import dataclass

import uvloop

from bench.broker import kafka
from bench.goals import Goal, at_least
from bench.meetings import RawCallback, raw_callbacks
from bench.peers.quix_run import PeerCrashed, measure_quix
from bench.processor import PARTITIONS, ROUNDS, SESSIONS, measure_processor
from bench.report import emit
from bench.side_by_side import median_spread
from processor.settings import Guarantee

GOAL_RATIO = 2.5
"""The processor exactly-once must do at least this many times the peer's records/s."""
FIGURE = "processor exactly-once ÷ Quix Streams exactly-once"
QUIX_ATTEMPTS = 2


@dataclass(frozen=True, slots=True)
class QuixComparison:
    """Medians of the interleaved rounds, records/s."""

    processor: float
    quix: float

    @property
    def ratio(self) -> float:
        return self.processor / self.quix

    @property
    def met(self) -> bool:
        return self.ratio >= GOAL_RATIO

    def goal(self) -> Goal:
        return at_least(FIGURE, self.ratio, GOAL_RATIO)


def run(rounds: int = ROUNDS) -> QuixComparison:
    if importlib.util.find_spec("quixstreams") is None:
        raise RuntimeError(
            "Quix Streams is not installed: `make bench` installs it (requirements/bench.txt)"
        )
    now_ms = time.time_ns() // 1_000_000
    callbacks = raw_callbacks(SESSIONS, now_ms=now_ms)
    emit(
        f"processor vs Quix Streams {importlib.metadata.version('quixstreams')}: "
        f"{len(callbacks):,} raw callbacks of {SESSIONS:,} concurrent meetings on {PARTITIONS} "
        "partitions, exactly-once, commit every 100 ms, one state record out per callback; "
        f"records/s, median (range) of {rounds} interleaved rounds"
    )
    processor: list[float] = []
    quix: list[float] = []
    aiokafka_logger = logging.getLogger("aiokafka")
    level = aiokafka_logger.level
    # Freshly created topics have no leader for a moment; aiokafka logs its (successful) retries
    # as errors. A real failure still surfaces: as an exception, or the run's timeout.
    aiokafka_logger.setLevel(logging.CRITICAL)
    try:
        with kafka() as bootstrap:
            for _ in range(rounds):
                rate = uvloop.run(measure_processor(bootstrap, callbacks, Guarantee.EXACTLY_ONCE))
                processor.append(rate)
                quix.append(_quix_rate(bootstrap, callbacks))
    finally:
        aiokafka_logger.setLevel(level)
    result = QuixComparison(statistics.median(processor), statistics.median(quix))
    for label, rates in (
        ("processor, exactly-once (uvloop)", processor),
        ("Quix Streams, exactly-once (RocksDB state)", quix),
    ):
        emit(f"  {label:<52} {median_spread(rates):>30}")
    emit(f"  {FIGURE}: {_verdict(result.ratio)}; {_rounds(processor, quix)}")
    return result


def _quix_rate(bootstrap: str, callbacks: Sequence[RawCallback]) -> float:
    attempt = 1
    while True:
        try:
            return uvloop.run(measure_quix(bootstrap, callbacks))
        except PeerCrashed as crash:
            if attempt == QUIX_ATTEMPTS:
                raise
            attempt += 1
            emit(f"  the Quix Streams process failed ({crash.last_line}); again on fresh topics")


def _verdict(ratio: float) -> str:
    return f"{ratio:.2f}x (goal >= {GOAL_RATIO}: {'met' if ratio >= GOAL_RATIO else 'missed'})"


def _rounds(processor: list[float], quix: list[float]) -> str:
    """The spread of the ratio within each round, where both ran back to back."""
    ratios = [ours / theirs for ours, theirs in zip(processor, quix, strict=True)]
    return f"round by round {min(ratios):.2f}-{max(ratios):.2f}x"
