"""Every processor metric, declared once with its meaning (Prometheus naming conventions).

Restores are counted by kind: ``full`` (a partition's changelog read whole), ``delta`` (kept
sessions plus what others wrote to the changelog since) and ``warm_up`` (read ahead of joining).
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram, disable_created_metrics

disable_created_metrics()  # type: ignore[no-untyped-call]

RECORDS = Counter(
    "processor_records_total",
    "Raw records consumed, by outcome: applied (to a session or a room) or dlq.",
    ["outcome"],
)
DLQ_RECORDS = Counter(
    "processor_dlq_records_total",
    "Raw records sent to the dead-letter topic, by dlq-reason.",
    ["reason"],
)
DERIVED_EVENTS = Counter(
    "processor_derived_events_total",
    "Derived events published (committed or about to be), by type.",
    ["type"],
)
COMMITS = Counter(
    "processor_commits_total",
    "Partition commits (transactions, or flush+offset commits in at-least-once mode), by outcome.",
    ["outcome"],
)
COMMIT_SECONDS = Histogram(
    "processor_commit_seconds",
    "Time to commit one partition's batch: outputs, state snapshots and input offsets.",
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
)
RESTORE_SECONDS = Histogram(
    "processor_restore_seconds",
    "Time to restore one partition (fence its previous owner, read its changelog, seek), by "
    "kind: delta (kept sessions plus what others wrote since) or full (the changelog whole).",
    ["kind"],
    buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120),
)
RESTORES = Counter(
    "processor_restores_total",
    "Partition restores, by kind: delta, full, or warm_up (read whole before joining the group, "
    "ahead of the assignment).",
    ["kind"],
)
RESTORE_RECORDS = Counter(
    "processor_restore_records_total",
    "Changelog records read by restores, by kind: delta, full or warm_up.",
    ["kind"],
)
RESTORED_SESSIONS = Counter(
    "processor_restored_sessions_total",
    "Sessions loaded by full restores from the changelog.",
)
REBALANCES = Counter(
    "processor_rebalances_total",
    "Partition assignments this processor received from its consumer group.",
)
REBALANCE_PARTITIONS = Counter(
    "processor_rebalance_partitions_total",
    "Partitions at each rebalance, by outcome: kept (owned before and after), gained (new to "
    "this processor), lost (moved to another).",
    ["outcome"],
)
REBALANCE_PAUSE_SECONDS = Histogram(
    "processor_rebalance_pause_seconds",
    "How long a partition this processor kept through a rebalance went unprocessed: from its "
    "release to its resumption.",
    buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
)
KEPT_SESSIONS = Gauge(
    "processor_kept_sessions",
    "Sessions kept in memory for released partitions, in case they come back (partitions "
    "moved away count against KEPT_STATE_MAX_SESSIONS).",
)
SESSIONS_IN_MEMORY = Gauge(
    "processor_sessions_in_memory",
    "Sessions held in memory (active and recently finished), over all assigned partitions.",
)
ACTIVE_SESSIONS = Gauge(
    "processor_active_sessions",
    "Sessions in memory whose status is active, as the last complete expiry pass found them.",
)
SESSIONS_EXPIRED = Counter(
    "processor_sessions_expired_total",
    "Sessions closed by idle timeout (idle), Video sessions closed for having no open "
    "connection (empty), or dropped and tombstoned after retention.",
    ["reason"],
)
READY = Gauge(
    "processor_ready",
    "1 while /readyz answers 200: consuming, assigned its partitions by the group (none is "
    "ready too), each of them restored; else 0.",
)
ASSIGNED_PARTITIONS = Gauge(
    "processor_assigned_partitions",
    "Raw-topic partitions this processor owns.",
)
CONSUMER_LAG = Gauge(
    "processor_consumer_lag",
    "Records of the raw topic not yet consumed (high watermark minus position), by partition.",
    ["partition"],
)
PARTITION_REBUILDS = Counter(
    "processor_partition_rebuilds_total",
    "Partitions rebuilt from their last commit, by reason: commit_failed, processing_error.",
    ["reason"],
)
PARTITION_FAILED = Gauge(
    "processor_partition_failed",
    "1 per owned partition that could not be restored, by partition and cause (producer, "
    "restore, restore_timeout); the process exits PROCESSOR_FATAL_EXIT_DELAY_S later.",
    ["partition", "cause"],
)
PARTITION_THROTTLES = Counter(
    "processor_partition_throttles_total",
    "Times a partition was paused because its commits fell behind its input (the others go on).",
)
DLQ_TRUNCATED = Counter(
    "processor_dlq_truncated_total",
    "Dead-letter copies whose value was cut to fit Kafka's record size (dlq-truncated header).",
)
