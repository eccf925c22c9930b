"""Several ingest worker processes sharing one port (``SO_REUSEPORT``), so a container uses
every core it is given. The kernel spreads connections across workers.

The supervisor forwards SIGTERM/SIGINT to the workers and waits for them to drain. If a worker
dies on its own, the others are stopped too and the supervisor exits non-zero, so the container
orchestrator restarts a whole, healthy service rather than a silently shrunken one.
"""

from __future__ import annotations

import logging
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

from ingest.metrics.prometheus import MULTIPROC_DIR_VARIABLE
from ingest.settings import IngestSettings

logger = logging.getLogger(__name__)

WORKER_VARIABLE = "INGEST_WORKER_PROCESS"
"""Set in a worker's environment: run one server instead of supervising."""


def supervise(settings: IngestSettings) -> int:
    environ = dict(os.environ)
    environ[WORKER_VARIABLE] = "1"
    own_metrics_dir = None
    if not environ.get(MULTIPROC_DIR_VARIABLE):
        own_metrics_dir = tempfile.mkdtemp(prefix="ingest-metrics-")
        environ[MULTIPROC_DIR_VARIABLE] = own_metrics_dir
    stop_signals: list[int] = []
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda received, _frame: stop_signals.append(received))
    workers = [
        subprocess.Popen([sys.executable, "-m", "ingest"], env=environ)
        for _ in range(settings.workers)
    ]
    logger.info("started %d ingest workers: %s", len(workers), [w.pid for w in workers])
    exit_code = 0
    try:
        while not stop_signals:
            crashed = [w for w in workers if w.poll() is not None]
            if crashed:
                logger.error(
                    "ingest worker %d exited with %s; stopping the others",
                    crashed[0].pid,
                    crashed[0].returncode,
                )
                exit_code = 1
                break
            time.sleep(0.2)  # supervision tick; signals interrupt it
        for worker in workers:
            if worker.poll() is None:
                worker.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + settings.shutdown_timeout_s + settings.drain_delay_s + 10
        for worker in workers:
            try:
                worker.wait(timeout=max(deadline - time.monotonic(), 0.1))
            except subprocess.TimeoutExpired:
                logger.error("ingest worker %d did not stop in time; killing it", worker.pid)
                worker.kill()
                worker.wait()
            if worker.returncode not in (0, -signal.SIGTERM):
                exit_code = exit_code or 1
    finally:
        if own_metrics_dir is not None:
            shutil.rmtree(own_metrics_dir, ignore_errors=True)
    return exit_code
