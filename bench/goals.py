"""The benchmarks' goals: each figure with its bound, met or missed, and the summary table.

A benchmark's ``run`` returns the ``Goal`` of each figure it measures that has one (a median of
the rounds it ran, never a chosen round); ``python -m bench`` prints them together at the end.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Goal:
    figure: str
    value: float
    shown: str
    """The value as the report prints it, with its unit."""
    bound: str
    """The goal, as the report prints it: ``>= 0.80``, ``< 150 ms``."""
    met: bool

    @property
    def verdict(self) -> str:
        return "met" if self.met else "MISSED"

    def line(self) -> str:
        return f"  {self.figure:<64} {self.shown:>12}  goal {self.bound:<10} {self.verdict}"


def at_least(figure: str, value: float, bound: float, *, unit: str = "x") -> Goal:
    return Goal(figure, value, _shown(value, unit), f">= {_shown(bound, unit)}", value >= bound)


def at_most(figure: str, value: float, bound: float, *, unit: str = "x") -> Goal:
    return Goal(figure, value, _shown(value, unit), f"<= {_shown(bound, unit)}", value <= bound)


def below(figure: str, value: float, bound: float, *, unit: str) -> Goal:
    return Goal(figure, value, _shown(value, unit), f"< {_shown(bound, unit)}", value < bound)


def _shown(value: float, unit: str) -> str:
    if unit == "x":
        return f"{value:.2f}x"
    if unit == "B":
        return f"{value:,.0f} B"
    if unit == "ms":
        return f"{value:,.0f} ms"
    if unit == "s":
        return f"{value:.2f} s"
    if unit == "%":
        return f"{value:.1f}%"
    raise ValueError(f"unknown unit {unit!r}")


def summary(goals: Sequence[Goal]) -> list[str]:
    """The summary table's lines: every goal, then how many were met."""
    met = sum(goal.met for goal in goals)
    return [
        "goals (medians of the rounds each benchmark ran)",
        *(goal.line() for goal in goals),
        f"  {met} of {len(goals)} met",
    ]
