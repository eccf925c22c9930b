"""A second embedded broker, secured: SASL_PLAINTEXT and SASL_SSL listeners (PLAIN, SCRAM-SHA-256,
SCRAM-SHA-512) beside its PLAINTEXT one, with the test CA of ``tests/fixtures/tls``."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tools.devkafka import BrokerError, EmbeddedKafka
from tools.devkafka.sasl import ListenerTls

TLS = Path(__file__).parent.parent / "fixtures" / "tls"
USER = "meetings"
PASSWORD = "meetings-kafka-secret"


@dataclass(frozen=True)
class SecuredKafka:
    broker: EmbeddedKafka

    @property
    def plaintext(self) -> str:
        """The unauthenticated listener, for setting things up behind the tests' backs."""
        return self.broker.bootstrap_servers

    def servers(self, protocol: str) -> str:
        return self.broker.sasl_bootstrap_servers(protocol)


@pytest.fixture(scope="session")
def secured_kafka() -> Iterator[SecuredKafka]:
    broker = EmbeddedKafka(
        heap="384m",
        sasl_users={USER: PASSWORD},
        sasl_tls=ListenerTls(keystore=TLS / "broker.pem", truststore=TLS / "ca.crt"),
    )
    try:
        broker.start()
    except BrokerError as exc:
        broker.close()
        pytest.fail(f"could not start the secured Kafka broker: {exc}", pytrace=False)
    try:
        yield SecuredKafka(broker)
    finally:
        broker.close()


# The chart's helm, for rendering the chart's Kafka configuration (see tests/deploy).
from tests.deploy.conftest import helm  # noqa: E402, F401
