"""Ingest settings: declared once here, read once from the environment at start-up."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field

from servicekit.env import Secret
from servicekit.kafka import KafkaSettings, kafka_problems
from servicekit.logs import LOG_LEVELS, LogFormat, log_format_setting
from servicekit.settings import load, setting

PAYLOAD_HASH_MODES = ("required", "if_present", "off")
ACCESS_LOG_MODES = ("all", "refusals", "off")
MIN_SECRET_LENGTH = 16


@dataclass(frozen=True, slots=True, kw_only=True)
class IngestSettings:
    """Every ingest setting; the settings tables of docs/operations.md are generated from these
    fields (``python -m tools.settings_docs``)."""

    kafka: KafkaSettings = field(default_factory=KafkaSettings)
    host: str = setting("INGEST_HOST", "0.0.0.0", "listening address")
    port: int = setting("INGEST_PORT", 8080, "listening port", minimum=0, maximum=65535)
    workers: int = setting(
        "INGEST_WORKERS",
        1,
        "worker processes sharing the port (`SO_REUSEPORT`)",
        minimum=1,
        maximum=64,
    )
    max_body_bytes: int = setting(
        "INGEST_MAX_BODY_BYTES", 64 * 1024, "larger bodies get `413`", minimum=1, maximum=1_000_000
    )
    produce_timeout_s: float = setting(
        "INGEST_PRODUCE_TIMEOUT_S",
        15.0,
        "longest wait for Kafka's acknowledgement before `503`: longer than a broker loss stalls "
        "writes (about 12 s on a stock cluster), shorter than the sender's HTTP timeout",
        minimum=0.05,
        maximum=300,
    )
    retry_after_s: int = setting("INGEST_RETRY_AFTER_S", 5, "`Retry-After` on `503`", minimum=1)
    shutdown_timeout_s: float = setting(
        "INGEST_SHUTDOWN_TIMEOUT_S",
        20.0,
        "longest wait for in-flight requests at shutdown (keep it above "
        "`INGEST_PRODUCE_TIMEOUT_S`, which bounds each of them)",
        minimum=0,
    )
    drain_delay_s: float = setting(
        "INGEST_DRAIN_DELAY_S",
        0.0,
        "time between readiness dropping and the listener closing (set it to your load "
        "balancer's probe interval)",
        minimum=0,
    )
    readiness_interval_s: float = setting(
        "INGEST_READINESS_INTERVAL_S",
        2.0,
        "how often Kafka reachability is re-checked",
        minimum=0.05,
    )
    linger_ms: int = setting(
        "INGEST_LINGER_MS",
        0,
        "producer linger (more batching, more latency)",
        minimum=0,
        maximum=1000,
    )
    auth_token: Secret | None = setting(
        "INGEST_AUTH_TOKEN", None, "shared token of the `/callbacks` routes; at least 16 characters"
    )
    auth_token_header: str = setting(
        "INGEST_AUTH_TOKEN_HEADER", "X-Callback-Token", "header the token is looked for in"
    )
    auth_token_query: str = setting(
        "INGEST_AUTH_TOKEN_QUERY", "token", "query parameter the token is looked for in"
    )
    jwt_secret: Secret | None = setting(
        "INGEST_JWT_SECRET",
        None,
        "signature secret for signed callbacks on the `/callbacks` routes; at least 16 "
        "characters (32+ recommended)",
    )
    jwt_payload_hash: str = setting(
        "INGEST_JWT_PAYLOAD_HASH",
        "if_present",
        "`required` (recommended once the sender is known to send `payload_hash`), "
        "`if_present` (a token with the claim must match the body) or `off`, on the `/callbacks` "
        "routes (the Video routes always require it)",
        choices=PAYLOAD_HASH_MODES,
    )
    jwt_leeway_s: float = setting(
        "INGEST_JWT_LEEWAY_S", 30.0, "tolerated clock skew for `exp`/`nbf`/`iat`", minimum=0
    )
    jwt_max_age_s: float = setting(
        "INGEST_JWT_MAX_AGE_S",
        0.0,
        "refuse a signed callback whose `iat` is older than this (plus the leeway); `0` is off, "
        "as Vonage does not document re-signing a retried callback",
        minimum=0,
    )
    video_sessions_secret: Secret | None = setting(
        "INGEST_VIDEO_SESSIONS_SECRET",
        None,
        "signature secret of Vonage Video session monitoring callbacks (`/video/sessions`); "
        "unset: that route accepts unsigned callbacks; at least 16 characters (32+ recommended)",
    )
    video_archives_secret: Secret | None = setting(
        "INGEST_VIDEO_ARCHIVES_SECRET",
        None,
        "signature secret of Vonage Video archive status callbacks (`/video/archives`); "
        "unset: that route accepts unsigned callbacks; at least 16 characters (32+ recommended)",
    )
    read_timeout_s: float = setting(
        "INGEST_READ_TIMEOUT_S",
        10.0,
        "seconds for a request's headers and body to arrive (from the connection's accept or "
        "the request's first byte); then `408` and the connection closes",
        minimum=0.1,
        maximum=300,
    )
    max_connections: int = setting(
        "INGEST_MAX_CONNECTIONS",
        0,
        "open connections per process; at the cap the stalest idle or slow connection is "
        "closed for a new one; `0`: the file descriptor limit minus 128 (at most 16384)",
        minimum=0,
    )
    metrics_port: int = setting(
        "INGEST_METRICS_PORT",
        0,
        "serve `/metrics` on this port (same host) instead of the callback port; `0`: on the "
        "callback port",
        minimum=0,
        maximum=65535,
    )
    log_level: str = setting(
        "INGEST_LOG_LEVEL", "info", "`debug`, `info`, `warning`, `error`", choices=LOG_LEVELS
    )
    log_format: LogFormat = log_format_setting()
    access_log: str = setting(
        "INGEST_ACCESS_LOG",
        "refusals",
        "`all`, `refusals` (non-2xx) or `off`; logging every accepted callback costs about a "
        "fifth of the throughput (accepted callbacks are always counted in the metrics)",
        choices=ACCESS_LOG_MODES,
    )

    @property
    def raw_topic(self) -> str:
        return self.kafka.topics.raw


def _secret_lengths(settings: IngestSettings) -> Iterator[str]:
    for name, secret in (
        ("INGEST_AUTH_TOKEN", settings.auth_token),
        ("INGEST_JWT_SECRET", settings.jwt_secret),
        ("INGEST_VIDEO_SESSIONS_SECRET", settings.video_sessions_secret),
        ("INGEST_VIDEO_ARCHIVES_SECRET", settings.video_archives_secret),
    ):
        if secret is not None and len(secret.value) < MIN_SECRET_LENGTH:
            yield f"{name} must be at least {MIN_SECRET_LENGTH} characters"


def _problems(settings: IngestSettings) -> Iterator[str]:
    yield from kafka_problems(settings.kafka)
    yield from _secret_lengths(settings)


def load_settings(environ: Mapping[str, str] | None = None) -> IngestSettings:
    """Settings from ``environ`` (default ``os.environ``); ``SettingsError`` lists problems."""
    return load(IngestSettings, environ, what="ingest", checks=_problems)
