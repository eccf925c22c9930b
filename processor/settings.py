"""Processor settings: read once from the environment at start-up into a frozen object."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum

from schemas.env import EnvReader


class Guarantee(StrEnum):
    EXACTLY_ONCE = "exactly_once"
    """Offsets, state and derived events of a partition commit in one Kafka transaction."""
    AT_LEAST_ONCE = "at_least_once"
    """Outputs are flushed, then offsets committed: a crash can repeat outputs (same event ids)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class TopicNames:
    """Every topic the processor reads or writes (SPEC §4 names under the configured prefix)."""

    raw: str
    dlq: str
    session_state: str
    sessions: str
    participants: str
    recordings: str
    rooms: str
    changelog: str
    """Internal: the processor's own restore data (``processor.engine.changelog``)."""

    @classmethod
    def with_prefix(cls, prefix: str) -> TopicNames:
        return cls(
            raw=f"{prefix}callbacks.raw",
            dlq=f"{prefix}callbacks.dlq",
            session_state=f"{prefix}session-state",
            sessions=f"{prefix}sessions",
            participants=f"{prefix}participants",
            recordings=f"{prefix}recordings",
            rooms=f"{prefix}rooms",
            changelog=f"{prefix}processor.session-changelog",
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class ProcessorSettings:
    """Every processor setting; the README's settings table lists the same names and defaults."""

    kafka_bootstrap_servers: str = "127.0.0.1:9092"
    group_id: str = "meetings-processor"
    topics: TopicNames = field(default_factory=lambda: TopicNames.with_prefix("meetings."))
    guarantee: Guarantee = Guarantee.EXACTLY_ONCE
    commit_interval_ms: int = 100
    commit_max_records: int = 5000
    """Commit early once a partition has this many uncommitted input records."""
    session_idle_timeout_s: float = 21600.0
    session_retention_s: float = 3600.0
    """How long a finished session stays in memory (absorbing late callbacks) before its
    state is tombstoned."""
    expiry_check_interval_s: float = 1.0
    room_dedup_capacity: int = 100_000
    """Room expiries remembered per partition to drop Vonage's retries."""
    create_topics: bool = True
    topic_partitions: int = 12
    topic_replication_factor: int = 1
    raw_retention_ms: int = 7 * 24 * 3600 * 1000
    derived_retention_ms: int = 30 * 24 * 3600 * 1000
    http_host: str = "0.0.0.0"
    http_port: int = 8081
    log_level: str = "INFO"
    transaction_timeout_ms: int = 60_000
    consumer_session_timeout_ms: int = 10_000
    """How long a silent processor keeps its partitions before the group reassigns them."""


def load_settings(environ: Mapping[str, str] | None = None) -> ProcessorSettings:
    """Settings from ``environ`` (default ``os.environ``); ``SettingsError`` lists problems."""
    env = EnvReader(os.environ if environ is None else environ)
    defaults = ProcessorSettings()
    settings = ProcessorSettings(
        kafka_bootstrap_servers=env.text(
            "KAFKA_BOOTSTRAP_SERVERS", defaults.kafka_bootstrap_servers
        ),
        group_id=env.text("PROCESSOR_GROUP_ID", defaults.group_id),
        topics=TopicNames.with_prefix(env.text("MEETINGS_TOPIC_PREFIX", "meetings.")),
        guarantee=Guarantee(
            env.choice(
                "PROCESSING_GUARANTEE", defaults.guarantee.value, tuple(g.value for g in Guarantee)
            )
        ),
        commit_interval_ms=env.integer(
            "COMMIT_INTERVAL_MS", defaults.commit_interval_ms, minimum=1, maximum=60_000
        ),
        commit_max_records=env.integer(
            "COMMIT_MAX_RECORDS", defaults.commit_max_records, minimum=1
        ),
        session_idle_timeout_s=env.number(
            "SESSION_IDLE_TIMEOUT", defaults.session_idle_timeout_s, minimum=1
        ),
        session_retention_s=env.number(
            "SESSION_RETENTION", defaults.session_retention_s, minimum=0
        ),
        expiry_check_interval_s=env.number(
            "EXPIRY_CHECK_INTERVAL_S", defaults.expiry_check_interval_s, minimum=0.05
        ),
        room_dedup_capacity=env.integer(
            "ROOM_DEDUP_CAPACITY", defaults.room_dedup_capacity, minimum=0
        ),
        create_topics=env.flag("PROCESSOR_CREATE_TOPICS", defaults.create_topics),
        topic_partitions=env.integer(
            "TOPIC_PARTITIONS", defaults.topic_partitions, minimum=1, maximum=10_000
        ),
        topic_replication_factor=env.integer(
            "TOPIC_REPLICATION_FACTOR", defaults.topic_replication_factor, minimum=1
        ),
        raw_retention_ms=env.integer("RAW_RETENTION_MS", defaults.raw_retention_ms, minimum=-1),
        derived_retention_ms=env.integer(
            "DERIVED_RETENTION_MS", defaults.derived_retention_ms, minimum=-1
        ),
        http_host=env.text("PROCESSOR_HTTP_HOST", defaults.http_host),
        http_port=env.integer("PROCESSOR_HTTP_PORT", defaults.http_port, minimum=0, maximum=65535),
        log_level=env.choice(
            "PROCESSOR_LOG_LEVEL", "info", ("debug", "info", "warning", "error")
        ).upper(),
        transaction_timeout_ms=env.integer(
            "TRANSACTION_TIMEOUT_MS", defaults.transaction_timeout_ms, minimum=1000
        ),
        consumer_session_timeout_ms=env.integer(
            "CONSUMER_SESSION_TIMEOUT_MS",
            defaults.consumer_session_timeout_ms,
            minimum=1000,
            maximum=3_600_000,
        ),
    )
    env.finish("processor")
    return settings
