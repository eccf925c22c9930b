"""Run ``python -m ingest`` as a real child process, as a container would."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

import aiohttp

from devkafka import free_port
from tests.kafka_helpers import wait_until


class IngestService:
    def __init__(self, environ: Mapping[str, str], log_path: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._environ = {
            **os.environ,
            "INGEST_HOST": "127.0.0.1",
            "INGEST_PORT": str(self.port),
            **environ,
        }
        self._log_path = log_path
        self.process: subprocess.Popen[bytes] | None = None

    def spawn(self) -> None:
        with self._log_path.open("wb") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "ingest"], env=self._environ, stdout=log, stderr=log
            )

    async def start(self, session: aiohttp.ClientSession) -> None:
        self.spawn()

        async def ready() -> bool:
            assert self.process is not None
            if self.process.poll() is not None:
                raise AssertionError(f"ingest exited early:\n{self.log()}")
            try:
                async with session.get(f"{self.url}/readyz") as response:
                    return response.status == 200
            except aiohttp.ClientConnectionError:
                return False

        await wait_until(ready, what="ingest to become ready")

    def terminate(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGTERM)

    async def wait_exit(self, within: float = 30.0) -> int:
        assert self.process is not None
        return await asyncio.wait_for(asyncio.to_thread(self.process.wait), within)

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()

    def log(self) -> str:
        return self._log_path.read_text(errors="replace")
