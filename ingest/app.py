"""The ingest HTTP application (SPEC §3), built by ``init_app(settings)``.

A callback is answered ``204`` only after Kafka acknowledged it with ``acks=all``; every other
outcome is an honest error with a JSON body: ``400``/``413``/``415`` for bad input, ``401`` for
failed authentication, ``503`` + ``Retry-After`` when Kafka cannot take it in time or while the
service shuts down.
"""

from __future__ import annotations

import functools
import itertools
import logging
import re
import secrets
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass

import orjson
from aiohttp import hdrs, web
from prometheus_client import CONTENT_TYPE_LATEST, Counter

from ingest.auth import Authenticator
from ingest.metrics import ACCEPTED_BYTES, IN_FLIGHT, READY, REQUESTS
from ingest.prometheus import render_metrics
from ingest.publisher import PublishError, RawPublisher
from ingest.settings import IngestSettings
from ingest.validation import Rejection, check_content_type, inspect_body
from schemas.topics import (
    HEADER_CONTENT_TYPE,
    HEADER_RECEIVED_AT,
    HEADER_REQUEST_ID,
    HEADER_SOURCE_ROUTE,
)
from servicekit.logs import FIELDS_ATTRIBUTE

logger = logging.getLogger(__name__)
access_logger = logging.getLogger("ingest.access")

CALLBACK_ROUTES = ("/callbacks", "/callbacks/rooms", "/callbacks/sessions", "/callbacks/recordings")
REQUEST_ID_HEADER = "X-Request-Id"
_SAFE_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")


@dataclass(slots=True)
class Lifecycle:
    """Whether the service is draining for shutdown (readiness off, callbacks refused)."""

    shutting_down: bool = False


SETTINGS = web.AppKey("settings", IngestSettings)
PUBLISHER = web.AppKey("publisher", RawPublisher)
AUTHENTICATOR = web.AppKey("authenticator", Authenticator)
LIFECYCLE = web.AppKey("lifecycle", Lifecycle)
REQUEST_ID = web.RequestKey("request_id", str)
"""Set by the middleware for every request; also the record's ``request-id`` header."""
OUTCOME = web.RequestKey("outcome", str)
"""Why a request was refused, for the access log."""


def init_app(settings: IngestSettings, *, publisher: RawPublisher | None = None) -> web.Application:
    app = web.Application(client_max_size=settings.max_body_bytes, middlewares=[observe_requests])
    app[SETTINGS] = settings
    app[PUBLISHER] = publisher or RawPublisher(settings)
    app[AUTHENTICATOR] = Authenticator(settings)
    app[LIFECYCLE] = Lifecycle()
    app.cleanup_ctx.append(_publisher_lifecycle)
    for path in CALLBACK_ROUTES:
        app.router.add_post(path, receive_callback)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/metrics", metrics)
    return app


async def _publisher_lifecycle(app: web.Application) -> AsyncIterator[None]:
    async with app[PUBLISHER]:
        yield


def begin_shutdown(app: web.Application) -> None:
    """Readiness goes to 503 and new callbacks are refused; in-flight ones carry on."""
    app[LIFECYCLE].shutting_down = True
    READY.set(0)


# -- handlers ------------------------------------------------------------------------------


async def receive_callback(request: web.Request) -> web.StreamResponse:
    received_at_ms = time.time_ns() // 1_000_000
    app = request.app
    settings = app[SETTINGS]
    if app[LIFECYCLE].shutting_down:
        return unavailable(request, "the service is shutting down", settings.retry_after_s)
    unsupported = check_content_type(request.headers.get(hdrs.CONTENT_TYPE))
    if unsupported:
        return refuse(request, unsupported)
    if request.content_length is not None and request.content_length > settings.max_body_bytes:
        return refuse(request, _too_large(settings))
    try:
        body = await request.read()
    except web.HTTPRequestEntityTooLarge:
        return refuse(request, _too_large(settings))
    auth_failure = app[AUTHENTICATOR].check(request.headers, request.query, body)
    if auth_failure:
        return refuse(request, Rejection(401, "unauthorized", auth_failure))
    view = inspect_body(body)
    if isinstance(view, Rejection):
        return refuse(request, view)
    try:
        await app[PUBLISHER].publish(
            body, view.key, _record_headers(request, received_at_ms), received_at_ms
        )
    except PublishError as exc:
        return unavailable(
            request, f"Kafka did not store the callback ({exc.cause})", settings.retry_after_s
        )
    ACCEPTED_BYTES.inc(len(body))
    return web.Response(status=204, headers={REQUEST_ID_HEADER: request[REQUEST_ID]})


async def healthz(request: web.Request) -> web.Response:
    return json_response(request, 200, {"status": "ok"})


