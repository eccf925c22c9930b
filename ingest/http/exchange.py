"""What every HTTP exchange gets around its handler: a request id, metrics, an access log line,
and a JSON answer for whatever went wrong unexpectedly.

Each route's handler is wrapped once, when the application is built (``observed``), rather than
run through an aiohttp middleware: a middleware costs two more coroutines, a lookup of the
wrapped chain and the request's route per request, and the route, its metric children and the
access-log mode are all known when the route is added. Unknown paths and methods reach a route
of their own (``unmatched``), so they are observed and answered in JSON the same way.

The wrapper is also where a connection learns that its request's headers were parsed (the
handler begins) and that it was answered (the handler returns): signals that are ours rather
than aiohttp's, so the read deadlines and the connection cap never depend on aiohttp's
access-log hook.
"""

from __future__ import annotations

import itertools
import logging
import re
import secrets
import time
from collections.abc import Awaitable, Callable, Iterator

import msgspec
import orjson
from aiohttp import hdrs, web

from ingest.checks.validation import Rejection
from ingest.http.connections import Phase
from ingest.http.protocol import (
    DIRECT_POST_ROUTES,
    UNROUTABLE,
    IngestConnection,
    send_and_close,
)
from ingest.http.responses import printable
from ingest.metrics.defs import IN_FLIGHT, REQUESTS
from ingest.metrics.tally import CounterTally, counter_tally, level_tally
from servicekit.aiohttp_internals import observer_of
from servicekit.logs import FIELDS_ATTRIBUTE

logger = logging.getLogger(__name__)
access_logger = logging.getLogger("ingest.access")

REQUEST_ID_HEADER = "X-Request-Id"
CLIENT_CLOSED_STATUS = "client_closed"
"""The ``status`` label of requests whose client vanished before the body arrived."""
UNMATCHED_ROUTE = "unmatched"
"""The ``route`` label of requests for a path or method no route serves."""
_SAFE_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
_INTERNAL_ERROR = Rejection(
    500, "internal_error", "an unexpected error; the callback was not stored"
)
_IN_FLIGHT = level_tally(IN_FLIGHT)
_BODY, _ANSWERING = Phase.BODY, Phase.ANSWERING


class Exchange(msgspec.Struct, gc=False):
    """One request as its handler, the metrics and the access log see it (a struct: one is
    made per request, and it refers to nothing that could form a cycle)."""

    request_id: str
    """The caller's ``X-Request-Id`` when it is safe to echo, else a fresh one; also the
    stored record's ``request-id`` header."""
    route: str
    outcome: str | None = None
    """Why the request was refused, for the access log."""
    client_closed: bool = False
    """The client vanished mid-request: counted under its own status, not as an error."""


ExchangeHandler = Callable[[web.Request, Exchange], Awaitable[web.StreamResponse]]
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def observed(
    handler: ExchangeHandler, route: str, *, access_log: str, callbacks: bool | None
) -> Handler:
    """``handler`` with the request id, metrics, access log and JSON for unexpected errors.

    ``callbacks``: whether the route's requests are callbacks (counted in flight, access-logged
    by the ``INGEST_ACCESS_LOG`` mode ``access_log``), or ``None`` for "those that are POSTs".
    Server errors are always logged."""
    counters: dict[int, CounterTally] = {}
    client_closed = counter_tally(REQUESTS.labels(route=route, status=CLIENT_CLOSED_STATUS))
    log_all, log_refusals = access_log == "all", access_log == "refusals"

    async def observe(request: web.Request) -> web.StreamResponse:
        offered = request.headers.get(REQUEST_ID_HEADER)
        exchange = Exchange(
            offered if offered and _SAFE_REQUEST_ID.match(offered) else next(_request_ids), route
        )
        began = time.perf_counter()
        is_callback = callbacks if callbacks is not None else request.method == hdrs.METH_POST
        if is_callback:
            _IN_FLIGHT.value += 1
        # The connection's request is being answered, or its body is still arriving (inlined:
        # this runs for every request). Not moved in the guard's order: a slow body stays as
        # stale as its request. The handler's return is the connection's "answered".
        connection = observer_of(request)
        if type(connection) is IngestConnection:
            connection.phase = _ANSWERING if request.content.is_eof() else _BODY
        try:
            response = await handler(request, exchange)
        except Exception:
            logger.exception(
                "unhandled error", extra={FIELDS_ATTRIBUTE: {"request_id": exchange.request_id}}
            )
            response = refuse(exchange, _INTERNAL_ERROR)
        finally:
            if is_callback:
                _IN_FLIGHT.value -= 1
        close = type(connection) is IngestConnection and connection.answered()
        if exchange.client_closed:
            client_closed.pending += 1
            access_logger.debug("client closed the connection mid-request on %s", route)
            return response
        status = response.status
        counter = counters.get(status)
        if counter is None:
            counter = counters[status] = counter_tally(
                REQUESTS.labels(route=route, status=str(status))
            )
        counter.pending += 1
        if status >= 500 or (is_callback and (log_all or (log_refusals and status >= 300))):
            _log_access(request, exchange, status, began)
        if close:
            await send_and_close(request, response)
        return response

    return observe


