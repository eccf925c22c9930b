"""Run the ingest application in this process until SIGTERM/SIGINT, then drain gracefully.

Shutdown order: readiness goes to 503 and new callbacks are refused, an optional drain delay
lets a load balancer notice, the listening socket closes, in-flight requests finish (each is
acknowledged or refused honestly), then the publisher flushes and stops.

``IngestServer`` is that server as an object (``start()``/``stop()``): ``serve`` runs it until
a signal, and the tests run the very same one in-process, with a fake publisher and clock.
"""

from __future__ import annotations

import asyncio
import logging

from aiohttp import web

from ingest.app import begin_shutdown, init_app, init_metrics_app
from ingest.http.connections import ConnectionGuard, default_max_connections, raise_descriptor_limit
from ingest.http.protocol import Clock, IngestRunner
from ingest.metrics.tally import flushing
from ingest.publication import Publisher
from ingest.settings import IngestSettings
from servicekit.logs import FIELDS_ATTRIBUTE
from servicekit.signals import stop_on_signals

logger = logging.getLogger(__name__)


class IngestServer:
    """The application on ``IngestRunner`` and its sites, with the shutdown order above.

    ``publisher``: where callbacks are stored (``None``: production's Kafka one). ``clock``:
    the read deadlines' time (``None``: the event loop's)."""

    def __init__(
        self,
        settings: IngestSettings,
        *,
        max_connections: int,
        publisher: Publisher | None = None,
        clock: Clock | None = None,
        reuse_port: bool = False,
    ) -> None:
        self.settings = settings
        self.app = init_app(settings, publisher)
        self.runner = IngestRunner(
            self.app,
            guard=ConnectionGuard(max_connections),
            read_timeout_s=settings.read_timeout_s,
            retry_after_s=settings.retry_after_s,
            clock=clock,
            handle_signals=False,
            shutdown_timeout=settings.shutdown_timeout_s,
        )
        self._reuse_port = reuse_port or None
        self._metrics_runner: web.AppRunner | None = None
        self._started = self._stopped = False

    @property
    def port(self) -> int:
        """The callback port actually bound (``INGEST_PORT=0`` picks a free one)."""
        address = self.runner.addresses[0]
        return int(address[1])

    async def start(self) -> None:
        self._started = True
        settings = self.settings
        await self.runner.setup()
        await web.TCPSite(
            self.runner, settings.host, settings.port, reuse_port=self._reuse_port, backlog=1024
        ).start()
        if settings.metrics_port:
            self._metrics_runner = web.AppRunner(
                init_metrics_app(settings), access_log=None, handle_signals=False
            )
            await self._metrics_runner.setup()
            await web.TCPSite(
                self._metrics_runner,
                settings.host,
                settings.metrics_port,
                reuse_port=self._reuse_port,
            ).start()
            logger.info("metrics on http://%s:%d/metrics", settings.host, settings.metrics_port)

    def begin_shutdown(self) -> None:
        """Readiness goes to 503 and new callbacks are refused; in-flight ones carry on."""
        begin_shutdown(self.app)

    async def stop(self) -> None:
        """Close the listener, let in-flight requests finish (bounded by the shutdown timeout),
        then stop the publisher. Idempotent."""
        if self._stopped or not self._started:
            return
        self._stopped = True
        self.begin_shutdown()
        try:
            await self.runner.cleanup()
        finally:
            if self._metrics_runner is not None:
                await self._metrics_runner.cleanup()


async def serve(
    settings: IngestSettings, *, publisher: Publisher | None = None, reuse_port: bool = False
) -> None:
    """Serve until SIGTERM/SIGINT, then drain in the order above."""
    descriptor_limit = raise_descriptor_limit()
    max_connections = settings.max_connections or default_max_connections(descriptor_limit)
    server = IngestServer(
        settings, max_connections=max_connections, publisher=publisher, reuse_port=reuse_port
    )
    stop = asyncio.Event()
    metric_flusher = asyncio.create_task(flushing())
    with stop_on_signals(stop):
        try:
            await server.start()
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
            server.begin_shutdown()
            if settings.drain_delay_s > 0:
                await asyncio.sleep(settings.drain_delay_s)  # let load balancers see readiness drop
        finally:
            await server.stop()
            metric_flusher.cancel()
            await asyncio.gather(metric_flusher, return_exceptions=True)
    logger.info("ingest stopped")
