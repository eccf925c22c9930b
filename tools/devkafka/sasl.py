"""Optional SASL client listeners for the embedded broker (``sasl_users=``, ``sasl_tls=``).

Beside the PLAINTEXT listener, which the broker keeps for itself and for other clients, a
SASL_PLAINTEXT listener (and, given a keystore and a truststore, a SASL_SSL one that also verifies
client certificates when presented) accepts PLAIN, SCRAM-SHA-256 and SCRAM-SHA-512 logins for the
given users, so clients configured the way a production cluster demands are tested for real.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

MECHANISMS = ("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512")
_SCRAM_LOGIN = "org.apache.kafka.common.security.scram.ScramLoginModule required;"


@dataclass(frozen=True, slots=True)
class ListenerTls:
    keystore: Path
    """PEM: the broker's private key (unencrypted PKCS#8) followed by its certificate chain
    (relative paths are taken from the current directory, not the broker's)."""
    truststore: Path
    """PEM: the CA certificates client certificates are verified against."""


def sasl_listeners(
    base: Mapping[str, str],
    ports: Mapping[str, int],
    users: Mapping[str, str],
    tls: ListenerTls | None,
) -> dict[str, str]:
    """Broker properties adding a listener on ``127.0.0.1:port`` for each protocol in ``ports``
    (``SASL_PLAINTEXT``, ``SASL_SSL``) to those in ``base``."""
    properties = {
        key: base[key]
        for key in ("listeners", "advertised.listeners", "listener.security.protocol.map")
    }
    properties["sasl.enabled.mechanisms"] = ",".join(MECHANISMS)
    plain_users = " ".join(f'user_{user}="{password}"' for user, password in users.items())
    for protocol, port in ports.items():
        listener = f"{protocol}://127.0.0.1:{port}"
        properties["listeners"] += f",{listener}"
        properties["advertised.listeners"] += f",{listener}"
        properties["listener.security.protocol.map"] += f",{protocol}:{protocol}"
        prefix = f"listener.name.{protocol.lower()}"
        properties[f"{prefix}.plain.sasl.jaas.config"] = (
            f"org.apache.kafka.common.security.plain.PlainLoginModule required {plain_users};"
        )
        properties[f"{prefix}.scram-sha-256.sasl.jaas.config"] = _SCRAM_LOGIN
        properties[f"{prefix}.scram-sha-512.sasl.jaas.config"] = _SCRAM_LOGIN
        if protocol == "SASL_SSL" and tls is not None:
            properties |= {
                f"{prefix}.ssl.keystore.type": "PEM",
                f"{prefix}.ssl.keystore.location": str(tls.keystore.resolve()),
                f"{prefix}.ssl.truststore.type": "PEM",
                f"{prefix}.ssl.truststore.location": str(tls.truststore.resolve()),
                f"{prefix}.ssl.client.auth": "requested",
            }
    return properties


def scram_format_arguments(users: Mapping[str, str]) -> list[str]:
    """``kafka-storage format`` arguments: in KRaft, SCRAM credentials live in the metadata log."""
    return [
        argument
        for user, password in users.items()
        for mechanism in MECHANISMS[1:]
        for argument in ("--add-scram", f"{mechanism}=[name={user},password={password}]")
    ]
