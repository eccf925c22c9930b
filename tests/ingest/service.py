"""Run ``python -m ingest`` as a real child process on a free loopback port."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from tests.service_process import ServiceProcess
from tools.devkafka import free_port


class IngestService(ServiceProcess):
    def __init__(self, environ: Mapping[str, str], log_path: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        super().__init__(
            "ingest",
            {**os.environ, "INGEST_HOST": "127.0.0.1", "INGEST_PORT": str(self.port), **environ},
            log_path,
            f"{self.url}/readyz",
        )
