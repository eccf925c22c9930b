"""Every ingest metric, declared once with its meaning (Prometheus naming conventions)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram, disable_created_metrics

# The *_created series double the exposition size and no dashboard here uses them.
disable_created_metrics()  # type: ignore[no-untyped-call]

REQUESTS = Counter(
    "ingest_requests_total",
    "HTTP requests answered, by route and status code.",
    ["route", "status"],
)
PRODUCE_SECONDS = Histogram(
    "ingest_produce_seconds",
    "Time from handing a callback to the Kafka producer to the broker's acks=all acknowledgement.",
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
PRODUCE_FAILURES = Counter(
    "ingest_produce_failures_total",
    "Callbacks refused with 503 because Kafka did not acknowledge them, by cause.",
    ["cause"],
)
IN_FLIGHT = Gauge(
    "ingest_in_flight_requests",
    "Callback requests being handled right now.",
    multiprocess_mode="livesum",
)
ACCEPTED_BYTES = Counter(
    "ingest_accepted_bytes_total",
    "Body bytes of callbacks acknowledged with 2xx (stored in the raw topic).",
)
READY = Gauge(
    "ingest_ready",
    "1 while this process reports ready (Kafka deliverable and not shutting down), else 0.",
    multiprocess_mode="liveall",
)
OPEN_CONNECTIONS = Gauge(
    "ingest_open_connections",
    "HTTP connections open right now (capped by INGEST_MAX_CONNECTIONS).",
    multiprocess_mode="livesum",
)
CONNECTIONS_CLOSED = Counter(
    "ingest_connections_closed_total",
    "Connections closed by ingest, by reason: read_timeout (headers or body too slow), evicted "
    "(idle or slow, to admit a new one at the cap), refused (at the cap, nothing to evict).",
    ["reason"],
)
