"""Processor settings: declared once here, read once from the environment at start-up."""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum

from processor.sources.video import ParticipantKey
from schemas.topics import RAW, TopicNames
from servicekit.kafka import KafkaSettings, kafka_problems
from servicekit.logs import LOG_LEVELS, LogFormat, log_format_setting
from servicekit.settings import load, setting


class Guarantee(StrEnum):
    EXACTLY_ONCE = "exactly_once"
    """Offsets, state and derived events of a partition commit in one Kafka transaction."""
    AT_LEAST_ONCE = "at_least_once"
    """Outputs are flushed, then offsets committed: a crash can repeat outputs (same event ids)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class ProcessorSettings:
    """Every processor setting; the settings tables of docs/operations.md are generated from these
    fields (``python -m tools.settings_docs``)."""

    kafka: KafkaSettings = field(default_factory=KafkaSettings)
    group_id: str = setting(
        "PROCESSOR_GROUP_ID", "meetings-processor", "consumer group (and transactional id prefix)"
    )
    guarantee: Guarantee = setting(
        "PROCESSING_GUARANTEE", Guarantee.EXACTLY_ONCE, "or `at_least_once`"
    )
    commit_interval_ms: int = setting(
        "COMMIT_INTERVAL_MS",
        100,
        "commit each partition's work this often",
        minimum=1,
        maximum=60_000,
    )
    commit_max_records: int = setting(
        "COMMIT_MAX_RECORDS",
        5000,
        "... or once this many input records are pending",
        minimum=1,
    )
    session_idle_timeout_s: float = setting(
        "SESSION_IDLE_TIMEOUT",
        21600.0,
        "seconds without a callback before a session is closed by timeout",
        minimum=1,
    )
    video_empty_session_end_s: float = setting(
        "VIDEO_EMPTY_SESSION_END_S",
        600.0,
        "seconds a Video session may have no open connection (in event time) before it ends "
        "with `ended_by: empty`; checked on the partition's clock like idle expiry",
        minimum=1,
    )
    session_retention_s: float = setting(
        "SESSION_RETENTION",
        3600.0,
        "seconds a finished session stays in memory (absorbing late callbacks) before its "
        "state is tombstoned",
        minimum=0,
    )
    expiry_check_interval_s: float = setting(
        "EXPIRY_CHECK_INTERVAL_S",
        1.0,
        "how often idle expiry and retention look at the next 500 sessions of each partition "
        "(a session times out or leaves memory at most one pass over its partition late)",
        minimum=0.05,
    )
    room_dedup_capacity: int = setting(
        "ROOM_DEDUP_CAPACITY",
        100_000,
        "room expiries remembered per partition to drop Vonage's retries",
        minimum=0,
    )
    state_max_listed_participants: int = setting(
        "STATE_MAX_LISTED_PARTICIPANTS",
        1000,
        "present participants listed in a SessionState, earliest joined first (never more "
        "than 640 KiB of them; `active_count` stays exact)",
        minimum=0,
        maximum=1500,
    )
    video_participant_key: str = setting(
        "VIDEO_PARTICIPANT_KEY",
        "connection",
        "who a Video participant is: `connection` (each connection id), `data` (the whole "
        "token data) or `data.<field>` (a field of token data that is a JSON object, e.g. "
        "`data.userId`); a connection whose data lacks it counts as its own participant",
    )
    create_topics: bool = setting(
        "PROCESSOR_CREATE_TOPICS", True, "create missing topics at start (else refuse to start)"
    )
    topic_partitions: int = setting(
        "TOPIC_PARTITIONS",
        12,
        "partitions of created topics (an existing raw topic's count wins)",
        minimum=1,
        maximum=10_000,
    )
    topic_replication_factor: int = setting(
        "TOPIC_REPLICATION_FACTOR",
        1,
        "replication of created topics (use 3 on a real cluster); existing topics must have at "
        "least this many replicas",
        minimum=1,
    )
    topic_min_insync: int = setting(
        "TOPIC_MIN_INSYNC",
        0,
        "`min.insync.replicas` of created topics (`0`: replication factor - 1, at least 1); "
        "existing topics must have at least this. A `2xx` from ingest means this many replicas "
        "have the callback",
        minimum=0,
    )
    raw_retention_ms: int = setting(
        "RAW_RETENTION_MS",
        7 * 24 * 3600 * 1000,
        "retention of the raw and DLQ topics (7 days)",
        minimum=-1,
    )
    derived_retention_ms: int = setting(
        "DERIVED_RETENTION_MS",
        30 * 24 * 3600 * 1000,
        "retention of derived event topics (30 days)",
        minimum=-1,
    )
    changelog_segment_ms: int = setting(
        "CHANGELOG_SEGMENT_MS",
        60_000,
        "`segment.ms` of the compacted state and changelog topics (1 min): compaction never "
        "cleans the active segment, so a segment rolls at least this often when written to "
        "(broker default 7 days)",
        minimum=1000,
    )
    changelog_segment_bytes: int = setting(
        "CHANGELOG_SEGMENT_BYTES",
        16 * 1024 * 1024,
        "`segment.bytes` of the compacted topics (16 MiB): the uncleaned active segment a "
        "restore reads holds at most this (broker default 1 GiB)",
        minimum=1024 * 1024,
        maximum=2**31 - 1,
    )
    changelog_min_cleanable_dirty_ratio: float = setting(
        "CHANGELOG_MIN_CLEANABLE_DIRTY_RATIO",
        0.1,
        "`min.cleanable.dirty.ratio` of the compacted topics: compact once a tenth of the "
        "cleanable log is uncompacted (mostly superseded revisions), so a restore reads at most "
        "about 1.1x the live state plus the active segment (broker default 0.5: 2x)",
        minimum=0.01,
        maximum=0.99,
    )
    changelog_delete_retention_ms: int = setting(
        "CHANGELOG_DELETE_RETENTION_MS",
        3_600_000,
        "`delete.retention.ms` of the compacted topics (1 hour): how long the tombstones of "
        "finished sessions stay readable after compaction; a reader further behind can miss one",
        minimum=0,
    )
    transaction_timeout_ms: int = setting(
        "TRANSACTION_TIMEOUT_MS", 60_000, "Kafka transaction timeout", minimum=1000
    )
    consumer_session_timeout_ms: int = setting(
        "CONSUMER_SESSION_TIMEOUT_MS",
        10_000,
        "how long a silent processor keeps its partitions before the group reassigns them",
        minimum=1000,
        maximum=3_600_000,
    )
    consumer_heartbeat_interval_ms: int = setting(
        "CONSUMER_HEARTBEAT_INTERVAL_MS",
        250,
        "how often a processor asks its group coordinator whether a rebalance began: the "
        "partitions of the members that already joined wait this long at most for the others "
        "(at most a third of CONSUMER_SESSION_TIMEOUT_MS)",
        minimum=50,
    )
    restore_timeout_s: float = setting(
        "RESTORE_TIMEOUT_S",
        300.0,
        "seconds a partition may take to be restored (producer, sessions, offset) before it "
        "counts as failed",
        minimum=1,
    )
    kept_state_max_sessions: int = setting(
        "KEPT_STATE_MAX_SESSIONS",
        100_000,
        "sessions kept in memory for partitions this processor lost in a rebalance, in case they "
        "come back (then only what the other owner wrote since is read); about 1.5 KB each, the "
        "oldest released dropped first; `0` keeps only the partitions it gets straight back",
        minimum=0,
    )
    fatal_exit_delay_s: float = setting(
        "PROCESSOR_FATAL_EXIT_DELAY_S",
        30.0,
        "seconds a partition that cannot be restored is reported (`/readyz` 503, metric, log) "
        "before the process exits with status 1 for its supervisor to restart it",
        minimum=0,
    )
    http_host: str = setting(
        "PROCESSOR_HTTP_HOST", "0.0.0.0", "address of the health and metrics endpoint"
    )
    http_port: int = setting(
        "PROCESSOR_HTTP_PORT",
        8081,
        "port of the health and metrics endpoint",
        minimum=0,
        maximum=65535,
    )
    log_level: str = setting(
        "PROCESSOR_LOG_LEVEL", "info", "`debug`, `info`, `warning`, `error`", choices=LOG_LEVELS
    )
    log_format: LogFormat = log_format_setting()

    input_prefix: str | None = setting(
        "PROCESSOR_RAW_TOPIC_PREFIX",
        None,
        "read the raw topic under this prefix instead of `MEETINGS_TOPIC_PREFIX` (unset: the "
        "same): how processing goes on into the topics a replay wrote (docs/operations.md, "
        "Re-processing)",
    )
    # Not read from the environment: what ``python -m processor replay`` sets.
    stream_time_only: bool = False
    """Idle expiry, the empty rule and retention on stream time even once caught up: a
    replay's clock is its input's, whenever it runs."""

    @property
    def topics(self) -> TopicNames:
        if self.input_prefix is None:
            return self.kafka.topics
        return _reading_from(self.kafka.topic_prefix, self.input_prefix)

    @property
    def min_insync_replicas(self) -> int:
        """``TOPIC_MIN_INSYNC``, or by default one less than the replication factor (at least
        1): with replication 3 a write needs two copies, so one broker may be down."""
        if self.topic_min_insync:
            return self.topic_min_insync
        return max(self.topic_replication_factor - 1, 1)

    @property
    def kept_state_max_age_s(self) -> float:
        """Seconds a partition's state kept in memory stays good for a delta read of the
        changelog (instead of a full restore): half of ``CHANGELOG_DELETE_RETENTION_MS``.

        A delta read must see every tombstone written since the state was last current, and
        compaction drops a tombstone ``delete.retention.ms`` after cleaning it; older state
        could keep a session whose tombstone is already gone. Half leaves the other half as
        margin for the cleaner's timing and the read itself."""
        return self.changelog_delete_retention_ms / 2 / 1000


@functools.cache  # a prefix or two per process; ``topics`` is read per batch
def _reading_from(prefix: str, input_prefix: str) -> TopicNames:
    return dataclasses.replace(TopicNames.with_prefix(prefix), raw=RAW.name_under(input_prefix))


def load_settings(environ: Mapping[str, str] | None = None) -> ProcessorSettings:
    """Settings from ``environ`` (default ``os.environ``); ``SettingsError`` lists problems."""
    return load(ProcessorSettings, environ, what="processor", checks=_problems)


def _problems(settings: ProcessorSettings) -> list[str]:
    problems = list(kafka_problems(settings.kafka))
    if settings.consumer_heartbeat_interval_ms * 3 > settings.consumer_session_timeout_ms:
        problems.append(
            f"CONSUMER_HEARTBEAT_INTERVAL_MS={settings.consumer_heartbeat_interval_ms} is more "
            f"than a third of CONSUMER_SESSION_TIMEOUT_MS={settings.consumer_session_timeout_ms}"
            ": one lost heartbeat would cost the processor its partitions"
        )
    try:
        ParticipantKey(settings.video_participant_key)
    except ValueError as exc:
        problems.append(f"VIDEO_PARTICIPANT_KEY: {exc}")
    return problems
