"""Settings come from the environment once; misconfiguration fails with a clear message."""

from __future__ import annotations

import subprocess
import sys

import pytest

from ingest.checks.validation import check_content_type, inspect_body
from ingest.checks.video import inspect_video_body
from ingest.settings import load_settings
from schemas.topics import RAW
from servicekit.env import SettingsError


def test_every_setting_is_read_from_its_variable() -> None:
    settings = load_settings(
        {
            "KAFKA_BOOTSTRAP_SERVERS": "kafka:9092",
            "INGEST_HOST": "127.0.0.1",
            "INGEST_PORT": "9000",
            "INGEST_WORKERS": "4",
            "MEETINGS_TOPIC_PREFIX": "staging.",
            "INGEST_MAX_BODY_BYTES": "1024",
            "INGEST_PRODUCE_TIMEOUT_S": "2.5",
            "INGEST_RETRY_AFTER_S": "9",
            "INGEST_SHUTDOWN_TIMEOUT_S": "20",
            "INGEST_DRAIN_DELAY_S": "3",
            "INGEST_READINESS_INTERVAL_S": "1",
            "INGEST_LINGER_MS": "5",
            "INGEST_AUTH_TOKEN": "0123456789abcdef",
            "INGEST_AUTH_TOKEN_HEADER": "X-Token",
            "INGEST_AUTH_TOKEN_QUERY": "t",
            "INGEST_JWT_SECRET": "0123456789abcdef0123456789abcdef",
            "INGEST_JWT_PAYLOAD_HASH": "required",
            "INGEST_JWT_LEEWAY_S": "5",
            "INGEST_LOG_LEVEL": "debug",
            "INGEST_JWT_MAX_AGE_S": "600",
            "INGEST_READ_TIMEOUT_S": "2.5",
            "INGEST_MAX_CONNECTIONS": "500",
            "INGEST_METRICS_PORT": "9100",
            "INGEST_VIDEO_SESSIONS_SECRET": "sessions-secret-0123456789abcdef",
            "INGEST_VIDEO_ARCHIVES_SECRET": "archives-secret-0123456789abcdef",
        }
    )
    assert settings.kafka.bootstrap_servers == "kafka:9092"
    assert (settings.host, settings.port, settings.workers) == ("127.0.0.1", 9000, 4)
    assert (settings.raw_topic, settings.max_body_bytes) == (RAW.name_under("staging."), 1024)
    assert (settings.produce_timeout_s, settings.retry_after_s) == (2.5, 9)
    assert (settings.shutdown_timeout_s, settings.drain_delay_s) == (20.0, 3.0)
    assert (settings.readiness_interval_s, settings.linger_ms) == (1.0, 5)
    assert settings.auth_token is not None
    assert settings.auth_token.value == "0123456789abcdef"
    assert (settings.auth_token_header, settings.auth_token_query) == ("X-Token", "t")
    assert settings.jwt_secret is not None
    assert (settings.jwt_payload_hash, settings.jwt_leeway_s) == ("required", 5.0)
    assert settings.log_level == "debug"
    assert (settings.jwt_max_age_s, settings.read_timeout_s) == (600.0, 2.5)
    assert (settings.max_connections, settings.metrics_port) == (500, 9100)
    assert settings.video_sessions_secret is not None
    assert settings.video_sessions_secret.value == "sessions-secret-0123456789abcdef"
    assert settings.video_archives_secret is not None
    assert settings.video_archives_secret.value == "archives-secret-0123456789abcdef"


def test_hardening_defaults_and_bounds() -> None:
    defaults = load_settings({})
    assert defaults.read_timeout_s == 10.0
    assert defaults.max_connections == 0  # derived from the descriptor limit at start-up
    assert defaults.metrics_port == 0  # /metrics on the callback port
    assert defaults.jwt_max_age_s == 0.0  # off
    with pytest.raises(SettingsError) as failure:
        load_settings(
            {
                "INGEST_READ_TIMEOUT_S": "0",
                "INGEST_MAX_CONNECTIONS": "-1",
                "INGEST_METRICS_PORT": "70000",
                "INGEST_JWT_MAX_AGE_S": "-5",
            }
        )
    message = str(failure.value)
    for name in (
        "INGEST_READ_TIMEOUT_S",
        "INGEST_MAX_CONNECTIONS",
        "INGEST_METRICS_PORT",
        "INGEST_JWT_MAX_AGE_S",
    ):
        assert name in message


def test_all_problems_are_reported_at_once() -> None:
    with pytest.raises(SettingsError) as failure:
        load_settings(
            {
                "INGEST_PORT": "eighty",
                "INGEST_WORKERS": "0",
                "INGEST_PRODUCE_TIMEOUT_S": "-1",
                "INGEST_JWT_PAYLOAD_HASH": "sometimes",
                "INGEST_AUTH_TOKEN": "short",
                "INGEST_VIDEO_SESSIONS_SECRET": "tiny",
                "INGEST_VIDEO_ARCHIVES_SECRET": "small",
            }
        )
    message = str(failure.value)
    assert "INGEST_PORT='eighty' is not an integer" in message
    assert "INGEST_WORKERS=0 must be at least 1" in message
    assert "INGEST_PRODUCE_TIMEOUT_S=-1.0 must be at least 0.05" in message
    assert "INGEST_JWT_PAYLOAD_HASH='sometimes' must be one of required, if_present, off" in message
    assert "INGEST_AUTH_TOKEN must be at least 16 characters" in message
    assert "INGEST_VIDEO_SESSIONS_SECRET must be at least 16 characters" in message
    assert "INGEST_VIDEO_ARCHIVES_SECRET must be at least 16 characters" in message
    assert "tiny" not in message
    assert "short" not in message.replace("INGEST_AUTH_TOKEN must", "")  # secret not echoed


def test_misconfigured_service_exits_2_with_the_message() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "ingest"],
        env={"INGEST_PORT": "not-a-port", "PATH": ""},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2
    assert "INGEST_PORT='not-a-port' is not an integer" in result.stderr


@pytest.mark.parametrize(
    ("content_type", "accepted"),
    [
        (None, True),
        ("", True),
        ("application/json", True),
        ("Application/JSON; charset=UTF-8", True),
        ("application/cloudevents+json", True),
        ("text/plain", False),
        ("application/x-www-form-urlencoded", False),
        ("multipart/form-data; boundary=x", False),
    ],
)
def test_content_types(content_type: str | None, accepted: bool) -> None:
    assert (check_content_type(content_type) is None) is accepted


def test_key_is_session_id_else_room_id() -> None:
    session = inspect_body(b'{"event": "x", "session_id": "s", "room_id": "r"}')
    room = inspect_body(b'{"event": "room:expired", "room_id": "r"}')
    neither = inspect_body(b'{"event": "x"}')
    double = inspect_body(b'"{\\"event\\": \\"x\\", \\"session_id\\": \\"s2\\"}"')
    keys = [getattr(view, "key", "rejected") for view in (session, room, neither, double)]
    assert keys == [b"s", b"r", None, b"s2"]


def test_a_video_callback_is_keyed_by_its_session_id() -> None:
    plain = inspect_video_body(b'{"event": "x", "sessionId": "s", "session_id": "other"}')
    double = inspect_video_body(b'"{\\"event\\": \\"x\\", \\"sessionId\\": \\"s2\\"}"')
    keys = [getattr(view, "key", "rejected") for view in (plain, double)]
    assert keys == [b"s", b"s2"]
