"""Processor settings come from the environment once; bad values fail with one clear message."""

from __future__ import annotations

import pytest

from processor.settings import Guarantee, ProcessorSettings, TopicNames, load_settings
from schemas.env import SettingsError


def test_defaults_follow_the_spec() -> None:
    settings = load_settings({})
    assert settings == ProcessorSettings()
    assert settings.guarantee is Guarantee.EXACTLY_ONCE
    assert settings.session_idle_timeout_s == 21600
    assert settings.commit_interval_ms == 100
    assert settings.topics == TopicNames(
        raw="meetings.callbacks.raw",
        dlq="meetings.callbacks.dlq",
        session_state="meetings.session-state",
        sessions="meetings.sessions",
        participants="meetings.participants",
        recordings="meetings.recordings",
        rooms="meetings.rooms",
    )


def test_settings_are_read_from_their_variables() -> None:
    settings = load_settings(
        {
            "KAFKA_BOOTSTRAP_SERVERS": "kafka:9092",
            "PROCESSOR_GROUP_ID": "g",
            "MEETINGS_TOPIC_PREFIX": "staging.meetings.",
            "PROCESSING_GUARANTEE": "at_least_once",
            "COMMIT_INTERVAL_MS": "250",
            "COMMIT_MAX_RECORDS": "100",
            "SESSION_IDLE_TIMEOUT": "60",
            "SESSION_RETENTION": "30",
            "TOPIC_PARTITIONS": "24",
            "PROCESSOR_HTTP_PORT": "9100",
            "CONSUMER_SESSION_TIMEOUT_MS": "6000",
        }
    )
    assert settings.kafka_bootstrap_servers == "kafka:9092"
    assert settings.group_id == "g"
    assert settings.topics.raw == "staging.meetings.callbacks.raw"
    assert settings.guarantee is Guarantee.AT_LEAST_ONCE
    assert (settings.commit_interval_ms, settings.commit_max_records) == (250, 100)
    assert (settings.session_idle_timeout_s, settings.session_retention_s) == (60.0, 30.0)
    assert (settings.topic_partitions, settings.http_port) == (24, 9100)
    assert settings.consumer_session_timeout_ms == 6000


def test_every_problem_is_reported_at_once() -> None:
    with pytest.raises(SettingsError) as failure:
        load_settings({"PROCESSING_GUARANTEE": "maybe", "COMMIT_INTERVAL_MS": "0"})
    message = str(failure.value)
    assert "PROCESSING_GUARANTEE='maybe' must be one of exactly_once, at_least_once" in message
    assert "COMMIT_INTERVAL_MS=0 must be at least 1" in message
