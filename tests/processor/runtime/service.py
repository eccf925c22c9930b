"""Run ``python -m processor`` as a real child process, as a container would."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from pathlib import Path

import aiohttp

from devkafka import free_port
from processor.settings import ProcessorSettings
from tests.kafka_helpers import wait_until


def environment(settings: ProcessorSettings, http_port: int) -> dict[str, str]:
    prefix = settings.topics.raw.removesuffix("callbacks.raw")
    return {
        **os.environ,
        "KAFKA_BOOTSTRAP_SERVERS": settings.kafka_bootstrap_servers,
        "PROCESSOR_GROUP_ID": settings.group_id,
        "MEETINGS_TOPIC_PREFIX": prefix,
        "PROCESSING_GUARANTEE": settings.guarantee.value,
        "COMMIT_INTERVAL_MS": str(settings.commit_interval_ms),
        "TOPIC_PARTITIONS": str(settings.topic_partitions),
        "PROCESSOR_CREATE_TOPICS": "false",
        "PROCESSOR_HTTP_HOST": "127.0.0.1",
        "PROCESSOR_HTTP_PORT": str(http_port),
        "SESSION_IDLE_TIMEOUT": str(settings.session_idle_timeout_s),
        "CONSUMER_SESSION_TIMEOUT_MS": str(settings.consumer_session_timeout_ms),
    }


class ProcessorProcess:
    def __init__(self, settings: ProcessorSettings, log_path: Path) -> None:
        self.http_port = free_port()
        self.url = f"http://127.0.0.1:{self.http_port}"
        self._environ = environment(settings, self.http_port)
        self._log_path = log_path
        self.process: subprocess.Popen[bytes] | None = None

    def spawn(self) -> None:
        with self._log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "processor"], env=self._environ, stdout=log, stderr=log
            )

    async def start(self, http: aiohttp.ClientSession) -> None:
        self.spawn()

        async def ready() -> bool:
            assert self.process is not None
            if self.process.poll() is not None:
                raise AssertionError(f"processor exited early:\n{self.log()}")
            try:
                async with http.get(f"{self.url}/readyz") as response:
                    return response.status == 200
            except aiohttp.ClientConnectionError:
                return False

        await wait_until(ready, what="the processor to become ready", within=60)

    def signal(self, signum: signal.Signals) -> None:
        assert self.process is not None
        self.process.send_signal(signum)

    async def wait_exit(self, within: float = 60.0) -> int:
        assert self.process is not None
        return await asyncio.wait_for(asyncio.to_thread(self.process.wait), within)

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()

    def log(self) -> str:
        return self._log_path.read_text(errors="replace")
