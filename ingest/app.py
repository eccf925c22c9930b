"""The ingest HTTP application (SPEC §3), built by ``init_app(settings)``.

A callback is answered ``204`` only after Kafka acknowledged it with ``acks=all``; every other
outcome is an honest error with a JSON body: ``400``/``413``/``415`` for bad input, ``401`` for
failed authentication, ``503`` + ``Retry-After`` when Kafka cannot take it in time or while the
service shuts down.
"""

from __future__ import annotations

import asyncio
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
from aiohttp.web_protocol import RequestPayloadError
from prometheus_client import CONTENT_TYPE_LATEST, Counter

from ingest.auth import Authenticator
from ingest.metrics import ACCEPTED_BYTES, CONNECTIONS_CLOSED, IN_FLIGHT, READY, REQUESTS
from ingest.prometheus import render_metrics
from ingest.protocol import body_received, close_after_response, read_deadline
from ingest.publisher import PublishError, RawPublisher
from ingest.responses import error_code, printable
from ingest.settings import IngestSettings
from ingest.validation import (
    Rejection,
    check_content_encoding,
    check_content_type,
    inspect_body,
)
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
CLIENT_CLOSED_STATUS = "client_closed"
"""The ``status`` label of requests whose client vanished before the body arrived."""
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
CLIENT_CLOSED = web.RequestKey("client_closed", bool)
"""Set when the client vanished mid-request: counted under its own label, not as an error."""


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
    if not settings.metrics_port:
        app.router.add_get("/metrics", metrics)
    return app


def init_metrics_app(settings: IngestSettings) -> web.Application:
    """``/metrics`` alone, for ``INGEST_METRICS_PORT``: the scrape need not be public."""
    app = web.Application(middlewares=[observe_requests])
    app[SETTINGS] = settings
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
    headers = request.headers
    unsupported = check_content_type(headers.get(hdrs.CONTENT_TYPE)) or check_content_encoding(
        headers.get(hdrs.CONTENT_ENCODING)
    )
    if unsupported:
        return refuse(request, unsupported)
    if request.content_length is not None and request.content_length > settings.max_body_bytes:
        return refuse(request, _too_large(settings))
    try:
        if request.content.is_eof():  # the usual small body arrived with the headers
            body = await request.read()
        else:
            async with asyncio.timeout_at(read_deadline(request, settings.read_timeout_s)):
                body = await request.read()
            body_received(request)
    except TimeoutError:
        CONNECTIONS_CLOSED.labels(reason="read_timeout").inc()
        close_after_response(request)
        return refuse(
            request,
            Rejection(
                408,
                "request_timeout",
                f"the body did not arrive within {settings.read_timeout_s:g} s",
            ),
        )
    except web.HTTPRequestEntityTooLarge:
        return refuse(request, _too_large(settings))
    except RequestPayloadError as exc:  # a corrupt compressed body or chunked framing
        close_after_response(request)  # the rest of the body cannot be read either
        return refuse(request, Rejection(400, "invalid_body", _payload_detail(exc)))
    except ConnectionError:
        return client_gone(request)
    auth_failure = app[AUTHENTICATOR].check(headers, request.query, body)
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
        return unavailable(request, exc.detail, settings.retry_after_s)
    ACCEPTED_BYTES.inc(len(body))
    return web.Response(status=204, headers={REQUEST_ID_HEADER: request[REQUEST_ID]})


async def healthz(request: web.Request) -> web.Response:
    return json_response(request, 200, {"status": "ok"})


async def readyz(request: web.Request) -> web.Response:
    app = request.app
    if app[LIFECYCLE].shutting_down:
        READY.set(0)
        return json_response(request, 503, {"status": "shutting_down"})
    publisher = app[PUBLISHER]
    if not publisher.ready:
        READY.set(0)
        status = "raw_topic_missing" if publisher.topic_missing else "kafka_unavailable"
        return json_response(request, 503, {"status": status})
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


def client_gone(request: web.Request) -> web.Response:
    """The client closed the connection before its body arrived: nobody reads this answer, and
    it is not a server error; the middleware counts it as ``client_closed``."""
    request[CLIENT_CLOSED] = True
    request[OUTCOME] = "the client closed the connection before sending its body"
    return json_response(request, 400, {"error": "client_closed", "detail": request[OUTCOME]})


def _payload_detail(exc: RequestPayloadError) -> str:
    cause = exc.__cause__ or exc
    message = getattr(cause, "message", None) or str(cause)
    return f"the body could not be read: {printable(str(message))}"


def _too_large(settings: IngestSettings) -> Rejection:
    return Rejection(413, "payload_too_large", f"the body exceeds {settings.max_body_bytes} bytes")


def _record_headers(request: web.Request, received_at_ms: int) -> list[tuple[str, bytes]]:
    return [
        (HEADER_RECEIVED_AT, str(received_at_ms).encode()),
        (HEADER_SOURCE_ROUTE, request.match_info.route.resource.canonical.encode()),  # type: ignore[union-attr]
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
        response = _router_error(request, exc)
    except Exception:
        logger.exception(
            "unhandled error", extra={FIELDS_ATTRIBUTE: {"request_id": request[REQUEST_ID]}}
        )
        response = json_response(
            request,
            500,
            {
                "error": "internal_error",
                "detail": "an unexpected error; the callback was not stored",
                "request_id": request[REQUEST_ID],
            },
        )
    finally:
        if is_callback:
            IN_FLIGHT.dec()
    status = response.status
    if request.get(CLIENT_CLOSED):
        _requests_counter(route, CLIENT_CLOSED_STATUS).inc()
        access_logger.debug("client closed the connection mid-request on %s", route)
        return response
    _requests_counter(route, str(status)).inc()
    mode = request.app[SETTINGS].access_log
    if status >= 500 or (is_callback and (mode == "all" or (mode == "refusals" and status >= 300))):
        _log_access(request, route, status, began)
    return response


def _router_error(request: web.Request, exc: web.HTTPException) -> web.Response:
    target = printable(request.path)
    if isinstance(exc, web.HTTPMethodNotAllowed):
        allowed = ", ".join(sorted(exc.allowed_methods))
        detail = f"{request.method} is not allowed on {target}; use {allowed}"
    elif isinstance(exc, web.HTTPNotFound):
        detail = f"no such route: {target} (callbacks go to {', '.join(CALLBACK_ROUTES)})"
    else:
        detail = exc.reason
    response = json_response(
        request,
        exc.status,
        {"error": error_code(exc.status), "detail": detail, "request_id": request[REQUEST_ID]},
    )
    if hdrs.ALLOW in exc.headers:
        response.headers[hdrs.ALLOW] = exc.headers[hdrs.ALLOW]
    return response


def _log_access(request: web.Request, route: str, status: int, began: float) -> None:
    access_logger.info(
        "%s %s %s",
        request.method,
        printable(request.path),
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
def _requests_counter(route: str, status: str) -> Counter:
    """The labelled child, looked up once per (route, status) rather than per request."""
    return REQUESTS.labels(route=route, status=status)


def _request_id_source() -> Iterator[str]:
    """Unique ids without a syscall per request: a random per-process prefix and a counter."""
    prefix = secrets.token_hex(6)
    return (f"{prefix}{number:08x}" for number in itertools.count())


_request_ids = _request_id_source()
