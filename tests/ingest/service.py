"""Run ``python -m ingest`` as a real child process on a free loopback port."""

from __future__ import annotations

import os
import resource
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Mapping
from pathlib import Path

from tests.service_process import ServiceProcess
from tools.devkafka import free_port


class IngestService(ServiceProcess):
    """``descriptor_limit``: the child's soft and hard ``RLIMIT_NOFILE`` (a number: both, so it
    cannot raise the soft one), to run out of file descriptors without opening thousands of
    connections."""

    def __init__(
        self,
        environ: Mapping[str, str],
        log_path: Path,
        *,
        descriptor_limit: int | tuple[int, int] | None = None,
    ) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._descriptor_limit = descriptor_limit
        super().__init__(
            "ingest",
            {**os.environ, "INGEST_HOST": "127.0.0.1", "INGEST_PORT": str(self.port), **environ},
            log_path,
            f"{self.url}/readyz",
        )

    def spawn(self) -> None:
        if self._descriptor_limit is None:
            super().spawn()
            return
        limit = self._descriptor_limit
        soft, hard = limit if isinstance(limit, tuple) else (limit, limit)

        def lower_limit() -> None:  # runs in the child before exec
            resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))

        with self._log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "ingest"],
                env=self._environ,
                stdout=log,
                stderr=log,
                preexec_fn=lower_limit,
            )

    def start_blocking(self, *, within: float = 60.0) -> None:
        """``start`` for synchronous (module-scoped) fixtures."""
        self.spawn()
        deadline = time.monotonic() + within
        while time.monotonic() < deadline:
            assert self.process is not None
            if self.process.poll() is not None:
                raise AssertionError(f"ingest exited early:\n{self.log()}")
            try:
                with urllib.request.urlopen(f"{self.url}/readyz", timeout=2) as response:
                    if response.status == 200:
                        return
            except (urllib.error.URLError, ConnectionError):
                pass
            time.sleep(0.1)  # polling interval of the readiness wait
        raise AssertionError(f"ingest did not become ready in {within:.0f} s:\n{self.log()}")
