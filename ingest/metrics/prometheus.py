"""Prometheus exposition for one process, or for all workers when several share the port.

With ``INGEST_WORKERS`` > 1 the supervisor gives every worker the same
``PROMETHEUS_MULTIPROC_DIR`` before they import prometheus-client, so whichever worker answers
a scrape reports the sum over all of them.
"""

from __future__ import annotations

import os
from functools import cache

from prometheus_client import REGISTRY, CollectorRegistry, generate_latest
from prometheus_client.multiprocess import MultiProcessCollector

from ingest.metrics import tally

MULTIPROC_DIR_VARIABLE = "PROMETHEUS_MULTIPROC_DIR"


@cache
def _registry() -> CollectorRegistry:
    if os.environ.get(MULTIPROC_DIR_VARIABLE):
        registry = CollectorRegistry()
        MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        return registry
    return REGISTRY


def render_metrics() -> bytes:
    tally.flush()  # this process's own counts are exact in its scrape
    return generate_latest(_registry())
