"""The figures of the two callback sources, Vonage Meetings and Vonage Video API, side by side."""

from __future__ import annotations

import statistics
from collections.abc import Sequence

COLUMN = 30


def heading(label: str) -> str:
    return row(label, "Meetings", "Video")


def row(label: str, meetings: str, video: str) -> str:
    return f"  {label:<44} {meetings:>{COLUMN}} {video:>{COLUMN}}"


def median_spread(values: Sequence[float]) -> str:
    """``median (lowest-highest)``: the median of interleaved rounds, and how far they spread."""
    low, high = min(values), max(values)
    return f"{statistics.median(values):,.0f} ({low:,.0f}-{high:,.0f})"
