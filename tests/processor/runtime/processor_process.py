"""Run ``python -m processor`` as a real child process, as a container would."""

from __future__ import annotations

import os
from pathlib import Path

from processor.settings import ProcessorSettings
from tests.service_process import ServiceProcess
from tools.devkafka import free_port


def environment(settings: ProcessorSettings, http_port: int) -> dict[str, str]:
    return {
        **os.environ,
        "KAFKA_BOOTSTRAP_SERVERS": settings.kafka.bootstrap_servers,
        "PROCESSOR_GROUP_ID": settings.group_id,
        "MEETINGS_TOPIC_PREFIX": settings.kafka.topic_prefix,
        "PROCESSING_GUARANTEE": settings.guarantee.value,
        "COMMIT_INTERVAL_MS": str(settings.commit_interval_ms),
        "TOPIC_PARTITIONS": str(settings.topic_partitions),
        "PROCESSOR_CREATE_TOPICS": "false",
        "PROCESSOR_HTTP_HOST": "127.0.0.1",
        "PROCESSOR_HTTP_PORT": str(http_port),
        "SESSION_IDLE_TIMEOUT": str(settings.session_idle_timeout_s),
        "CONSUMER_SESSION_TIMEOUT_MS": str(settings.consumer_session_timeout_ms),
        "RESTORE_TIMEOUT_S": str(settings.restore_timeout_s),
        "PROCESSOR_FATAL_EXIT_DELAY_S": str(settings.fatal_exit_delay_s),
    }


class ProcessorProcess(ServiceProcess):
    def __init__(self, settings: ProcessorSettings, log_path: Path) -> None:
        self.http_port = free_port()
        self.url = f"http://127.0.0.1:{self.http_port}"
        super().__init__(
            "processor", environment(settings, self.http_port), log_path, f"{self.url}/readyz"
        )