async def readyz(request: web.Request) -> web.Response:
    app = request.app
    if app[LIFECYCLE].shutting_down:
        READY.set(0)
        return json_response(request, 503, {"status": "shutting_down"})
    if not app[PUBLISHER].ready:
        READY.set(0)
        return json_response(request, 503, {"status": "kafka_unavailable"})
    READY.set(1)
    return json_response(request, 200, {"status": "ready"})


async def metrics(request: web.Request) -> web.Response:
    response = web.Response(body=render_metrics())
    response.headers[hdrs.CONTENT_TYPE] = CONTENT_TYPE_LATEST
    return response


# -- responses -----------------------------------------------------------------------------


def json_response(request: web.Request, status: int, payload: dict[str, object]) -> web.Response:
    return web.Response(
        status=status,
        body=orjson.dumps(payload),
        content_type="application/json",
        headers={REQUEST_ID_HEADER: request[REQUEST_ID]},
    )


def refuse(request: web.Request, rejection: Rejection) -> web.Response:
    payload: dict[str, object] = {"error": rejection.error, "detail": rejection.detail}
    if rejection.path:
        payload["path"] = rejection.path
    payload["request_id"] = request[REQUEST_ID]
    request[OUTCOME] = rejection.detail
    return json_response(request, rejection.status, payload)


def unavailable(request: web.Request, detail: str, retry_after_s: int) -> web.Response:
    response = refuse(request, Rejection(503, "unavailable", detail))
    response.headers[hdrs.RETRY_AFTER] = str(retry_after_s)
    return response


def _too_large(settings: IngestSettings) -> Rejection:
    return Rejection(413, "payload_too_large", f"the body exceeds {settings.max_body_bytes} bytes")


def _record_headers(request: web.Request, received_at_ms: int) -> list[tuple[str, bytes]]:
    return [
        (HEADER_RECEIVED_AT, str(received_at_ms).encode()),
        (HEADER_SOURCE_ROUTE, request.path.encode()),
        (HEADER_REQUEST_ID, request[REQUEST_ID].encode()),
        (HEADER_CONTENT_TYPE, request.headers.get(hdrs.CONTENT_TYPE, "application/json").encode()),
    ]


# -- middleware ----------------------------------------------------------------------------

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@web.middleware
async def observe_requests(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Request id, metrics, an access log line, and JSON for unexpected errors."""
    offered = request.headers.get(REQUEST_ID_HEADER)
    request[REQUEST_ID] = (
        offered if offered and _SAFE_REQUEST_ID.match(offered) else next(_request_ids)
    )
    resource = request.match_info.route.resource
    route = resource.canonical if resource is not None else "unmatched"
    is_callback = request.method == hdrs.METH_POST
    began = time.perf_counter()
    if is_callback:
        IN_FLIGHT.inc()
    try:
        response = await handler(request)
    except web.HTTPException as exc:  # 404, 405 from the router
        error = exc.reason.lower().replace(" ", "_")
        response = json_response(
            request, exc.status, {"error": error, "request_id": request[REQUEST_ID]}
        )
    except Exception:
        logger.exception(
            "unhandled error", extra={FIELDS_ATTRIBUTE: {"request_id": request[REQUEST_ID]}}
        )
        response = json_response(
            request, 500, {"error": "internal_error", "request_id": request[REQUEST_ID]}
        )
    finally:
        if is_callback:
            IN_FLIGHT.dec()
    status = response.status
    _requests_counter(route, status).inc()
    mode = request.app[SETTINGS].access_log
    if status >= 500 or (is_callback and (mode == "all" or (mode == "refusals" and status >= 300))):
        _log_access(request, route, status, began)
    return response


def _log_access(request: web.Request, route: str, status: int, began: float) -> None:
    access_logger.info(
        "%s %s %s",
        request.method,
        request.path,
        status,
        extra={
            FIELDS_ATTRIBUTE: {
                "request_id": request[REQUEST_ID],
                "method": request.method,
                "route": route,
                "status": status,
                "duration_ms": round((time.perf_counter() - began) * 1000, 3),
                "bytes": request.content_length,
                "remote": request.remote,
                "detail": request.get(OUTCOME),
            }
        },
    )


@functools.cache
def _requests_counter(route: str, status: int) -> Counter:
    """The labelled child, looked up once per (route, status) rather than per request."""
    return REQUESTS.labels(route=route, status=str(status))


def _request_id_source() -> Iterator[str]:
    """Unique ids without a syscall per request: a random per-process prefix and a counter."""
    prefix = secrets.token_hex(6)
    return (f"{prefix}{number:08x}" for number in itertools.count())


_request_ids = _request_id_source()
