"""The ingest HTTP application (contract §3, §7), built by ``init_app(settings)``.

A callback is answered ``204`` (``200`` with an empty body on the Vonage Video routes) only
after Kafka acknowledged it with ``acks=all``; every other outcome is an honest error with a JSON
body: ``400``/``413``/``415`` for bad input, ``401`` for failed authentication, ``503`` +
``Retry-After`` when Kafka cannot take it in time or while the service shuts down. The routes
and what differs between them are in ``ingest.routes``.
"""

from __future__ import annotations

import asyncio
import functools
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass

from aiohttp import hdrs, web
from prometheus_client import CONTENT_TYPE_LATEST

from ingest.checks.validation import Rejection, check_content_encoding, check_content_type
from ingest.http.exchange import (
    REQUEST_ID_HEADER,
    Exchange,
    add_unmatched_route,
    json_response,
    observed,
    refuse,
)
from ingest.http.protocol import (
    DIRECT_POST_ROUTES,
    body_received,
    close_after_response,
    reading_body,
)
from ingest.http.responses import printable
from ingest.kafka.publisher import RawPublisher
from ingest.metrics.defs import ACCEPTED_BYTES, CONNECTIONS_CLOSED, READY
from ingest.metrics.prometheus import render_metrics
from ingest.metrics.tally import counter_tally
from ingest.publication import Publisher, PublishError
from ingest.routes import CallbackRoute, callback_routes
from ingest.settings import IngestSettings
from schemas.topics import (
    HEADER_CONTENT_TYPE,
    HEADER_RECEIVED_AT,
    HEADER_REQUEST_ID,
    HEADER_SOURCE_ROUTE,
)


@dataclass(slots=True)
class Lifecycle:
    """Whether the service is draining for shutdown (readiness off, callbacks refused)."""

    shutting_down: bool = False


SETTINGS = web.AppKey("settings", IngestSettings)
PUBLISHER = web.AppKey("publisher", Publisher)
LIFECYCLE = web.AppKey("lifecycle", Lifecycle)


def init_app(settings: IngestSettings, publisher: Publisher | None = None) -> web.Application:
    """The application, storing callbacks through ``publisher`` (``None``: production's, the
    Kafka ``RawPublisher``), which it starts and stops with itself (``cleanup_ctx``)."""
    app = web.Application(client_max_size=settings.max_body_bytes)
    app[SETTINGS] = settings
    app[PUBLISHER] = RawPublisher(settings) if publisher is None else publisher
    app[LIFECYCLE] = Lifecycle()
    app.cleanup_ctx.append(_publisher_lifecycle)
    receiver = CallbackReceiver(settings, app[PUBLISHER], app[LIFECYCLE])
    mode = settings.access_log
    app[DIRECT_POST_ROUTES] = {}
    for route in callback_routes(settings):
        receive = functools.partial(receiver.receive, route=route)
        handler = observed(receive, route.path, access_log=mode, callbacks=True)
        app.router.add_post(route.path, handler)
        app[DIRECT_POST_ROUTES][route.path] = handler
    probes = Probes(app[PUBLISHER], app[LIFECYCLE])
    app.router.add_get("/healthz", observed(healthz, "/healthz", access_log=mode, callbacks=False))
    app.router.add_get(
        "/readyz", observed(probes.readyz, "/readyz", access_log=mode, callbacks=False)
    )
    if not settings.metrics_port:
        app.router.add_get(
            "/metrics", observed(metrics, "/metrics", access_log=mode, callbacks=False)
        )
    add_unmatched_route(app, access_log=mode)
    return app


def init_metrics_app(settings: IngestSettings) -> web.Application:
    """``/metrics`` alone, for ``INGEST_METRICS_PORT``: the scrape need not be public."""
    app = web.Application()
    app[SETTINGS] = settings
    mode = settings.access_log
    app.router.add_get("/metrics", observed(metrics, "/metrics", access_log=mode, callbacks=False))
    add_unmatched_route(app, access_log=mode)
    return app


async def _publisher_lifecycle(app: web.Application) -> AsyncIterator[None]:
    async with app[PUBLISHER]:
        yield


def begin_shutdown(app: web.Application) -> None:
    """Readiness goes to 503 and new callbacks are refused; in-flight ones carry on."""
    app[LIFECYCLE].shutting_down = True
    READY.set(0)


# -- handlers ------------------------------------------------------------------------------


