"""Ingest settings: read once from the environment at start-up into a frozen object."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

from schemas.env import EnvReader, Secret
from schemas.topics import RAW

PAYLOAD_HASH_MODES = ("required", "if_present", "off")
ACCESS_LOG_MODES = ("all", "refusals", "off")


@dataclass(frozen=True, slots=True, kw_only=True)
class IngestSettings:
    """Every ingest setting; the README's settings table lists the same names and defaults."""

    kafka_bootstrap_servers: str = "127.0.0.1:9092"
    host: str = "0.0.0.0"
    port: int = 8080
    workers: int = 1
    raw_topic: str = RAW.name
    max_body_bytes: int = 64 * 1024
    produce_timeout_s: float = 5.0
    retry_after_s: int = 5
    shutdown_timeout_s: float = 15.0
    drain_delay_s: float = 0.0
    readiness_interval_s: float = 2.0
    linger_ms: int = 0
    auth_token: Secret | None = None
    auth_token_header: str = "X-Callback-Token"
    auth_token_query: str = "token"
    jwt_secret: Secret | None = None
    jwt_payload_hash: str = "if_present"
    jwt_leeway_s: float = 30.0
    read_timeout_s: float = 10.0
    max_connections: int = 0
    log_level: str = "INFO"
    access_log: str = "refusals"
    """Which requests get an access log line: ``all``, ``refusals`` (not 2xx) or ``off``.
    Logging every accepted callback costs about a fifth of ingest's throughput; accepted
    callbacks are always counted in the metrics."""

    @property
    def auth_enabled(self) -> bool:
        return self.auth_token is not None or self.jwt_secret is not None


def load_settings(environ: Mapping[str, str] | None = None) -> IngestSettings:
    """Settings from ``environ`` (default ``os.environ``); ``SettingsError`` lists problems."""
    env = EnvReader(os.environ if environ is None else environ)
    defaults = IngestSettings()
    settings = IngestSettings(
        kafka_bootstrap_servers=env.text(
            "KAFKA_BOOTSTRAP_SERVERS", defaults.kafka_bootstrap_servers
        ),
        host=env.text("INGEST_HOST", defaults.host),
        port=env.integer("INGEST_PORT", defaults.port, minimum=0, maximum=65535),
        workers=env.integer("INGEST_WORKERS", defaults.workers, minimum=1, maximum=64),
        raw_topic=env.text("INGEST_RAW_TOPIC", defaults.raw_topic),
        max_body_bytes=env.integer(
            "INGEST_MAX_BODY_BYTES", defaults.max_body_bytes, minimum=1, maximum=1_000_000
        ),
        produce_timeout_s=env.number(
            "INGEST_PRODUCE_TIMEOUT_S", defaults.produce_timeout_s, minimum=0.05, maximum=300
        ),
        retry_after_s=env.integer("INGEST_RETRY_AFTER_S", defaults.retry_after_s, minimum=1),
        shutdown_timeout_s=env.number(
            "INGEST_SHUTDOWN_TIMEOUT_S", defaults.shutdown_timeout_s, minimum=0
        ),
        drain_delay_s=env.number("INGEST_DRAIN_DELAY_S", defaults.drain_delay_s, minimum=0),
        readiness_interval_s=env.number(
            "INGEST_READINESS_INTERVAL_S", defaults.readiness_interval_s, minimum=0.05
        ),
        linger_ms=env.integer("INGEST_LINGER_MS", defaults.linger_ms, minimum=0, maximum=1000),
        auth_token=env.optional_secret("INGEST_AUTH_TOKEN"),
        auth_token_header=env.text("INGEST_AUTH_TOKEN_HEADER", defaults.auth_token_header),
        auth_token_query=env.text("INGEST_AUTH_TOKEN_QUERY", defaults.auth_token_query),
        jwt_secret=env.optional_secret("INGEST_JWT_SECRET"),
        jwt_payload_hash=env.choice(
            "INGEST_JWT_PAYLOAD_HASH", defaults.jwt_payload_hash, PAYLOAD_HASH_MODES
        ),
        jwt_leeway_s=env.number("INGEST_JWT_LEEWAY_S", defaults.jwt_leeway_s, minimum=0),
        log_level=env.choice(
            "INGEST_LOG_LEVEL", defaults.log_level.lower(), ("debug", "info", "warning", "error")
        ).upper(),
        access_log=env.choice("INGEST_ACCESS_LOG", defaults.access_log, ACCESS_LOG_MODES),
    )
    if settings.auth_token is not None and len(settings.auth_token.value) < 16:
        env.problem("INGEST_AUTH_TOKEN must be at least 16 characters")
    if settings.jwt_secret is not None and len(settings.jwt_secret.value) < 16:
        env.problem("INGEST_JWT_SECRET must be at least 16 characters")
    env.finish("ingest")
    return settings
