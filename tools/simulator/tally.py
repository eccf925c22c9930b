"""What happened to a simulation's callbacks: counts per outcome and request latencies."""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field


@dataclass(slots=True)
class Tally:
    planned: int
    sent: int = 0
    """Callbacks whose first request has gone out."""
    accepted: int = 0
    """Answered 2xx, possibly after retries: durably stored by ingest."""
    refused: int = 0
    """Answered with a status not worth retrying (4xx other than 408/429)."""
    gave_up: int = 0
    """Still failing (5xx, 408/429, connection errors) after every allowed attempt."""
    retries: int = 0
    failed_attempts: int = 0
    """Requests that did not get a 2xx, whether or not a retry then succeeded."""
    statuses: Counter[str] = field(default_factory=Counter)
    """Final outcome per callback: the status code, or the connection error's name."""
    latencies_s: list[float] = field(default_factory=list)
    """Of each accepted request (the attempt that succeeded)."""

    @property
    def finished(self) -> int:
        return self.accepted + self.refused + self.gave_up

    @property
    def all_accepted(self) -> bool:
        return self.accepted == self.planned

    def latency_ms(self, quantile: float) -> float | None:
        """Nearest-rank percentile of the accepted requests' latency."""
        if not self.latencies_s:
            return None
        ordered = sorted(self.latencies_s)
        rank = max(math.ceil(quantile * len(ordered)), 1)
        return ordered[rank - 1] * 1000
