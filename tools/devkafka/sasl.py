"""An optional SASL_PLAINTEXT client listener for the embedded broker (``sasl_users=``).

Beside the PLAINTEXT listener, which the broker keeps for itself and for other clients, it accepts
PLAIN, SCRAM-SHA-256 and SCRAM-SHA-512 logins for the given users, so clients configured the way a
production cluster demands are tested against a real broker.
"""

from __future__ import annotations

from collections.abc import Mapping

MECHANISMS = ("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512")
_PREFIX = "listener.name.sasl_plaintext"
_SCRAM_LOGIN = "org.apache.kafka.common.security.scram.ScramLoginModule required;"


def sasl_listener(base: Mapping[str, str], port: int, users: Mapping[str, str]) -> dict[str, str]:
    """Broker properties adding ``SASL_PLAINTEXT://127.0.0.1:port`` to those in ``base``."""
    listener = f"SASL_PLAINTEXT://127.0.0.1:{port}"
    plain_users = " ".join(f'user_{user}="{password}"' for user, password in users.items())
    return {
        "listeners": f"{base['listeners']},{listener}",
        "advertised.listeners": f"{base['advertised.listeners']},{listener}",
        "listener.security.protocol.map": (
            f"{base['listener.security.protocol.map']},SASL_PLAINTEXT:SASL_PLAINTEXT"
        ),
        "sasl.enabled.mechanisms": ",".join(MECHANISMS),
        f"{_PREFIX}.plain.sasl.jaas.config": (
            f"org.apache.kafka.common.security.plain.PlainLoginModule required {plain_users};"
        ),
        f"{_PREFIX}.scram-sha-256.sasl.jaas.config": _SCRAM_LOGIN,
        f"{_PREFIX}.scram-sha-512.sasl.jaas.config": _SCRAM_LOGIN,
    }


def scram_format_arguments(users: Mapping[str, str]) -> list[str]:
    """``kafka-storage format`` arguments: in KRaft, SCRAM credentials live in the metadata log."""
    return [
        argument
        for user, password in users.items()
        for mechanism in MECHANISMS[1:]
        for argument in ("--add-scram", f"{mechanism}=[name={user},password={password}]")
    ]
