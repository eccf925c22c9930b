"""Processor settings come from the environment once; bad values fail with one clear message."""

from __future__ import annotations

import logging

import pytest

from processor.__main__ import main as processor_main
from processor.settings import Guarantee, ProcessorSettings, load_settings
from schemas.topics import ALL_TOPICS, DEFAULT_PREFIX, RAW, TopicNames
from servicekit.env import SettingsError
from tools.devkafka import free_port


def test_defaults_follow_the_spec() -> None:
    settings = load_settings({})
    assert settings == ProcessorSettings()
    assert settings.guarantee is Guarantee.EXACTLY_ONCE
    assert settings.session_idle_timeout_s == 21600
    assert settings.commit_interval_ms == 100
    assert settings.topics == TopicNames.with_prefix(DEFAULT_PREFIX)
    assert {settings.topics.of(topic) for topic in ALL_TOPICS} == {
        DEFAULT_PREFIX + topic.suffix for topic in ALL_TOPICS
    }


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
    assert settings.kafka.bootstrap_servers == "kafka:9092"
    assert settings.group_id == "g"
    assert settings.topics.raw == RAW.name_under("staging.meetings.")
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


def test_compaction_settings_default_to_a_changelog_that_compaction_keeps_small() -> None:
    settings = load_settings({})
    assert settings.changelog_segment_ms == 60_000
    assert settings.changelog_segment_bytes == 16 * 1024 * 1024
    assert settings.changelog_min_cleanable_dirty_ratio == 0.1
    assert settings.changelog_delete_retention_ms == 3_600_000
    # Kept state is trusted for a delta read for half of the tombstones' retention.
    assert settings.kept_state_max_age_s == 1800.0

    custom = load_settings(
        {
            "CHANGELOG_SEGMENT_MS": "300000",
            "CHANGELOG_SEGMENT_BYTES": "1048576",
            "CHANGELOG_MIN_CLEANABLE_DIRTY_RATIO": "0.25",
            "CHANGELOG_DELETE_RETENTION_MS": "600000",
        }
    )
    assert custom.changelog_segment_ms == 300_000
    assert custom.changelog_segment_bytes == 1_048_576
    assert custom.changelog_min_cleanable_dirty_ratio == 0.25
    assert custom.kept_state_max_age_s == 300.0


@pytest.mark.parametrize(
    ("variable", "value", "problem"),
    [
        ("CHANGELOG_SEGMENT_MS", "999", "must be at least 1000"),
        # Kafka 4 refuses segments under 1 MiB; segment.bytes is an int.
        ("CHANGELOG_SEGMENT_BYTES", "1048575", "must be at least 1048576"),
        ("CHANGELOG_SEGMENT_BYTES", "2147483648", "at most 2147483647"),
        ("CHANGELOG_MIN_CLEANABLE_DIRTY_RATIO", "0", "must be at least 0.01"),
        ("CHANGELOG_MIN_CLEANABLE_DIRTY_RATIO", "1", "at most 0.99"),
        ("CHANGELOG_MIN_CLEANABLE_DIRTY_RATIO", "a tenth", "is not a number"),
        ("CHANGELOG_DELETE_RETENTION_MS", "-1", "must be at least 0"),
    ],
)
def test_compaction_settings_outside_what_kafka_accepts_are_refused(
    variable: str, value: str, problem: str
) -> None:
    with pytest.raises(SettingsError, match=problem):
        load_settings({variable: value})


def test_a_heartbeat_too_slow_for_the_session_timeout_is_refused() -> None:
    assert load_settings({}).consumer_heartbeat_interval_ms == 250
    assert (
        load_settings({"CONSUMER_SESSION_TIMEOUT_MS": "1500"}).consumer_session_timeout_ms == 1500
    )
    with pytest.raises(SettingsError, match="more than a third of CONSUMER_SESSION_TIMEOUT_MS"):
        load_settings({"CONSUMER_HEARTBEAT_INTERVAL_MS": "4000"})


def test_kept_state_is_bounded_by_sessions_and_by_half_the_tombstone_retention() -> None:
    settings = load_settings(
        {"KEPT_STATE_MAX_SESSIONS": "0", "CHANGELOG_DELETE_RETENTION_MS": "600000"}
    )
    assert (settings.kept_state_max_sessions, settings.kept_state_max_age_s) == (0, 300.0)
    with pytest.raises(SettingsError, match="must be at least 0"):
        load_settings({"KEPT_STATE_MAX_SESSIONS": "-1"})


def test_the_processor_exits_1_with_a_clear_message_when_kafka_is_unreachable(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    root = logging.getLogger()
    # The entry point installs its JSON handler on the root logger: undo that afterwards.
    monkeypatch.setattr(root, "handlers", list(root.handlers))
    monkeypatch.setattr(root, "level", root.level)
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", f"127.0.0.1:{free_port()}")
    monkeypatch.setenv("PROCESSOR_HTTP_PORT", str(free_port()))
    assert processor_main([]) == 1
    assert '"msg":"could not reach Kafka' in capsys.readouterr().err


def test_the_processor_exits_2_on_bad_settings(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("PROCESSING_GUARANTEE", "sometimes")
    assert processor_main([]) == 2
    assert "PROCESSING_GUARANTEE='sometimes'" in capsys.readouterr().err
