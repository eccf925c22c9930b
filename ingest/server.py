"""Run the ingest application in this process until SIGTERM/SIGINT, then drain gracefully.

Shutdown order: readiness goes to 503 and new callbacks are refused, an optional drain delay
lets a load balancer notice, the listening socket closes, in-flight requests finish (each is
acknowledged or refused honestly), then the producer flushes and stops.
"""

from __future__ import annotations

import asyncio
import logging
import signal

from aiohttp import web

from ingest.app import begin_shutdown, init_app
from ingest.settings import IngestSettings
from servicekit.logs import FIELDS_ATTRIBUTE

logger = logging.getLogger(__name__)


async def serve(settings: IngestSettings, *, reuse_port: bool = False) -> None:
    app = init_app(settings)
    runner = web.AppRunner(
        app, access_log=None, handle_signals=False, shutdown_timeout=settings.shutdown_timeout_s
    )
    await runner.setup()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    try:
        site = web.TCPSite(
            runner, settings.host, settings.port, reuse_port=reuse_port or None, backlog=1024
        )
        await site.start()
        logger.info(
            "ingest listening on http://%s:%d",
            settings.host,
            settings.port,
            extra={FIELDS_ATTRIBUTE: {"kafka": settings.kafka.bootstrap_servers}},
        )
        await stop.wait()
        logger.info("SIGTERM received: draining")
        begin_shutdown(app)
        if settings.drain_delay_s > 0:
            await asyncio.sleep(settings.drain_delay_s)  # let load balancers see readiness drop
    finally:
        await runner.cleanup()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(signum)
    logger.info("ingest stopped")
