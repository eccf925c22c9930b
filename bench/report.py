"""Timing and printing shared by the benchmarks."""

from __future__ import annotations

import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Rate:
    label: str
    per_second: float

    def line(self, unit: str) -> str:
        return f"  {self.label:<44} {self.per_second:>14,.0f} {unit}/s"


def best_rate(label: str, work: Callable[[], int], *, rounds: int) -> Rate:
    """Run ``work`` (which returns how many items it handled) ``rounds`` times; keep the median.

    The median of interleaved rounds resists the noise of a shared machine better than the mean.
    """
    rates = []
    for _ in range(rounds):
        began = time.perf_counter()
        handled = work()
        rates.append(handled / (time.perf_counter() - began))
    return Rate(label, statistics.median(rates))


EMITTED: list[str] = []
"""Every line emitted by this process, for ``python -m bench --write-docs``."""


def emit(text: str = "") -> None:
    EMITTED.append(text)
    sys.stdout.write(text + "\n")
    sys.stdout.flush()
