"""Where the pipeline's Kafka is and what its topics are called: settings both services share.

Every aiokafka client of both services is built with ``client_options()``, so connection and
security settings live in one place.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from schemas.topics import DEFAULT_PREFIX, RAW, TopicNames
from servicekit.settings import setting


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

    @property
    def topics(self) -> TopicNames:
        return TopicNames.with_prefix(self.topic_prefix)

    def client_options(self) -> dict[str, Any]:
        """Keyword arguments for every aiokafka client (producer, consumer, admin)."""
        return {"bootstrap_servers": self.bootstrap_servers}
