"""``python -m ingest``: the ingest HTTP service (contract §3), until SIGTERM/SIGINT.

Settings come from the environment (docs/operations.md). With ``INGEST_WORKERS`` > 1 this process
supervises that many workers sharing the port (``ingest.supervisor``). Exit status 0 after a
graceful stop, 1 when it cannot start (the port is taken) or a worker died, 2 for bad settings.
"""

from __future__ import annotations

import logging
import os
import sys

import uvloop

from ingest.server import serve
from ingest.settings import load_settings
from ingest.supervisor import WORKER_VARIABLE, supervise
from servicekit.env import SettingsError
from servicekit.logs import configure_logging

logger = logging.getLogger("ingest")


def main() -> int:
    try:
        settings = load_settings()
    except SettingsError as exc:
        sys.stderr.write(f"ingest: {exc}\n")
        return 2
    configure_logging(settings.log_level, settings.log_format)
    is_worker = os.environ.get(WORKER_VARIABLE) == "1"
    if settings.workers > 1 and not is_worker:
        return supervise(settings)
    try:
        # uvloop: the same asyncio API with a faster loop, so more callbacks per core.
        uvloop.run(serve(settings, reuse_port=is_worker))
    except OSError as exc:  # e.g. the port is taken
        logger.error("ingest could not start: %s", exc)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
