"""Development tooling: a real single-node Apache Kafka broker assembled from Maven Central.

Shared by the test suite and ``make run``; not used by the services themselves.
"""

from tools.devkafka.broker import EmbeddedKafka, free_port
from tools.devkafka.errors import BrokerError, BrokerSetupError, BrokerStartError
from tools.devkafka.jars import ensure_kafka_jars
from tools.devkafka.version import KAFKA_VERSION, selected_kafka_version

__all__ = [
    "KAFKA_VERSION",
    "BrokerError",
    "BrokerSetupError",
    "BrokerStartError",
    "EmbeddedKafka",
    "ensure_kafka_jars",
    "free_port",
    "selected_kafka_version",
]