def json_response(exchange: Exchange, status: int, payload: dict[str, object]) -> web.Response:
    return web.Response(
        status=status,
        body=orjson.dumps(payload),
        content_type="application/json",
        headers={REQUEST_ID_HEADER: exchange.request_id},
    )


def refuse(exchange: Exchange, rejection: Rejection) -> web.Response:
    """The JSON error answer (contract §3.3) for ``rejection``, remembered for the access log."""
    payload: dict[str, object] = {"error": rejection.error, "detail": rejection.detail}
    if rejection.path:
        payload["path"] = rejection.path
    payload["request_id"] = exchange.request_id
    exchange.outcome = rejection.detail
    return json_response(exchange, rejection.status, payload)


def _log_access(request: web.Request, exchange: Exchange, status: int, began: float) -> None:
    access_logger.info(
        "%s %s %s",
        request.method,
        printable(request.path),
        status,
        extra={
            FIELDS_ATTRIBUTE: {
                "request_id": exchange.request_id,
                "method": request.method,
                "route": exchange.route,
                "status": status,
                "duration_ms": round((time.perf_counter() - began) * 1000, 3),
                "bytes": request.content_length,
                "remote": request.remote,
                "detail": exchange.outcome,
            }
        },
    )


def _request_id_source() -> Iterator[str]:
    """Unique ids without a syscall per request: a random per-process prefix and a counter."""
    prefix = secrets.token_hex(6)
    return (f"{prefix}{number:08x}" for number in itertools.count())


_request_ids = _request_id_source()


def add_unmatched_route(app: web.Application, *, access_log: str) -> None:
    """Answer every path and method no route serves with a JSON ``404`` or ``405``.

    A catch-all route added after every other route: aiohttp tries the most specific path
    first, so it catches only what nothing else takes. Targets that are not paths (``OPTIONS *``,
    ``CONNECT host:port``) never reach the router; ``IngestRunner`` hands them to the same
    handler (``UNROUTABLE``)."""
    allowed: dict[str, list[str]] = {}
    for resource in app.router.resources():
        allowed[resource.canonical] = sorted({route.method for route in resource})
    direct = app.get(DIRECT_POST_ROUTES)
    callbacks = [] if direct is None else list(direct)
    elsewhere = f" (callbacks go to {', '.join(callbacks)})" if callbacks else ""

    async def no_such_route(request: web.Request, exchange: Exchange) -> web.Response:
        target = printable(request.path)
        methods = allowed.get(request.path)
        if methods:
            response = refuse(
                exchange,
                Rejection(
                    405,
                    "method_not_allowed",
                    f"{printable(request.method)} is not allowed on {target}; "
                    f"use {', '.join(methods)}",
                ),
            )
            response.headers[hdrs.ALLOW] = ",".join(methods)
            return response
        return refuse(exchange, Rejection(404, "not_found", f"no such route: {target}{elsewhere}"))

    handler = observed(no_such_route, UNMATCHED_ROUTE, access_log=access_log, callbacks=None)
    app.router.add_route(hdrs.METH_ANY, r"/{target:[\s\S]*}", handler)  # newlines too
    app[UNROUTABLE] = handler  # OPTIONS *, CONNECT host:port: targets no route pattern can take
