"""The processor's small HTTP endpoint: ``/healthz``, ``/readyz`` and ``/metrics``."""

from __future__ import annotations

from typing import Protocol

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, generate_latest


class Health(Protocol):
    @property
    def ready(self) -> bool: ...
    @property
    def assigned_partitions(self) -> list[int]: ...
    @property
    def restoring_partitions(self) -> list[int]: ...
    @property
    def failed_partitions(self) -> dict[int, str]: ...


HEALTH = web.AppKey("health", Health)


def init_http_app(health: Health) -> web.Application:
    app = web.Application()
    app[HEALTH] = health
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/metrics", metrics)
    return app


async def healthz(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


async def readyz(request: web.Request) -> web.Response:
    health = request.app[HEALTH]
    body = {
        "status": "ready" if health.ready else "not_ready",
        "partitions": health.assigned_partitions,
        "restoring": health.restoring_partitions,
        "failed": [
            {"partition": partition, "cause": cause}
            for partition, cause in health.failed_partitions.items()
        ],
    }
    return web.json_response(body, status=200 if health.ready else 503)


async def metrics(request: web.Request) -> web.Response:
    response = web.Response(body=generate_latest(REGISTRY))
    response.headers["Content-Type"] = CONTENT_TYPE_LATEST
    return response
