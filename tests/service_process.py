"""A service run as a real child process (``python -m <module>``), as a container runs it."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

import aiohttp

from tests.kafka_helpers import wait_until


class ServiceProcess:
    """Spawned with ``environ``; ready once ``ready_url`` answers 200."""

    def __init__(
        self, module: str, environ: Mapping[str, str], log_path: Path, ready_url: str
    ) -> None:
        self._module = module
        self._environ = dict(environ)
        self._log_path = log_path
        self._ready_url = ready_url
        self.process: subprocess.Popen[bytes] | None = None

    def spawn(self) -> None:
        with self._log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", self._module], env=self._environ, stdout=log, stderr=log
            )

    async def start(self, http: aiohttp.ClientSession, *, within: float = 60.0) -> None:
        self.spawn()

        async def ready() -> bool:
            assert self.process is not None
            if self.process.poll() is not None:
                raise AssertionError(f"{self._module} exited early:\n{self.log()}")
            try:
                async with http.get(self._ready_url) as response:
                    return response.status == 200
            except aiohttp.ClientConnectionError:
                return False

        await wait_until(ready, what=f"{self._module} to become ready", within=within)

    def signal(self, signum: signal.Signals) -> None:
        assert self.process is not None
        self.process.send_signal(signum)

    def terminate(self) -> None:
        self.signal(signal.SIGTERM)

    async def wait_exit(self, within: float = 60.0) -> int:
        assert self.process is not None
        return await asyncio.wait_for(asyncio.to_thread(self.process.wait), within)

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()

    def log(self) -> str:
        return self._log_path.read_text(errors="replace")