@dataclass(slots=True)
class CallbackReceiver:
    """Stores each authentic, well-formed callback in the raw topic before answering its
    route's success status; what differs between routes is the ``route`` each is bound to."""

    settings: IngestSettings
    publisher: Publisher
    lifecycle: Lifecycle

    async def receive(
        self, request: web.Request, exchange: Exchange, *, route: CallbackRoute
    ) -> web.StreamResponse:
        received_at_ms = time.time_ns() // 1_000_000
        settings = self.settings
        if self.lifecycle.shutting_down:
            return unavailable(exchange, "the service is shutting down", settings.retry_after_s)
        headers = request.headers
        content_type = headers.get(hdrs.CONTENT_TYPE)
        unsupported = check_content_type(content_type) or check_content_encoding(
            headers.get(hdrs.CONTENT_ENCODING)
        )
        if unsupported:
            return refuse(exchange, unsupported)
        if request.content_length is not None and request.content_length > settings.max_body_bytes:
            return refuse(exchange, _too_large(settings))
        try:
            if request.content.is_eof():  # the usual small body arrived with the headers
                # Taken from the buffer as it is: request.read() would copy it into a
                # bytearray chunk by chunk and back into bytes.
                body = request.content.read_nowait()
                if len(body) > settings.max_body_bytes:  # chunked: no Content-Length to check
                    return refuse(exchange, _too_large(settings))
            else:
                async with asyncio.timeout(None) as timeout:
                    reading_body(request, timeout, settings.read_timeout_s)
                    body = await request.read()
                body_received(request)
        except TimeoutError:
            CONNECTIONS_CLOSED.labels(reason="read_timeout").inc()
            close_after_response(request)
            return refuse(
                exchange,
                Rejection(
                    408,
                    "request_timeout",
                    f"the body did not arrive within {settings.read_timeout_s:g} s",
                ),
            )
        except web.HTTPRequestEntityTooLarge:
            return refuse(exchange, _too_large(settings))
        except web.RequestPayloadError as exc:  # a corrupt compressed body or chunked framing
            close_after_response(request)  # the rest of the body cannot be read either
            return refuse(exchange, Rejection(400, "invalid_body", _payload_detail(exc)))
        except ConnectionError:
            return client_gone(exchange)
        auth_failure = route.authenticator.check(headers, request.query, body)
        if auth_failure:
            return refuse(exchange, Rejection(401, "unauthorized", auth_failure))
        view = route.inspect(body)
        if isinstance(view, Rejection):
            return refuse(exchange, view)
        record_headers = [
            (HEADER_RECEIVED_AT, str(received_at_ms).encode()),
            (HEADER_SOURCE_ROUTE, route.source_route),
            (HEADER_REQUEST_ID, exchange.request_id.encode()),
            (HEADER_CONTENT_TYPE, _JSON if content_type is None else content_type.encode()),
        ]
        try:
            await self.publisher.publish(body, view.key, record_headers, received_at_ms)
        except PublishError as exc:
            return unavailable(exchange, exc.detail, settings.retry_after_s)
        _ACCEPTED_BYTES.pending += len(body)
        # No body either way: 204 has none, and Video's 200 is documented as "delivered".
        return web.Response(
            status=route.accepted_status, headers={REQUEST_ID_HEADER: exchange.request_id}
        )


_JSON = b"application/json"
_ACCEPTED_BYTES = counter_tally(ACCEPTED_BYTES)


async def healthz(request: web.Request, exchange: Exchange) -> web.Response:
    return json_response(exchange, 200, {"status": "ok"})


@dataclass(slots=True)
class Probes:
    publisher: Publisher
    lifecycle: Lifecycle

    async def readyz(self, request: web.Request, exchange: Exchange) -> web.Response:
        if self.lifecycle.shutting_down:
            READY.set(0)
            return json_response(exchange, 503, {"status": "shutting_down"})
        if not self.publisher.ready:
            READY.set(0)
            status = "raw_topic_missing" if self.publisher.topic_missing else "kafka_unavailable"
            return json_response(exchange, 503, {"status": status})
        READY.set(1)
        return json_response(exchange, 200, {"status": "ready"})


async def metrics(request: web.Request, exchange: Exchange) -> web.Response:
    response = web.Response(body=render_metrics())
    response.headers[hdrs.CONTENT_TYPE] = CONTENT_TYPE_LATEST
    return response


# -- responses -----------------------------------------------------------------------------


def unavailable(exchange: Exchange, detail: str, retry_after_s: int) -> web.Response:
    response = refuse(exchange, Rejection(503, "unavailable", detail))
    response.headers[hdrs.RETRY_AFTER] = str(retry_after_s)
    return response


def client_gone(exchange: Exchange) -> web.Response:
    """The client closed the connection before its body arrived: nobody reads this answer, and
    it is not a server error; it is counted as ``client_closed``."""
    exchange.client_closed = True
    exchange.outcome = "the client closed the connection before sending its body"
    return json_response(exchange, 400, {"error": "client_closed", "detail": exchange.outcome})


def _payload_detail(exc: web.RequestPayloadError) -> str:
    cause = exc.__cause__ or exc
    message = getattr(cause, "message", None) or str(cause)
    return f"the body could not be read: {printable(str(message))}"


def _too_large(settings: IngestSettings) -> Rejection:
    return Rejection(413, "payload_too_large", f"the body exceeds {settings.max_body_bytes} bytes")
