"""The one place the Apache Kafka version is pinned (tests, ``make run`` and compose use it)."""

import os

KAFKA_VERSION = "4.1.1"


def selected_kafka_version() -> str:
    """The pinned version, unless ``KAFKA_VERSION`` asks for another line (e.g. 3.9.1, 4.3.1)."""
    return os.environ.get("KAFKA_VERSION") or KAFKA_VERSION
