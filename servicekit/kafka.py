"""Where the pipeline's Kafka is, how to reach it securely, and what its topics are called:
settings both services share.

Every aiokafka client of both services is built with ``client_options()``, so connection and
security settings live in one place. Security follows Kafka's own client settings: a security
protocol (``PLAINTEXT``, ``SSL``, ``SASL_PLAINTEXT``, ``SASL_SSL``), a SASL mechanism (``PLAIN``,
``SCRAM-SHA-256``, ``SCRAM-SHA-512``) with a user name and a password, and for TLS a CA bundle and
optionally a client certificate and key, all PEM files.
"""

from __future__ import annotations

import functools
import ssl
from collections.abc import Iterator
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from schemas.topics import DEFAULT_PREFIX, RAW, TopicNames
from servicekit.env import Secret
from servicekit.partitioner import default_partition
from servicekit.settings import setting


class SecurityProtocol(StrEnum):
    """Kafka's ``security.protocol`` (read in any case: ``SASL_SSL`` or ``sasl_ssl``)."""

    PLAINTEXT = "plaintext"
    SSL = "ssl"
    SASL_PLAINTEXT = "sasl_plaintext"
    SASL_SSL = "sasl_ssl"

    @property
    def uses_sasl(self) -> bool:
        return self in (SecurityProtocol.SASL_PLAINTEXT, SecurityProtocol.SASL_SSL)

    @property
    def uses_tls(self) -> bool:
        return self in (SecurityProtocol.SSL, SecurityProtocol.SASL_SSL)


class SaslMechanism(StrEnum):
    PLAIN = "plain"
    SCRAM_SHA_256 = "scram-sha-256"
    SCRAM_SHA_512 = "scram-sha-512"


@dataclass(frozen=True, slots=True, kw_only=True)
class KafkaSettings:
    bootstrap_servers: str = setting(
        "KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:9092", "Kafka brokers, comma-separated host:port"
    )
    topic_prefix: str = setting(
        "MEETINGS_TOPIC_PREFIX",
        DEFAULT_PREFIX,
        f"prefix of every topic name (`{RAW.name}`, ...), the same for both services",
    )
    security_protocol: SecurityProtocol = setting(
        "KAFKA_SECURITY_PROTOCOL",
        SecurityProtocol.PLAINTEXT,
        "`PLAINTEXT`, `SSL`, `SASL_PLAINTEXT` or `SASL_SSL`",
        default_text="PLAINTEXT",
    )
    sasl_mechanism: SaslMechanism = setting(
        "KAFKA_SASL_MECHANISM",
        SaslMechanism.SCRAM_SHA_512,
        "`PLAIN`, `SCRAM-SHA-256` or `SCRAM-SHA-512` (with the `SASL_` protocols)",
        default_text="SCRAM-SHA-512",
    )
    sasl_username: str | None = setting(
        "KAFKA_SASL_USERNAME", None, "SASL user name (required with the `SASL_` protocols)"
    )
    sasl_password: Secret | None = setting(
        "KAFKA_SASL_PASSWORD", None, "SASL password (required with the `SASL_` protocols)"
    )
    ssl_ca_file: str | None = setting(
        "KAFKA_SSL_CA_FILE",
        None,
        "PEM file of the CAs the brokers' certificates are checked against (unset: the "
        "system's CAs)",
    )
    ssl_cert_file: str | None = setting(
        "KAFKA_SSL_CERT_FILE",
        None,
        "PEM client certificate (chain), for brokers that require one; needs `KAFKA_SSL_KEY_FILE`",
    )
    ssl_key_file: str | None = setting(
        "KAFKA_SSL_KEY_FILE", None, "PEM private key of the client certificate"
    )
    ssl_key_password: Secret | None = setting(
        "KAFKA_SSL_KEY_PASSWORD", None, "password of an encrypted `KAFKA_SSL_KEY_FILE`"
    )
    ssl_check_hostname: bool = setting(
        "KAFKA_SSL_CHECK_HOSTNAME",
        True,
        "check that each broker's certificate names the host connected to",
    )

    @property
    def topics(self) -> TopicNames:
        return TopicNames.with_prefix(self.topic_prefix)

    def client_options(self) -> dict[str, Any]:
        """Keyword arguments for every aiokafka client (producer, consumer, admin)."""
        protocol = self.security_protocol
        options: dict[str, Any] = {
            "bootstrap_servers": self.bootstrap_servers,
            "security_protocol": protocol.value.upper(),
        }
        if protocol.uses_sasl:
            password = self.sasl_password.value if self.sasl_password is not None else None
            options |= {
                "sasl_mechanism": self.sasl_mechanism.value.upper(),
                "sasl_plain_username": self.sasl_username,
                "sasl_plain_password": password,
            }
        if protocol.uses_tls:
            options["ssl_context"] = self.ssl_context()
        return options

    def producer_options(self) -> dict[str, Any]:
        """``client_options()`` plus what every producer of the pipeline shares: Kafka's default
        key partitioning, computed by ``servicekit.partitioner`` (same partitions, half the CPU
        of aiokafka's own)."""
        return self.client_options() | {"partitioner": default_partition}

    def ssl_context(self) -> ssl.SSLContext:
        """The TLS context of every connection, built once per process (it reads the files)."""
        key_password = self.ssl_key_password.value if self.ssl_key_password is not None else None
        return _ssl_context(
            self.ssl_ca_file,
            self.ssl_cert_file,
            self.ssl_key_file,
            key_password,
            self.ssl_check_hostname,
        )


@functools.cache
def _ssl_context(
    ca_file: str | None,
    cert_file: str | None,
    key_file: str | None,
    key_password: str | None,
    check_hostname: bool,
) -> ssl.SSLContext:
    # Certificates are always verified; only the host name check can be turned off (brokers
    # reached through addresses their certificates do not name).
    context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=ca_file)
    context.check_hostname = check_hostname
    if cert_file is not None:
        context.load_cert_chain(cert_file, key_file, key_password)
    return context


def kafka_problems(kafka: KafkaSettings) -> Iterator[str]:
    """What makes these security settings unusable, checked at start rather than at the first
    connection: missing credentials, credentials the protocol would silently ignore, and TLS
    files that cannot be read."""
    protocol = kafka.security_protocol
    shown = protocol.value.upper()
    if protocol.uses_sasl:
        if kafka.sasl_username is None or kafka.sasl_password is None:
            yield (
                f"KAFKA_SECURITY_PROTOCOL={shown} needs KAFKA_SASL_USERNAME and KAFKA_SASL_PASSWORD"
            )
    elif kafka.sasl_username is not None or kafka.sasl_password is not None:
        yield f"KAFKA_SASL_* are set but KAFKA_SECURITY_PROTOCOL={shown} uses no SASL"
    tls_files = (kafka.ssl_ca_file, kafka.ssl_cert_file, kafka.ssl_key_file)
    if not protocol.uses_tls:
        if any(path is not None for path in tls_files):
            yield f"KAFKA_SSL_* files are set but KAFKA_SECURITY_PROTOCOL={shown} uses no TLS"
        return
    if (kafka.ssl_cert_file is None) != (kafka.ssl_key_file is None):
        yield "KAFKA_SSL_CERT_FILE and KAFKA_SSL_KEY_FILE go together"
        return
    try:
        kafka.ssl_context()
    except (OSError, ssl.SSLError, ValueError) as exc:
        yield f"the KAFKA_SSL_* files cannot be used: {exc}"
