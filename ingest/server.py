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

from ingest.app import begin_shutdown, init_app, init_metrics_app
from ingest.connections import ConnectionGuard, default_max_connections, raise_descriptor_limit
from ingest.protocol import IngestRunner
from ingest.settings import IngestSettings
from ingest.tally import flushing
from servicekit.logs import FIELDS_ATTRIBUTE

logger = logging.getLogger(__name__)


async def serve(settings: IngestSettings, *, reuse_port: bool = False) -> None:
    app = init_app(settings)
    descriptor_limit = raise_descriptor_limit()
    max_connections = settings.max_connections or default_max_connections(descriptor_limit)
    runner = IngestRunner(
        app,
        guard=ConnectionGuard(max_connections),
        read_timeout_s=settings.read_timeout_s,
        retry_after_s=settings.retry_after_s,
        handle_signals=False,
        shutdown_timeout=settings.shutdown_timeout_s,
    )
    await runner.setup()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    metrics_runner = None
    metric_flusher = asyncio.create_task(flushing())
    try:
        site = web.TCPSite(
            runner, settings.host, settings.port, reuse_port=reuse_port or None, backlog=1024
        )
        await site.start()
        if settings.metrics_port:
            metrics_runner = web.AppRunner(
                init_metrics_app(settings), access_log=None, handle_signals=False
            )
            await metrics_runner.setup()
            await web.TCPSite(
                metrics_runner, settings.host, settings.metrics_port, reuse_port=reuse_port or None
            ).start()
            logger.info("metrics on http://%s:%d/metrics", settings.host, settings.metrics_port)
        logger.info(
            "ingest listening on http://%s:%d",
            settings.host,
            settings.port,
            extra={
                FIELDS_ATTRIBUTE: {
                    "kafka": settings.kafka.bootstrap_servers,
                    "max_connections": max_connections,
                    "descriptor_limit": descriptor_limit,
                }
            },
        )
        await stop.wait()
        logger.info("SIGTERM received: draining")
        begin_shutdown(app)
        if settings.drain_delay_s > 0:
            await asyncio.sleep(settings.drain_delay_s)  # let load balancers see readiness drop
    finally:
        await runner.cleanup()
        if metrics_runner is not None:
            await metrics_runner.cleanup()
        metric_flusher.cancel()
        await asyncio.gather(metric_flusher, return_exceptions=True)
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(signum)
    logger.info("ingest stopped")
